/**
 * SnapshotMap: a string-keyed map whose snapshot is taken in O(1) while writes continue.
 *
 * Keys are spread over a fixed number of buckets (plain Maps) by hash. `snapshot()` opens a cursor
 * that marks every bucket "pending"; the first write to a pending bucket copies that bucket (its
 * contents as of the snapshot) before changing it (copy-on-write per bucket). The cursor walks the
 * buckets in order, taking the preserved copy when there is one and the live bucket otherwise (it is
 * unchanged since the snapshot), and un-marks each bucket as it passes. The cursor therefore yields
 * exactly the map as it was when `snapshot()` was called, each key once, and a write costs at most one
 * bucket copy per open snapshot. Values are stored by reference: treat them as immutable (replace a
 * value with `set`, never mutate it in place), or the snapshot sees the mutation.
 *
 * It also keeps an order-independent digest of its contents, updated in O(1) per write: the sum, in
 * two independent 32-bit lanes, of a hash of every (key, value) pair — so two maps with equal contents
 * have equal digests whatever the order of the writes that built them.
 */
import { pack } from './codec.js';
import { hashBytes32, hashString32, hex32, mix32 } from './checksum.js';
import type { SnapshotCursor, StateBuilder } from './transferable.js';

export interface SnapshotMapOptions {
  /** Number of buckets, rounded up to a power of two (default 4096). More buckets = cheaper copies. */
  buckets?: number;
}

/** One [key, value] record of a SnapshotMap snapshot. */
export type MapRecord<V> = [key: string, value: V];

const SEED_A = 0x811c9dc5;
const SEED_B = 0x9747b28c;

interface OpenSnapshot<V> {
  /** 1 = the cursor has not reached this bucket yet. */
  pending: Uint8Array;
  preserved: Map<number, MapRecord<V>[]>;
}

export class SnapshotMap<V = unknown> {
  readonly #buckets: Map<string, V>[];
  readonly #mask: number;
  #size = 0;
  #open: OpenSnapshot<V>[] = [];
  #lane1 = 0;
  #lane2 = 0;

  constructor(options: SnapshotMapOptions = {}) {
    let n = 1;
    const want = Math.max(1, Math.min(1 << 20, options.buckets ?? 4096));
    while (n < want) n <<= 1;
    this.#mask = n - 1;
    this.#buckets = Array.from({ length: n }, () => new Map<string, V>());
  }

  /** Build a map from records (e.g. a restore). */
  static from<V>(records: Iterable<MapRecord<V>>, options?: SnapshotMapOptions): SnapshotMap<V> {
    const m = new SnapshotMap<V>(options);
    for (const [k, v] of records) m.set(k, v);
    return m;
  }

  get size(): number {
    return this.#size;
  }

  get bucketCount(): number {
    return this.#buckets.length;
  }

  /** Snapshots currently open (cursors not closed). */
  get openSnapshots(): number {
    return this.#open.length;
  }

  get(key: string): V | undefined {
    return this.#buckets[hashString32(key) & this.#mask]!.get(key);
  }

  has(key: string): boolean {
    return this.#buckets[hashString32(key) & this.#mask]!.has(key);
  }

