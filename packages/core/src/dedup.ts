/**
 * The bounded exactly-once window: (clientId, requestId) → the recorded reply, for the latest
 * `capacity` requests overall (oldest evicted first). It is part of the replicated state: primary and
 * backup update it identically while applying entries, and it travels in snapshots.
 *
 * The reply bodies it keeps are bounded in bytes too (`maxBodyBytes`): beyond that, the oldest records
 * lose their body and keep only (seq, epoch, digest) — `isExpired` — so a retransmission of such a request
 * is still recognised (never applied twice) but can no longer be answered with its reply. Sizes come
 * from the deterministic encoding, so primary and backup strip the same records.
 */
import { encodeValue } from './codec.js';
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

/** True when the record's reply body was dropped by the byte bound (it has neither body nor error). */
export function isExpired(rec: DedupRecord): boolean {
  return rec.error === undefined && !('body' in rec);
}

function bodySize(rec: DedupRecord): number {
  return rec.error === undefined && 'body' in rec ? encodeValue(rec.body ?? null).length : 0;
}

export class DedupTable {
  /** Insertion order = sequence order, so the first key is the oldest. */
  readonly #records = new Map<string, DedupRecord>();
  /** Records that still hold a body, with its encoded size, oldest first. */
  readonly #bodies = new Map<string, number>();
  #bodyBytes = 0;
  readonly capacity: number;
  readonly maxBodyBytes: number;

  constructor(capacity: number, maxBodyBytes = Number.POSITIVE_INFINITY) {
    this.capacity = capacity;
    this.maxBodyBytes = maxBodyBytes;
  }

  /** Bytes of reply bodies currently kept. */
  get bodyBytes(): number {
    return this.#bodyBytes;
  }

  #forget(key: string): void {
    this.#records.delete(key);
    const size = this.#bodies.get(key);
    if (size !== undefined) {
      this.#bodies.delete(key);
      this.#bodyBytes -= size;
    }
  }

  #track(key: string, rec: DedupRecord): void {
    const size = bodySize(rec);
    if (size > 0) {
      this.#bodies.set(key, size);
      this.#bodyBytes += size;
    }
  }

  #enforceBounds(): void {
    while (this.#records.size > this.capacity) {
      const oldest = this.#records.keys().next();
      if (oldest.done) break;
      this.#forget(oldest.value);
    }
    // Strip bodies oldest first, but never the newest record's (its client is still waiting for it).
    while (this.#bodyBytes > this.maxBodyBytes && this.#bodies.size > 1) {
      const oldest = this.#bodies.entries().next();
      if (oldest.done) break;
      const [key, size] = oldest.value;
      this.#bodies.delete(key);
      this.#bodyBytes -= size;
      const rec = this.#records.get(key);
      if (rec) delete rec.body;
    }
  }

  get size(): number {
    return this.#records.size;
  }

  get(clientId: string, requestId: number): DedupRecord | undefined {
    return this.#records.get(dedupKey(clientId, requestId));
  }

  record(clientId: string, requestId: number, rec: DedupRecord): void {
    const key = dedupKey(clientId, requestId);
    this.#forget(key);
    this.#records.set(key, rec);
    this.#track(key, rec);
    this.#enforceBounds();
  }

  export(): [string, DedupRecord][] {
    return [...this.#records];
  }

  import(records: readonly (readonly [string, DedupRecord])[]): void {
    this.#records.clear();
    this.#bodies.clear();
    this.#bodyBytes = 0;
    for (const [k, v] of records) {
      this.#records.set(k, v);
      this.#track(k, v);
    }
    this.#enforceBounds();
  }
}
