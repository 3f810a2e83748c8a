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
import { entryHash, hashString, hex32, laneA, laneB, mix32, SEED_A, SEED_B, VALUE_SEED_A, VALUE_SEED_B } from './entry-hash.js';
import type { TextSlice } from './record-codec.js';
import type { SnapshotCursor, StateBuilder } from '../transferable.js';

/** Options of a SnapshotMap: bucket count and what of a value the digest covers. */
export interface SnapshotMapOptions {
  /** Number of buckets, rounded up to a power of two (default 4096). More buckets = cheaper copies. */
  buckets?: number;
  /**
   * What of a value the digest covers (default: the value). Give a projection onto the logical
   * content to keep the digest equal across state versions (a migrated transfer is verified by it).
   */
  digestValue?: (value: never) => unknown;
}

/** One [key, value] record of a SnapshotMap (a snapshot cursor yields them flat: k1, v1, k2, v2, …). */
export type MapRecord<V> = [key: string, value: V];

interface OpenSnapshot {
  /** 1 = the cursor has not reached this bucket yet. */
  pending: Uint8Array;
  /** Bucket index → its contents when the snapshot was opened, flat (k1, v1, k2, v2, …). */
  preserved: Map<number, unknown[]>;
}

/** A string-keyed map with O(1) copy-on-write snapshots and an order-independent digest kept up to date per write. */
export class SnapshotMap<V = unknown> {
  readonly #buckets: Map<string, V>[];
  readonly #mask: number;
  #size = 0;
  #open: OpenSnapshot[] = [];
  #lane1 = 0;
  #lane2 = 0;
  readonly #digestValue: ((value: V) => unknown) | undefined;

