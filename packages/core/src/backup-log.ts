/**
 * The backup's receiving side: entries arrive from the primary's flushes and from client forwards, in
 * any order and possibly twice. They are deduplicated by seq and applied strictly in seq order with
 * the recorded ctx; every recomputed reply digest is compared with the primary's.
 */
import { invariant } from './errors.js';
import type { Entry } from './messages.js';
import type { ServiceRunner } from './service.js';

export type OfferResult = 'stored' | 'duplicate' | 'stale-epoch' | 'full';

/** The primary's flush disagrees with what a client forwarded for the same seq. */
export interface SourceMismatch {
  seq: number;
  forwarded: Pick<Entry, 'clientId' | 'requestId' | 'digest'>;
  flushed: Pick<Entry, 'clientId' | 'requestId' | 'digest'>;
}

function sameEntry(a: Pick<Entry, 'clientId' | 'requestId' | 'digest'>, b: Pick<Entry, 'clientId' | 'requestId' | 'digest'>): boolean {
  return a.digest === b.digest && a.clientId === b.clientId && a.requestId === b.requestId;
}

export interface Divergence {
  seq: number;
  expectedDigest: string;
  actualDigest: string;
  entry: Entry;
}

export class BackupLog {
  readonly #pending = new Map<number, Entry>();
  /** Seqs that came only from client forwards so far: the primary's flush must confirm them. */
  readonly #fromClients = new Set<number>();
  readonly #capacity: number;
  onMismatch: (m: SourceMismatch) => void = () => {};

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Store an entry for in-order application. `epoch` is the epoch of the primary being followed. */
  offer(entry: Entry, appliedSeq: number, epoch: number, fromPrimary: boolean): OfferResult {
    if (entry.seq <= appliedSeq) return 'duplicate';
    invariant(
      this.#fromClients.size <= this.#pending.size,
      'backup-log-sources',
      () => `${this.#fromClients.size} client-only seqs, ${this.#pending.size} pending`,
    );
    const pending = this.#pending.get(entry.seq);
    if (pending !== undefined) {
      if (fromPrimary && this.#fromClients.delete(entry.seq) && !sameEntry(pending, entry)) {
        // The primary's own copy wins over a client's.
        this.onMismatch({ seq: entry.seq, forwarded: pending, flushed: entry });
        this.#pending.set(entry.seq, entry);
      }
      return 'duplicate';
    }
    if (entry.epoch !== epoch) return 'stale-epoch';
    if (this.#pending.size >= this.#capacity) return 'full';
    this.#pending.set(entry.seq, entry);
    if (!fromPrimary) this.#fromClients.add(entry.seq);
    return 'stored';
  }

  /**
   * Apply every contiguous entry after runner.appliedSeq; report digest mismatches. While the primary
   * is alive, entries only a client has vouched for wait for the primary's flush (which confirms or
   * replaces them); at takeover (`includeClientOnly`) they are applied too — that is what they are for.
   */
  applyReady(
    runner: ServiceRunner<unknown, unknown, unknown>,
    onDivergence: (d: Divergence) => void,
    includeClientOnly = false,
    max = Number.POSITIVE_INFINITY,
  ): number {
    let applied = 0;
    while (applied < max) {
      const next = runner.appliedSeq + 1;
      const entry = this.#pending.get(next);
      if (entry === undefined) break;
      if (!includeClientOnly && this.#fromClients.has(next)) break;
      this.#pending.delete(next);
      this.#fromClients.delete(next);
      const outcome = runner.apply(entry);
      applied++;
      invariant(runner.appliedSeq === next, 'apply-in-order', () => `applied seq ${next}, the runner is at ${runner.appliedSeq}`);
      if (outcome.digest !== entry.digest)
        onDivergence({ seq: entry.seq, expectedDigest: entry.digest, actualDigest: outcome.digest, entry });
    }
    return applied;
  }

  /** A backup's invariant: every pending entry is after `appliedSeq` (nothing applied stays, nothing
   * pending was skipped). (A joiner's fetch may apply past entries it collected: retainAfter drops them.) */
  assertAhead(appliedSeq: number): void {
    for (const seq of this.#pending.keys())
      invariant(seq > appliedSeq, 'pending-ahead', () => `pending entry ${seq} is not after the applied seq ${appliedSeq}`);
  }

  /** Entries that cannot be applied because an earlier seq is missing (reported at takeover). */
  beyondGap(): Entry[] {
    return [...this.#pending.values()].sort((a, b) => a.seq - b.seq);
  }

  clear(): void {
    this.#pending.clear();
    this.#fromClients.clear();
  }

  /** Keep only the entries after `seq` of `epoch` (a joiner installed the state at `seq`: what it collected
   * from the clients' forwards beyond it is still state information the primary acknowledged). */
  retainAfter(seq: number, epoch: number): void {
    for (const [s, e] of this.#pending) {
      if (s <= seq || e.epoch !== epoch) {
        this.#pending.delete(s);
        this.#fromClients.delete(s);
      }
    }
    this.assertAhead(seq);
  }
}