  set(key: string, value: V): this {
    const b = hashString32(key) & this.#mask;
    const bucket = this.#buckets[b]!;
    if (this.#open.length > 0) this.#preserve(b, bucket);
    const had = bucket.has(key);
    if (had) this.#unaccount(key, bucket.get(key) as V);
    else this.#size++;
    bucket.set(key, value);
    this.#account(key, value);
    return this;
  }

  delete(key: string): boolean {
    const b = hashString32(key) & this.#mask;
    const bucket = this.#buckets[b]!;
    if (!bucket.has(key)) return false;
    if (this.#open.length > 0) this.#preserve(b, bucket);
    this.#unaccount(key, bucket.get(key) as V);
    bucket.delete(key);
    this.#size--;
    return true;
  }

  clear(): void {
    for (let b = 0; b < this.#buckets.length; b++) {
      const bucket = this.#buckets[b]!;
      if (bucket.size === 0) continue;
      if (this.#open.length > 0) this.#preserve(b, bucket);
      bucket.clear();
    }
    this.#size = 0;
    this.#lane1 = 0;
    this.#lane2 = 0;
  }

  *entries(): IterableIterator<MapRecord<V>> {
    for (const bucket of this.#buckets) for (const e of bucket) yield e;
  }

  *keys(): IterableIterator<string> {
    for (const bucket of this.#buckets) yield* bucket.keys();
  }

  [Symbol.iterator](): IterableIterator<MapRecord<V>> {
    return this.entries();
  }

  /** Order-independent digest of the contents (16 hex digits + size). O(1). */
  digest(): string {
    return hex32(this.#lane1) + hex32(this.#lane2) + ':' + this.#size;
  }

  /** Open a consistent snapshot cursor in O(buckets / 8) (no copy of the data). */
  snapshot(): SnapshotCursor {
    const snap: OpenSnapshot<V> = { pending: new Uint8Array(this.#buckets.length).fill(1), preserved: new Map() };
    this.#open.push(snap);
    const total = this.#size;
    let bucketIndex = 0;
    let current: MapRecord<V>[] = [];
    let pos = 0;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.#open = this.#open.filter((s) => s !== snap);
      snap.preserved.clear();
    };
    return {
      totalRecords: total,
      next: (maxRecords: number): unknown[] | undefined => {
        if (closed) return undefined;
        const out: MapRecord<V>[] = [];
        const max = Math.max(1, maxRecords);
        while (out.length < max) {
          if (pos < current.length) {
            const take = Math.min(current.length - pos, max - out.length);
            for (let i = 0; i < take; i++) out.push(current[pos + i]!);
            pos += take;
            continue;
          }
          if (bucketIndex >= this.#buckets.length) break;
          const b = bucketIndex++;
          const kept = snap.preserved.get(b);
          if (kept) {
            current = kept;
            snap.preserved.delete(b);
          } else {
            const live = this.#buckets[b]!;
            current = live.size === 0 ? [] : Array.from(live);
          }
          snap.pending[b] = 0;
          pos = 0;
        }
        if (out.length === 0) {
          close();
          return undefined;
        }
        return out;
      },
      close,
    };
  }

  /** Records → map, for `restoreChunks()`. */
  static builder<V>(options?: SnapshotMapOptions): StateBuilder<SnapshotMap<V>> {
    const m = new SnapshotMap<V>(options);
    return {
      add(records) {
        for (const r of records) {
          if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string') throw new TypeError('SnapshotMap record must be [string, value]');
          m.set(r[0], r[1] as V);
        }
      },
      finish: () => m,
    };
  }

  #preserve(b: number, bucket: Map<string, V>): void {
    for (const snap of this.#open) {
      if (snap.pending[b] === 1 && !snap.preserved.has(b)) snap.preserved.set(b, Array.from(bucket));
    }
  }

  #account(key: string, value: V): void {
    const [h1, h2] = entryHash(key, value);
    this.#lane1 = (this.#lane1 + h1) >>> 0;
    this.#lane2 = (this.#lane2 + h2) >>> 0;
  }

  #unaccount(key: string, value: V): void {
    const [h1, h2] = entryHash(key, value);
    this.#lane1 = (this.#lane1 - h1) >>> 0;
    this.#lane2 = (this.#lane2 - h2) >>> 0;
  }
}

function entryHash(key: string, value: unknown): [number, number] {
  let v1: number;
  let v2: number;
  if (typeof value === 'string') {
    v1 = hashString32(value, SEED_A ^ 0x5bd1e995);
    v2 = hashString32(value, SEED_B ^ 0x5bd1e995);
  } else {
    const bytes = pack(value);
    v1 = hashBytes32(bytes, SEED_A ^ 0x27d4eb2f);
    v2 = hashBytes32(bytes, SEED_B ^ 0x27d4eb2f);
  }
  const k1 = hashString32(key, SEED_A);
  const k2 = hashString32(key, SEED_B);
  return [mix32(k1 ^ mix32(v1)), mix32(k2 ^ mix32(v2 + 0x9e3779b9))];
}
