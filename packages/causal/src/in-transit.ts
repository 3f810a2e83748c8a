/**
 * The Schiper–Eggli–Sandoz in-transit set of one member: for each destination d, the latest direct
 * message of each sender k to d that lies in this member's causal past and is not known to have been
 * delivered at d. A message stamped with this set is delivered at d only after those messages.
 */
import type { InTransitEntry } from './stamp.js';

export class InTransitSet {
  readonly #size: number;
  /** destination → dense vector (0 = nothing from that sender). */
  readonly #byDest = new Map<number, number[]>();

  constructor(size: number) {
    this.#size = size;
  }

  /** Direct message number `seq` of `from` was sent to `to` (in this member's causal past). */
  record(to: number, from: number, seq: number): void {
    const latest = this.#vector(to);
    if (seq > latest[from]!) latest[from] = seq;
  }

  /** Pointwise maximum with another member's entry, then forget what `delivered` proves delivered at `entry.to`. */
  merge(entry: InTransitEntry, delivered: readonly number[] | undefined): void {
    let latest = this.#byDest.get(entry.to);
    for (let k = 0; k < this.#size; k++) {
      const v = entry.latest[k]!;
      if (v === 0 || (delivered !== undefined && v <= delivered[k]!)) continue;
      latest ??= this.#vector(entry.to);
      if (v > latest[k]!) latest[k] = v;
    }
  }

  /**
   * Forget every message to `to` that `delivered` proves delivered there: `delivered` is the direct vector
   * of a message `to` sent, and a member's direct vector covers a direct message addressed to it only once
   * it has delivered it (the invariant that makes SES correct).
   */
  purge(to: number, delivered: readonly number[]): void {
    const latest = this.#byDest.get(to);
    if (!latest) return;
    let any = false;
    for (let k = 0; k < this.#size; k++) {
      if (latest[k]! <= delivered[k]!) latest[k] = 0;
      else any = true;
    }
    if (!any) this.#byDest.delete(to);
  }

  /**
   * Forget what the sender of a delivered message implicitly knows to be delivered. Invariant (proved in
   * docs/CAUSAL.md): a member whose direct vector covers message x from k to d either lists x (or a later
   * message from k to d) in its in-transit set, or knows x was delivered at d. So when the delivered
   * message's `direct` vector covers our entry (d, k) = w but its own in-transit entry for (d, k) is below
   * w, its sender knew w was delivered, and so do we now. Must run before merging that message's entries.
   */
  purgeImplied(direct: readonly number[], entries: readonly InTransitEntry[]): void {
    for (const [to, latest] of this.#byDest) {
      const theirs = entries.find((e) => e.to === to)?.latest;
      let any = false;
      for (let k = 0; k < this.#size; k++) {
        const w = latest[k]!;
        if (w === 0) continue;
        if (w <= direct[k]! && (theirs === undefined || theirs[k]! < w)) latest[k] = 0;
        else any = true;
      }
      if (!any) this.#byDest.delete(to);
    }
  }

  /** Copies of the non-empty entries, ordered by destination. */
  entries(): InTransitEntry[] {
    return [...this.#byDest.entries()].sort(([a], [b]) => a - b).map(([to, latest]) => ({ to, latest: [...latest] }));
  }

  /** Destinations with at least one message in transit. */
  get destinations(): number {
    return this.#byDest.size;
  }

  #vector(to: number): number[] {
    let latest = this.#byDest.get(to);
    if (!latest) {
      latest = new Array<number>(this.#size).fill(0);
      this.#byDest.set(to, latest);
    }
    return latest;
  }
}
