/**
 * The bounded exactly-once window: (clientId, requestId) → the recorded reply, for the latest
 * `capacity` requests overall (oldest evicted first). It is part of the replicated state: primary and
 * backup update it identically while applying entries, and it travels in snapshots.
 */
import type { RemoteError } from './messages.js';

export interface DedupRecord {
  seq: number;
  epoch: number;
  digest: string;
  time: number;
  seed: number;
  body?: unknown;
  error?: RemoteError;
}

export function dedupKey(clientId: string, requestId: number): string {
  return clientId + '\u0000' + requestId;
}

export class DedupTable {
  /** Insertion order = sequence order, so the first key is the oldest. */
  readonly #records = new Map<string, DedupRecord>();
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#records.size;
  }

  get(clientId: string, requestId: number): DedupRecord | undefined {
    return this.#records.get(dedupKey(clientId, requestId));
  }

  record(clientId: string, requestId: number, rec: DedupRecord): void {
    const key = dedupKey(clientId, requestId);
    this.#records.delete(key);
    this.#records.set(key, rec);
    if (this.#records.size > this.capacity) {
      const oldest = this.#records.keys().next();
      if (!oldest.done) this.#records.delete(oldest.value);
    }
  }

  export(): [string, DedupRecord][] {
    return [...this.#records];
  }

  import(records: readonly (readonly [string, DedupRecord])[]): void {
    this.#records.clear();
    for (const [k, v] of records) this.#records.set(k, v);
    while (this.#records.size > this.capacity) {
      const oldest = this.#records.keys().next();
      if (oldest.done) break;
      this.#records.delete(oldest.value);
    }
  }
}
