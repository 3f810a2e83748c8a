/**
 * A vector clock over a fixed group of `size` members (indexed 0…size−1). Entry k counts events of member
 * k in the causal past of whoever holds the clock. This package keeps two per member: one counting direct
 * (point-to-point) sends, one counting broadcasts (CBCAST's VT).
 */

/** How two vector times relate. */
export type ClockOrder = 'equal' | 'before' | 'after' | 'concurrent';

/** A vector clock over a fixed number of members; entries are non-negative safe integers. */
export class VectorClock {
  readonly #entries: number[];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a vector clock needs a positive integer size, got ${size}`);
    this.#entries = new Array<number>(size).fill(0);
  }

  /** A clock with these entries (non-negative safe integers). */
  static from(entries: readonly number[]): VectorClock {
    const clock = new VectorClock(entries.length);
    for (let k = 0; k < entries.length; k++) clock.set(k, entries[k]!);
    return clock;
  }

  /** Number of members. */
  get size(): number {
    return this.#entries.length;
  }

  /** Entry `k`; throws RangeError when k is out of range. */
  get(k: number): number {
    return this.#entries[this.#check(k)]!;
  }

  /** Set entry `k` (a non-negative safe integer). */
  set(k: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`a clock entry must be a non-negative safe integer, got ${value}`);
    this.#entries[this.#check(k)] = value;
  }

  /** Count one more event of member `k`; returns the new entry. */
  tick(k: number): number {
    const value = this.get(k) + 1;
    this.#entries[k] = value;
    return value;
  }

  /**
   * Pointwise maximum with `other` (a clock or a plain entry array of the same size). Calls `changed(k)`
   * for every entry that grew.
   */
  merge(other: VectorClock | readonly number[], changed?: (k: number) => void): void {
    const entries = other instanceof VectorClock ? other.#entries : other;
    this.#sameSize(entries.length);
    for (let k = 0; k < entries.length; k++) {
      const value = entries[k]!;
      if (value > this.#entries[k]!) {
        this.#entries[k] = value;
        changed?.(k);
      }
    }
  }

  /** True when every entry is ≤ the other's: this time is in the causal past of (or equal to) the other. */
  leq(other: VectorClock | readonly number[]): boolean {
    const entries = other instanceof VectorClock ? other.#entries : other;
    this.#sameSize(entries.length);
    for (let k = 0; k < entries.length; k++) if (this.#entries[k]! > entries[k]!) return false;
    return true;
  }

  /** How this time relates to the other: equal, before, after, or concurrent. */
  compare(other: VectorClock | readonly number[]): ClockOrder {
    const entries = other instanceof VectorClock ? other.#entries : other;
    this.#sameSize(entries.length);
    let less = false;
    let greater = false;
    for (let k = 0; k < entries.length; k++) {
      if (this.#entries[k]! < entries[k]!) less = true;
      else if (this.#entries[k]! > entries[k]!) greater = true;
    }
    return less ? (greater ? 'concurrent' : 'before') : greater ? 'after' : 'equal';
  }

  /** An independent copy. */
  clone(): VectorClock {
    return VectorClock.from(this.#entries);
  }

  /** A copy of the entries. */
  toArray(): number[] {
    return [...this.#entries];
  }

  /** Read-only view of the entries (no copy; do not keep it across mutations). */
  get entries(): readonly number[] {
    return this.#entries;
  }

  /** The entries as `[a,b,c]`, for logs. */
  toString(): string {
    return `[${this.#entries.join(',')}]`;
  }

  #check(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k >= this.#entries.length)
      throw new RangeError(`member index ${k} out of range 0…${this.#entries.length - 1}`);
    return k;
  }

  #sameSize(n: number): void {
    if (n !== this.#entries.length) throw new RangeError(`vector clocks of different sizes: ${this.#entries.length} and ${n}`);
  }
}
