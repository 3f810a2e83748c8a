/**
 * The backup's receiving side: entries arrive from the primary's flushes and from client forwards, in
 * any order and possibly twice. They are deduplicated by seq and applied strictly in seq order with
 * the recorded ctx; every recomputed reply digest is compared with the primary's.
 */
import type { Entry } from './messages.js';
import type { ServiceRunner } from './service.js';

export type OfferResult = 'stored' | 'duplicate' | 'stale-epoch' | 'full';

export interface Divergence {
  seq: number;
  expectedDigest: string;
  actualDigest: string;
  entry: Entry;
}

export class BackupLog {
  readonly #pending = new Map<number, Entry>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Store an entry for in-order application. `epoch` is the epoch of the primary being followed. */
  offer(entry: Entry, appliedSeq: number, epoch: number): OfferResult {
    if (entry.seq <= appliedSeq || this.#pending.has(entry.seq)) return 'duplicate';
    if (entry.epoch !== epoch) return 'stale-epoch';
    if (this.#pending.size >= this.#capacity) return 'full';
    this.#pending.set(entry.seq, entry);
    return 'stored';
  }

  /** Apply every contiguous entry after runner.appliedSeq; report digest mismatches. */
  applyReady(runner: ServiceRunner<unknown, unknown, unknown>, onDivergence: (d: Divergence) => void): number {
    let applied = 0;
    for (;;) {
      const next = runner.appliedSeq + 1;
      const entry = this.#pending.get(next);
      if (entry === undefined) return applied;
      this.#pending.delete(next);
      const outcome = runner.apply(entry);
      applied++;
      if (outcome.digest !== entry.digest) onDivergence({ seq: entry.seq, expectedDigest: entry.digest, actualDigest: outcome.digest, entry });
    }
  }

  /** Entries that cannot be applied because an earlier seq is missing (reported at takeover). */
  beyondGap(): Entry[] {
    return [...this.#pending.values()].sort((a, b) => a.seq - b.seq);
  }

  clear(): void {
    this.#pending.clear();
  }
}
