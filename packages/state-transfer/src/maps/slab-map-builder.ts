/**
 * Building a SlabMap from a received snapshot (`SlabMap.builder()`, a joiner's `restoreChunks()`).
 * Packed slices — records exactly as the serving replica's slabs hold them — are copied into the new
 * map's slabs whole runs at a time, each run hashed in one call (key hash for the index, UTF-8 check,
 * digest contribution; WebAssembly when available, see record-hash.ts), and the records inserted into
 * the index in large batches sorted by home slot (SlabIndex.addBatch). Flat [k1, v1, …] strings (text or
 * msgpack slices, or a migrated snapshot) go through `set()`.
 */
import { isUtf8 } from 'node:buffer';
import type { StateBuilder } from '../transferable.js';
import { combine, hashBytes, highBits, laneA, laneB, SEED_A, SEED_B, VALUE_SEED_A, VALUE_SEED_B } from './entry-hash.js';
import { RECORD_HEADER, type PackedSlice } from './record-codec.js';
import { recordRunHasher } from './record-hash.js';
import type { Slab } from './slab.js';
import { recordEnd } from './slab-cursor.js';
import { pendingBatch, type PendingBatch, type SlabIndex, type SlabList } from './slab-index.js';
import type { SlabMap } from './slab-map.js';

/** What `SlabMap.builder()` returns: a StateBuilder that also takes packed slices as they arrive. */
export interface SlabMapBuilder extends StateBuilder<SlabMap> {
  addPacked(slice: PackedSlice): void;
  expect(totalRecords: number): void;
}

/**
 * The parts of a new SlabMap its builder fills. SlabMap.builder() hands them to the builder and to
 * nothing else; the map is not seen by anyone before the builder finishes.
 */
export interface SlabMapParts {
  readonly map: SlabMap;
  readonly index: SlabIndex;
  /** Bytes per slab the map was made with. */
  readonly slabBytes: number;
  readonly slabs: SlabList;
  /** The slab records are appended to, and its slab id (index + 1). */
  readonly tail: Slab;
  readonly tailId: number;
  /** Bytes of live records, and the digest lanes: the builder adds what it appends. */
  liveBytes: number;
  lane1: number;
  lane2: number;
  /** Start a new tail slab of at least `minBytes`. */
  newTail(minBytes: number): void;
  /** After a build: shrink a large, mostly unused tail slab. */
  trimTail(): void;
}

/**
 * Records a builder hashes before inserting them into the index, in index order (see
 * SlabIndex.addBatch): PENDING, or up to PENDING_MAX when the builder is told how many records to
 * expect. The larger the batch, the more of its inserts land on index lines already in cache: building
 * 1M records took 203–383 ms with batches of 2^20 against 290–450 ms with 2^16 (same process, later
 * rounds, 2026-11-29), for 24 bytes per pending record (24 MiB at most).
 */
const PENDING = 1 << 16;
const PENDING_MAX = 1 << 20;
/** Most records a builder presizes its index for when told how many to expect (32 MiB of index; 1M records
 * is the size the builder is tuned for, see PENDING_MAX). */
const EXPECT_MAX = 1 << 20;
/** Largest slab a builder allocates (it grows them with the map; see addPacked). */
const BUILD_SLAB_MAX = 64 * 1024 * 1024;

export function slabMapBuilder(parts: SlabMapParts): SlabMapBuilder {
  const build = new Build(parts);
  return {
    recordWidth: 2,
    expect: (totalRecords: number) => build.expect(totalRecords),
    add: (items: readonly unknown[]) => build.add(items),
    addPacked: (slice: PackedSlice) => build.addPacked(slice),
    finish: () => build.finish(),
  };
}

class Build {
  readonly #m: SlabMapParts;
  /**
   * Records that are hashed but not yet in the index (see #indexRun): slab id, offset, lane-A hash of
   * each. Inserted in index order when a batch is full (see PENDING), and when the build finishes.
   */
  #pending: PendingBatch | undefined;
  /** How many records a pending batch holds (see PENDING). */
  #pendingCap = PENDING;

  constructor(parts: SlabMapParts) {
    this.#m = parts;
  }

  expect(totalRecords: number): void {
    // Only before the first record (an index sized later would drop what it holds). The count comes
    // from the wire (meta.totalRecords): the index is presized for at most EXPECT_MAX records and grows
    // with the records that actually arrive beyond that, so a wrong or hostile count cannot make the
    // joiner reserve gigabytes (2^28 reserved 8 GiB of index).
    if (this.#m.index.size === 0 && !this.#pending?.n && Number.isSafeInteger(totalRecords) && totalRecords > 0) {
      this.#m.index.reset(Math.min(totalRecords, EXPECT_MAX));
      this.#pendingCap = Math.min(PENDING_MAX, Math.max(PENDING, totalRecords));
      this.#pending = undefined;
    }
  }