  constructor(options: SnapshotMapOptions = {}) {
    this.#digestValue = options.digestValue as ((value: V) => unknown) | undefined;
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

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** Number of buckets (a power of two). */
  get bucketCount(): number {
    return this.#buckets.length;
  }

  /** Snapshots currently open (cursors not closed). */
  get openSnapshots(): number {
    return this.#open.length;
  }

  /** The value of `key`, or undefined. */
  get(key: string): V | undefined {
    hashString(key, SEED_A, SEED_B);
    return this.#buckets[laneA & this.#mask]!.get(key);
  }

  /** True when `key` is present. */
  has(key: string): boolean {
    hashString(key, SEED_A, SEED_B);
    return this.#buckets[laneA & this.#mask]!.has(key);
  }

  /** Set `key` (treat values as immutable: open snapshots hold them by reference). */
  set(key: string, value: V): this {
    hashString(key, SEED_A, SEED_B);
    const k1 = laneA;
    const k2 = laneB;
    const b = k1 & this.#mask;
    const bucket = this.#buckets[b]!;
    if (this.#open.length > 0) this.#preserve(b, bucket);
    const old = bucket.get(key);
    if (old !== undefined) this.#unaccount(k1, k2, old);
    else if (bucket.has(key)) this.#unaccount(k1, k2, old as V);
    else this.#size++;
    bucket.set(key, value);
    this.#account(k1, k2, value);
    return this;
  }

  /** Remove `key`; false when it was absent. */
  delete(key: string): boolean {
    hashString(key, SEED_A, SEED_B);
    const k1 = laneA;
    const k2 = laneB;
    const b = k1 & this.#mask;
    const bucket = this.#buckets[b]!;
    if (!bucket.has(key)) return false;
    if (this.#open.length > 0) this.#preserve(b, bucket);
    this.#unaccount(k1, k2, bucket.get(key) as V);
    bucket.delete(key);
    this.#size--;
    return true;
  }

  /** Remove every entry (open snapshots keep seeing them). */
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

  /** Every [key, value] pair, bucket by bucket. */
  *entries(): IterableIterator<MapRecord<V>> {
    for (const bucket of this.#buckets) for (const e of bucket) yield e;
  }

  /** Every key, bucket by bucket. */
  *keys(): IterableIterator<string> {
    for (const bucket of this.#buckets) yield* bucket.keys();
  }

  /** Every [key, value] pair, bucket by bucket. */
  [Symbol.iterator](): IterableIterator<MapRecord<V>> {
    return this.entries();
  }

  /** Order-independent digest of the contents (16 hex digits + size). O(1). */
  digest(): string {
    return hex32(this.#lane1) + hex32(this.#lane2) + ':' + this.#size;
  }

  /** Open a consistent snapshot cursor in O(buckets / 8) (no copy of the data). */
  snapshot(): SnapshotCursor {
    const snap: OpenSnapshot = { pending: new Uint8Array(this.#buckets.length).fill(1), preserved: new Map() };
    this.#open.push(snap);
    const total = this.#size;
    let bucketIndex = 0;
    let closed = false;
    // One array for every call (the contract: valid until the next call), written by index and cut to
    // length at the end (`length = 0` would make V8 drop its backing store and regrow it every call).
    const out: unknown[] = [];
    let n = 0;
    const push = (v: unknown, k: string): void => {
      out[n++] = k;
      out[n++] = v;
    };
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.#open = this.#open.filter((s) => s !== snap);
      snap.preserved.clear();
    };
    return {
      totalRecords: total,
      recordWidth: 2,
      // Whole buckets at a time (a call may exceed maxRecords by less than one bucket): a live bucket
      // is read within this synchronous call, before any write can change it.
      next: (maxRecords: number): unknown[] | undefined => {
        if (closed) return undefined;
        n = 0;
        const max = 2 * Math.max(1, maxRecords);
        while (n < max && bucketIndex < this.#buckets.length) {
          const b = bucketIndex++;
          const kept = snap.preserved.get(b);
          if (kept) {
            for (let i = 0; i < kept.length; i++) out[n++] = kept[i];
            snap.preserved.delete(b);
          } else {
            this.#buckets[b]!.forEach(push);
          }
          snap.pending[b] = 0;
        }
        if (n === 0) {
          close();
          return undefined;
        }
        if (out.length !== n) out.length = n;
        return out;
      },
      close,
    };
  }

  /** Flat records (k1, v1, k2, v2, …) → map, for `restoreChunks()`. */
  static builder<V>(options?: SnapshotMapOptions): StateBuilder<SnapshotMap<V>> {
    const m = new SnapshotMap<V>(options);
    return {
      recordWidth: 2,
      add(items) {
        if (items.length % 2 !== 0) throw new TypeError('SnapshotMap records come in key, value pairs');
        m.#addFresh(items);
      },
      // Straight from a received text slice: hash the bytes the chunk carries, keep the strings as
      // substrings of the slice's text (no copy for values of 13 characters or more).
      ...(options?.digestValue ? {} : { addText: (slice: TextSlice) => m.#addText(slice) }),
      finish: () => m,
    };
  }

  /**
   * Bulk insert of snapshot records (k1, v1, k2, v2, …) into a map being built (no open snapshot; each
   * key once): one hash of the key, one Map.set, the digest sums kept in locals. A repeated key is a
   * corrupt snapshot (TypeError).
   */
  #addFresh(items: readonly unknown[]): void {
    const buckets = this.#buckets;
    const mask = this.#mask;
    const project = this.#digestValue;
    let l1 = this.#lane1;
    let l2 = this.#lane2;
    let size = this.#size;
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (typeof key !== 'string') throw new TypeError('SnapshotMap record key must be a string');
      const value = items[i + 1] as V;
      hashString(key, SEED_A, SEED_B);
      const k1 = laneA;
      const k2 = laneB;
      const bucket = buckets[k1 & mask]!;
      const before = bucket.size;
      bucket.set(key, value);
      if (bucket.size === before) throw new TypeError(`SnapshotMap records repeat the key ${JSON.stringify(key.slice(0, 100))}`);
      size++;
      entryHash(k1, k2, project ? project(value) : value);
      l1 = (l1 + laneA) >>> 0;
      l2 = (l2 + laneB) >>> 0;
    }
    this.#lane1 = l1;
    this.#lane2 = l2;
    this.#size = size;
  }

  #addText(slice: TextSlice): void {
    if (slice.count % 2 !== 0) throw new TypeError('SnapshotMap records come in key, value pairs');
    const u = slice.bytes;
    const text = slice.text;
    const buckets = this.#buckets;
    const mask = this.#mask;
    let l1 = this.#lane1;
    let l2 = this.#lane2;
    let at = slice.payloadAt;
    let c = slice.textAt;
    let q = slice.lengthsAt;
    const end = q + 4 * slice.count;
    // hashBytes and combine written out (the hot loop of a joiner: one pass over each record's bytes).
    for (; q < end; q += 8) {
      const kl = (u[q]! | (u[q + 1]! << 8) | (u[q + 2]! << 16)) + u[q + 3]! * 0x1000000;
      const vl = (u[q + 4]! | (u[q + 5]! << 8) | (u[q + 6]! << 16)) + u[q + 7]! * 0x1000000;
      const key = text.substring(c, c + kl);
      let a = SEED_A | 0;
      let b = SEED_B | 0;
      let i = at;
      const keyEnd = at + kl;
      for (; i + 3 < keyEnd; i += 4) {
        const w = u[i]! | (u[i + 1]! << 8) | (u[i + 2]! << 16) | (u[i + 3]! << 24);
        a = Math.imul(a ^ w, 0x01000193);
        b = Math.imul(b ^ w, 0x5bd1e995);
      }
      for (; i < keyEnd; i++) {
        a = Math.imul(a ^ u[i]!, 0x01000193);
        b = Math.imul(b ^ u[i]!, 0x5bd1e995);
      }
      const k1 = mix32(a ^ kl);
      const k2 = mix32(b ^ kl);
      const bucket = buckets[k1 & mask]!;
      const before = bucket.size;
      bucket.set(key, text.substring(c + kl, c + kl + vl) as V);
      if (bucket.size === before) throw new TypeError(`SnapshotMap records repeat the key ${JSON.stringify(key.slice(0, 100))}`);
      a = VALUE_SEED_A | 0;
      b = VALUE_SEED_B | 0;
      const valueEnd = keyEnd + vl;
      for (; i + 3 < valueEnd; i += 4) {
        const w = u[i]! | (u[i + 1]! << 8) | (u[i + 2]! << 16) | (u[i + 3]! << 24);
        a = Math.imul(a ^ w, 0x01000193);
        b = Math.imul(b ^ w, 0x5bd1e995);
      }
      for (; i < valueEnd; i++) {
        a = Math.imul(a ^ u[i]!, 0x01000193);
        b = Math.imul(b ^ u[i]!, 0x5bd1e995);
      }
      l1 = (l1 + mix32(k1 ^ mix32(mix32(a ^ vl)))) >>> 0;
      l2 = (l2 + mix32(k2 ^ mix32((mix32(b ^ vl) + 0x9e3779b9) >>> 0))) >>> 0;
      at = valueEnd;
      c += kl + vl;
    }
    this.#lane1 = l1;
    this.#lane2 = l2;
    this.#size += slice.count / 2;
  }

  #preserve(b: number, bucket: Map<string, V>): void {
    for (const snap of this.#open) {
      if (snap.pending[b] === 1 && !snap.preserved.has(b)) {
        const flat: unknown[] = [];
        bucket.forEach((v, k) => void flat.push(k, v));
        snap.preserved.set(b, flat);
      }
    }
  }

  #account(k1: number, k2: number, value: V): void {
    entryHash(k1, k2, this.#digestValue ? this.#digestValue(value) : value);
    this.#lane1 = (this.#lane1 + laneA) >>> 0;
    this.#lane2 = (this.#lane2 + laneB) >>> 0;
  }

  #unaccount(k1: number, k2: number, value: V): void {
    entryHash(k1, k2, this.#digestValue ? this.#digestValue(value) : value);
    this.#lane1 = (this.#lane1 - laneA) >>> 0;
    this.#lane2 = (this.#lane2 - laneB) >>> 0;
  }
}
