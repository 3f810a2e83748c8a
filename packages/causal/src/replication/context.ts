/**
 * The causal context of replicated services calling replicated services (docs/CAUSAL.md, "How it composes
 * with replication"): the Schiper–Eggli–Sandoz in-transit set, kept per logical server. An entry
 * (dest, sender) = n says "message number n from service `sender` to service `dest` (and every earlier one
 * on that pair) is in the causal past". A request carrying a context with entries for its destination d is
 * sequenced by d only once d applied those messages. Members are indices into the group's static, ordered
 * list of service names.
 *
 * Encoding: varint count, then per entry (sorted by dest, then sender) varint dest, varint sender, varint n.
 */
import { CausalProtocolError } from '../errors.js';
import { ByteReader, ByteWriter } from '../varint.js';

/** Members per group at most (an entry's key is dest * MAX_MEMBERS + sender). */
export const MAX_MEMBERS = 1 << 12;

/** A causal context: (dest, sender) → highest message number from sender to dest in the causal past. */
export class CausalContext {
  readonly #entries = new Map<number, number>();

  /** The map key of the entry (dest, sender). */
  static key(dest: number, sender: number): number {
    return dest * MAX_MEMBERS + sender;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry (dest, sender), or 0 when absent. */
  get(dest: number, sender: number): number {
    return this.#entries.get(CausalContext.key(dest, sender)) ?? 0;
  }

  /** Raise (never lower) the entry (dest, sender) to n. */
  raise(dest: number, sender: number, n: number): void {
    const k = CausalContext.key(dest, sender);
    if ((this.#entries.get(k) ?? 0) < n) this.#entries.set(k, n);
  }

  /** Remove the entry (dest, sender), e.g. once dest is known to have applied it. */
  delete(dest: number, sender: number): void {
    this.#entries.delete(CausalContext.key(dest, sender));
  }

  /** Every entry as [dest, sender, n], sorted (deterministic across replicas). */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (const [k, n] of this.#entries) out.push([Math.floor(k / MAX_MEMBERS), k % MAX_MEMBERS, n]);
    out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return out;
  }

  /** Pointwise maximum with `other`; entries for `skipDest` (already satisfied there) are not taken. */
  merge(other: CausalContext, skipDest = -1): void {
    for (const [d, s, n] of other.entries()) if (d !== skipDest) this.raise(d, s, n);
  }

  /** An independent copy. */
  clone(): CausalContext {
    const c = new CausalContext();
    for (const [d, s, n] of this.entries()) c.raise(d, s, n);
    return c;
  }

  /** The wire form: varint count, then (dest, sender, n) per entry, sorted. */
  encode(): Uint8Array {
    const list = this.entries();
    const w = new ByteWriter(1 + list.length * 4);
    w.uint(list.length);
    for (const [d, s, n] of list) {
      w.uint(d);
      w.uint(s);
      w.uint(n);
    }
    return w.finish();
  }

  /** Throws CausalProtocolError on malformed bytes or a member index ≥ `members`. */
  static decode(bytes: Uint8Array, members: number): CausalContext {
    const ctx = new CausalContext();
    try {
      const r = new ByteReader(bytes);
      const count = r.uint();
      if (count > members * members) throw new CausalProtocolError(`causal context with ${count} entries for ${members} members`);
      for (let i = 0; i < count; i++) {
        const d = r.uint();
        const s = r.uint();
        const n = r.uint();
        if (d >= members || s >= members) throw new CausalProtocolError(`causal context names member ${Math.max(d, s)} of ${members}`);
        ctx.raise(d, s, n);
      }
      if (r.remaining !== 0) throw new CausalProtocolError(`${r.remaining} trailing bytes after a causal context`);
    } catch (err) {
      if (err instanceof CausalProtocolError) throw err;
      throw new CausalProtocolError(`malformed causal context: ${(err as Error).message}`);
    }
    return ctx;
  }

  /** A context holding these (dest, sender, n) entries (the larger n wins for a repeated pair). */
  static fromEntries(entries: readonly (readonly [number, number, number])[]): CausalContext {
    const c = new CausalContext();
    for (const [d, s, n] of entries) c.raise(d, s, n);
    return c;
  }
}