  add(items: readonly unknown[]): void {
    if (items.length % 2 !== 0) throw new TypeError('SlabMap records come in key, value pairs');
    const m = this.#m.map;
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      const v = items[i + 1];
      if (typeof k !== 'string' || typeof v !== 'string') throw new TypeError('SlabMap records are [string, string]');
      const before = m.size;
      m.set(k, v);
      if (m.size === before) throw new TypeError(`SlabMap records repeat the key ${JSON.stringify(k.slice(0, 100))}`);
    }
  }

  addPacked(slice: PackedSlice): void {
    const m = this.#m;
    const u = slice.bytes;
    const uv = new DataView(u.buffer, u.byteOffset, u.byteLength);
    let p = slice.at;
    const end = slice.end;
    while (p < end) {
      // The whole records that fit in the tail slab, copied at once.
      const tail = m.tail;
      const limit = p + tail.buf.length - tail.used;
      // Usually the rest of the slice fits: no need to walk its records to find where to cut.
      let q = end <= limit ? end : p;
      while (q < end) {
        const next = recordEnd(uv, q);
        if (next > limit) break;
        q = next;
      }
      if (q === p) {
        // Building: slabs grow with the map (up to 64 MiB), so a large state takes a few allocations
        // rather than hundreds (each large external allocation can make V8 collect); trimTail
        // shrinks the last one when the build finishes.
        const grown = Math.min(BUILD_SLAB_MAX, Math.max(m.slabBytes, m.liveBytes));
        m.newTail(Math.max(grown, recordEnd(uv, p) - p));
        continue;
      }
      const base = tail.used;
      tail.buf.set(u.subarray(p, q), base);
      tail.used += q - p;
      this.#indexRun(tail, base, base + (q - p));
      p = q;
    }
  }

  finish(): SlabMap {
    this.#flushPending();
    this.#pending = undefined;
    this.#m.trimTail();
    return this.#m.map;
  }

  /**
   * Hash the records in [base, stop) of the tail slab, for a map being built (no open snapshot): key
   * and value bytes (UTF-8 checked when not ASCII), digest summed; queue them for the index. In
   * WebAssembly when available (record-hash.ts: 0.11 against 0.19–0.23 µs per record), else in the
   * JavaScript loop below (same results).
   */
  #indexRun(slab: Slab, base: number, stop: number): void {
    const m = this.#m;
    const slabId = m.tailId;
    const p = (this.#pending ??= pendingBatch(this.#pendingCap));
    const hasher = recordRunHasher();
    if (hasher) {
      const count = hasher.run(slab.buf, base, stop, base, m.lane1, m.lane2);
      if (count < 0) throw new TypeError('SlabMap: packed records overrun their slice');
      if ((hasher.high & 0x80808080) !== 0) checkUtf8Records(slab, base, stop);
      m.lane1 = hasher.sumA >>> 0;
      m.lane2 = hasher.sumB >>> 0;
      const ints = hasher.ints;
      for (let i = 0; i < count; ) {
        const k = Math.min(count - i, p.cap - p.n);
        p.hash.set(ints.subarray(hasher.hashIndex + i, hasher.hashIndex + i + k), p.n);
        p.at.set(ints.subarray(hasher.atIndex + i, hasher.atIndex + i + k), p.n);
        p.slab.fill(slabId, p.n, p.n + k);
        p.n += k;
        i += k;
        if (p.n === p.cap) this.#flushPending();
      }
      m.liveBytes += stop - base;
      return;
    }
    const v = slab.view;
    let l1 = m.lane1;
    let l2 = m.lane2;
    let o = base;
    while (o < stop) {
      const kl = v.getUint32(o, true);
      const vl = v.getUint32(o + 4, true);
      const kAt = o + RECORD_HEADER;
      const keyEnd = kAt + kl;
      const valueEnd = keyEnd + vl;
      hashBytes(v, kAt, keyEnd, SEED_A, SEED_B);
      const k1 = laneA;
      const k2 = laneB;
      const high = highBits;
      hashBytes(v, keyEnd, valueEnd, VALUE_SEED_A, VALUE_SEED_B);
      if (((high | highBits) & 0x80808080) !== 0) checkUtf8Record(slab, kAt, keyEnd, valueEnd);
      combine(k1, k2);
      l1 = (l1 + laneA) >>> 0;
      l2 = (l2 + laneB) >>> 0;
      const n = p.n++;
      p.slab[n] = slabId;
      p.at[n] = o;
      p.hash[n] = k1;
      if (p.n === p.cap) this.#flushPending();
      o = valueEnd;
    }
    m.lane1 = l1;
    m.lane2 = l2;
    m.liveBytes += stop - base;
  }

  /** Insert the queued records into the index (sorted by home slot; a repeated key is a TypeError). */
  #flushPending(): void {
    const p = this.#pending;
    if (p) this.#m.index.addBatch(this.#m.slabs, p);
  }
}

/** Throw a TypeError unless the record's key [kAt, keyEnd) and value [keyEnd, valueEnd) are UTF-8. */
function checkUtf8Record(slab: Slab, kAt: number, keyEnd: number, valueEnd: number): void {
  if (!(isUtf8(slab.buf.subarray(kAt, keyEnd)) && isUtf8(slab.buf.subarray(keyEnd, valueEnd))))
    throw new TypeError('SlabMap record is not UTF-8');
}

/** checkUtf8Record for every record in slab[base, stop). */
function checkUtf8Records(slab: Slab, base: number, stop: number): void {
  for (let o = base; o < stop; ) {
    const kAt = o + RECORD_HEADER;
    const keyEnd = kAt + slab.view.getUint32(o, true);
    const valueEnd = keyEnd + slab.view.getUint32(o + 4, true);
    checkUtf8Record(slab, kAt, keyEnd, valueEnd);
    o = valueEnd;
  }
}
