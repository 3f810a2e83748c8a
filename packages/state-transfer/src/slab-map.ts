/**
 * SlabMap: a string → string map whose entries live outside the JavaScript heap, with O(1) consistent
 * snapshots that are streamed as raw bytes.
 *
 * Why: a SnapshotMap of a million entries is two million strings and thousands of hash tables on the
 * V8 heap. Every young-generation collection of a serving replica then costs milliseconds (the fixed
 * part grows with the old generation), a snapshot has to read every string and encode it, and a joiner
 * has to create every string again. A SlabMap keeps each entry as bytes in large `Buffer` slabs
 * (allocated outside the heap) and an open-addressing index in two typed arrays: the garbage collector
 * sees a few dozen objects whatever the size, a snapshot is a sequence of `memcpy`s of whole runs of
 * records, and a joiner copies the received bytes into its own slabs and indexes them.
 *
 * Layout. A record is `keyLength u32 LE, valueLength u32 LE, key UTF-8, value UTF-8`, appended to the
 * tail slab (`slabBytes`, default 4 MiB; a larger record gets a slab of its own). A record is the same
 * bytes on the wire (a packed slice, see record-codec.ts). Setting a key appends a new record and marks
 * the old one dead; deleting marks it dead. The index maps the key's hash to the record's address.
 *
 * Snapshots. `snapshot()` fixes, in O(slabs), the list of slabs and the tail slab's end; every record
 * killed after that carries a later *epoch* than the snapshot's, so the cursor emits exactly the
 * records that were live when it was opened (dead before: skipped; killed after: still emitted;
 * appended after: beyond the fixed end). Slabs are never freed or reused while a snapshot is open.
 *
 * Index growth. At 60 % load a table twice the size takes over; the old one is emptied a few slots per
 * write, so a growing map never pauses to rehash everything.
 *
 * Compaction. When at least half of a (non-tail) slab is dead and no snapshot is open, its live records
 * are moved to the tail a few at a time by later writes (bounded work per write, no pause) and the
 * slab is freed; `compact()` does all of it at once. Memory stays under about twice the live bytes plus
 * two slabs.
 *
 * Strings are stored as UTF-8 (a lone surrogate becomes U+FFFD, as in any UTF-8 store). The digest is
 * the same as a SnapshotMap's over equal contents (same per-entry hash of the same UTF-8 bytes).
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { hex32 } from './checksum.js';
import { combine, hashBytes, highBits, laneA, laneB, SEED_A, SEED_B, VALUE_SEED_A, VALUE_SEED_B } from './entry-hash.js';
import { RECORD_HEADER, type PackedSlice } from './record-codec.js';
import { recordRunHasher } from './record-hash.js';
import { recordEnd, SlabRunCursor, type ShareableSnapshotCursor, type SlabRun } from './slab-cursor.js';
import type { SnapshotCursor, StateBuilder } from './transferable.js';

export { RECORD_HEADER };

export interface SlabMapOptions {
  /** Bytes per slab (default 4 MiB, at least 64 KiB). A record larger than this gets a slab of its own. */
  slabBytes?: number;
  /** Entries the index is sized for at first (default 1024; it doubles as needed). */
  expectedSize?: number;
  /**
   * Keep the slabs in SharedArrayBuffers (default false), so that a transfer worker thread can stream
   * snapshots without the owning thread copying anything (`serveTransfersInWorker`).
   */
  shared?: boolean;
}

const DEFAULT_SLAB = 4 * 1024 * 1024;
const MIN_SLAB = 64 * 1024;
/** The index is grown when more than this fraction of its slots is used. */
const MAX_LOAD = 0.6;

class Slab {
  readonly buf: Buffer;
  readonly view: DataView;
  used = 0;
  deadBytes = 0;
  /** Offsets of dead records and the epoch each was killed in (parallel). */
  deadAt: number[] = [];
  deadEpoch: number[] = [];
  queued = false;
  constructor(bytes: number, shared = false) {
    // Shared: the bytes can be read by a transfer worker thread (the snapshot's frozen part only).
    this.buf = shared ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.allocUnsafeSlow(bytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }
}

interface OpenSlabSnapshot {
  readonly epoch: number;
}

/** Equal bytes: x[xAt, xAt + n) and y[yAt, yAt + n). */
function sameBytes(x: DataView, xAt: number, y: DataView, yAt: number, n: number): boolean {
  let i = 0;
  for (; i + 3 < n; i += 4) if (x.getInt32(xAt + i, true) !== y.getInt32(yAt + i, true)) return false;
  for (; i < n; i++) if (x.getUint8(xAt + i) !== y.getUint8(yAt + i)) return false;
  return true;
}

type Utf8Writer = { utf8Write?: (s: string, at: number, max: number) => number };

/** Write `s` as UTF-8 into `buf` at `at` (at most `max` bytes); bytes written. */
function writeUtf8(buf: Buffer, s: string, at: number, max: number): number {
  const w = (buf as unknown as Utf8Writer).utf8Write;
  return w ? w.call(buf, s, at, max) : buf.write(s, at, max, 'utf8');
}

/** Slot stride of the index: lane-A hash, slab index + 1 (0 = empty slot), offset, unused. */
const STRIDE = 4;
/**
 * Records a builder hashes before inserting them into the index, in index order (see #flushPending):
 * PENDING, or up to PENDING_MAX when the builder is told how many records to expect. The larger the
 * batch, the more of its inserts land on index lines already in cache: building 1M records took
 * 203–383 ms with batches of 2^20 against 290–450 ms with 2^16 (same process, later rounds, 2026-11-29),
 * for 24 bytes per pending record (24 MiB at most).
 */
const PENDING = 1 << 16;
const PENDING_MAX = 1 << 20;
/** Old-table slots moved per write while the index grows (see #grow). */
const MIGRATE_SLOTS = 8;
/** Most records a builder presizes its index for when told how many to expect (32 MiB of index; 1M records
 * is the size the builder is tuned for, see PENDING_MAX). */
const EXPECT_MAX = 1 << 20;
/** Largest slab a builder allocates (it grows them with the map; see #addPacked). */
const BUILD_SLAB_MAX = 64 * 1024 * 1024;

export class SlabMap {
  readonly #slabBytes: number;
  readonly #shared: boolean;
  #slabs: (Slab | undefined)[] = [];
  #freeIndices: number[] = [];
  #tail: Slab;
  #tailIndex: number;
  /** Open-addressing index (linear probing), STRIDE ints per slot. */
  #slots: Int32Array;
  #mask: number;
  /**
   * While the index grows: the previous, half-size table, whose entries move to #slots a few slots per
   * write (MIGRATE_SLOTS) from #migrateAt on, so a growing map never stops to rehash everything. Its
   * deleted entries are tombstones (slab id -1): shifting entries back could carry them behind the
   * cursor. A key found there is moved at once, so callers only ever see slots of #slots.
   */
  #old: Int32Array | undefined;
  #oldMask = 0;
  #migrateAt = 0;
  #size = 0;
  #lane1 = 0;
  #lane2 = 0;
  #epoch = 0;
  #open: OpenSlabSnapshot[] = [];
  #liveBytes = 0;
  /** Slabs at least half dead, waiting to be compacted; the one being compacted and where. */
  #candidates: number[] = [];
  #compacting = -1;
  #compactAt = 0;
  #scratch: Slab = new Slab(1024);

  constructor(options: SlabMapOptions = {}) {
    const slab = options.slabBytes ?? DEFAULT_SLAB;
    if (!Number.isInteger(slab) || slab < MIN_SLAB || slab >= 2 ** 31) throw new RangeError(`slabBytes must be an integer from ${MIN_SLAB} to 2^31 - 1 (got ${slab})`);
    this.#slabBytes = slab;
    this.#shared = options.shared === true;
    this.#slots = new Int32Array(0);
    this.#mask = -1;
    this.#sizeIndex(options.expectedSize ?? 0);
    this.#tailIndex = 0;
    this.#tail = new Slab(slab, this.#shared);
    this.#slabs.push(this.#tail);
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes of live records (headers included). */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** Bytes held by slabs (live, dead and free space), outside the JavaScript heap. */
  get slabBytes(): number {
    let n = 0;
    for (const s of this.#slabs) if (s) n += s.buf.length;
    return n;
  }

  /** Snapshots currently open (cursors not closed). */
  get openSnapshots(): number {
    return this.#open.length;
  }

  /** True while the index is moving to a larger table, a few slots per write (diagnostic). */
  get indexGrowing(): boolean {
    return this.#old !== undefined;
  }

  /** Order-independent digest of the contents (16 hex digits + size), equal to a SnapshotMap's. O(1). */
  digest(): string {
    return hex32(this.#lane1) + hex32(this.#lane2) + ':' + this.#size;
  }

  get(key: string): string | undefined {
    const slot = this.#findScratch(this.#keyBytes(key));
    if (slot < 0) return undefined;
    const slab = this.#slabs[this.#slots[slot + 1]! - 1]!;
    const o = this.#slots[slot + 2]!;
    const vAt = o + RECORD_HEADER + slab.view.getUint32(o, true);
    return slab.buf.toString('utf8', vAt, vAt + slab.view.getUint32(o + 4, true));
  }

  has(key: string): boolean {
    return this.#findScratch(this.#keyBytes(key)) >= 0;
  }

  set(key: string, value: string): this {
    if (typeof value !== 'string') throw new TypeError('SlabMap values are strings');
    const kl = this.#keyBytes(key);
    const k1 = laneA;
    const k2 = laneB;
    const slot = this.#findScratch(kl);
    // Write the record at the tail: header, key (from the scratch buffer), value (encoded in place).
    let tail = this.#tail;
    if (RECORD_HEADER + kl + 3 * value.length > tail.buf.length - tail.used) {
      const need = RECORD_HEADER + kl + Buffer.byteLength(value, 'utf8');
      if (need > tail.buf.length - tail.used) {
        this.#newTail(need);
        tail = this.#tail;
      }
    }
    const o = tail.used;
    const kAt = o + RECORD_HEADER;
    const src = this.#scratch.buf;
    const buf = tail.buf;
    if (kl <= 32) for (let i = 0; i < kl; i++) buf[kAt + i] = src[i]!;
    else src.copy(buf, kAt, 0, kl);
    const vAt = kAt + kl;
    const vl = value.length === 0 ? 0 : writeUtf8(buf, value, vAt, buf.length - vAt);
    tail.view.setUint32(o, kl, true);
    tail.view.setUint32(o + 4, vl, true);
    tail.used = vAt + vl;
    const recBytes = RECORD_HEADER + kl + vl;
    if (slot >= 0) {
      const oldSlab = this.#slots[slot + 1]! - 1;
      const oldAt = this.#slots[slot + 2]!;
      this.#account(this.#slabs[oldSlab]!, oldAt, k1, k2, -1);
      this.#kill(oldSlab, oldAt);
      this.#slots[slot + 1] = this.#tailIndex + 1;
      this.#slots[slot + 2] = o;
    } else {
      this.#insert(k1, this.#tailIndex, o);
      this.#size++;
    }
    this.#liveBytes += recBytes;
    this.#account(tail, o, k1, k2, 1);
    this.#migrate(MIGRATE_SLOTS);
    this.#compactStep(recBytes);
    return this;
  }

  delete(key: string): boolean {
    const slot = this.#findScratch(this.#keyBytes(key));
    if (slot < 0) return false;
    const k1 = laneA;
    const k2 = laneB;
    const slabIndex = this.#slots[slot + 1]! - 1;
    const o = this.#slots[slot + 2]!;
    this.#account(this.#slabs[slabIndex]!, o, k1, k2, -1);
    this.#kill(slabIndex, o);
    this.#removeSlot(slot);
    this.#size--;
    this.#migrate(MIGRATE_SLOTS);
    this.#compactStep(RECORD_HEADER);
    return true;
  }

  clear(): void {
    if (this.#open.length > 0) {
      // Open snapshots still read the slabs: kill every record instead.
      this.#migrate(Infinity);
      const slots = this.#slots;
      for (let s = 0; s < slots.length; s += STRIDE) if (slots[s + 1] !== 0) this.#kill(slots[s + 1]! - 1, slots[s + 2]!);
      slots.fill(0);
    } else {
      this.#slabs = [];
      this.#freeIndices = [];
      this.#candidates = [];
      this.#compacting = -1;
      this.#tailIndex = 0;
      this.#tail = new Slab(this.#slabBytes, this.#shared);
      this.#slabs.push(this.#tail);
      this.#sizeIndex(0);
    }
    this.#size = 0;
    this.#liveBytes = 0;
    this.#lane1 = 0;
    this.#lane2 = 0;
  }

  /** Live entries, in index order (not insertion order). */
  *entries(): IterableIterator<[string, string]> {
    for (const slots of this.#old ? [this.#slots, this.#old] : [this.#slots]) yield* this.#entriesOf(slots);
  }

  *#entriesOf(slots: Int32Array): IterableIterator<[string, string]> {
    for (let s = 0; s < slots.length; s += STRIDE) {
      if (slots[s + 1]! <= 0) continue;
      const slab = this.#slabs[slots[s + 1]! - 1]!;
      const o = slots[s + 2]!;
      const kl = slab.view.getUint32(o, true);
      const vl = slab.view.getUint32(o + 4, true);
      const kAt = o + RECORD_HEADER;
      yield [slab.buf.toString('utf8', kAt, kAt + kl), slab.buf.toString('utf8', kAt + kl, kAt + kl + vl)];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Move every half-dead slab's live records now (normally done a little per write). No-op while a snapshot is open. */
  compact(): void {
    while (this.#open.length === 0 && (this.#compacting >= 0 || this.#candidates.length > 0)) this.#compactStep(Infinity);
  }

  /**
   * Open a consistent snapshot in O(slabs): a cursor over the records live now. With `shared: true` the
   * cursor can be handed to another thread (`share()`, see worker-server.ts).
   */
  snapshot(): ShareableSnapshotCursor {
    const snap: OpenSlabSnapshot = { epoch: this.#epoch++ };
    this.#open.push(snap);
    // The slabs to read (index order) and how far: records appended later lie beyond these ends.
    const slabs: Slab[] = [];
    const runs: SlabRun[] = [];
    for (const s of this.#slabs) {
      if (!s || s.used === 0) continue;
      slabs.push(s);
      runs.push({ buf: s.buf, end: s.used });
    }
    // Records dead when the snapshot was opened (killed in an epoch up to the snapshot's) are skipped.
    const skipsOf = (i: number): number[] => {
      const slab = slabs[i];
      const skips: number[] = [];
      if (slab) for (let d = 0; d < slab.deadAt.length; d++) if (slab.deadEpoch[d]! <= snap.epoch) skips.push(slab.deadAt[d]!);
      return skips;
    };
    return new SlabRunCursor(runs, this.#size, skipsOf, () => {
      this.#open = this.#open.filter((s) => s !== snap);
      slabs.length = 0;
    });
  }

  /** Packed records or flat [k1, v1, …] strings → a new map, for `restoreChunks()`. */
  static builder(options?: SlabMapOptions): SlabMapBuilder {
    const m = new SlabMap(options);
    return {
      recordWidth: 2,
      expect(totalRecords: number) {
        // Only before the first record (an index sized later would drop what it holds). The count comes
        // from the wire (meta.totalRecords): the index is presized for at most EXPECT_MAX records and grows
        // with the records that actually arrive beyond that, so a wrong or hostile count cannot make the
        // joiner reserve gigabytes (2^28 reserved 8 GiB of index).
        if (m.#size === 0 && !m.#pending?.n && Number.isSafeInteger(totalRecords) && totalRecords > 0) {
          m.#sizeIndex(Math.min(totalRecords, EXPECT_MAX));
          m.#pendingCap = Math.min(PENDING_MAX, Math.max(PENDING, totalRecords));
          m.#pending = undefined;
        }
      },
      add(items) {
        if (items.length % 2 !== 0) throw new TypeError('SlabMap records come in key, value pairs');
        for (let i = 0; i < items.length; i += 2) {
          const k = items[i];
          const v = items[i + 1];
          if (typeof k !== 'string' || typeof v !== 'string') throw new TypeError('SlabMap records are [string, string]');
          const before = m.#size;
          m.set(k, v);
          if (m.#size === before) throw new TypeError(`SlabMap records repeat the key ${JSON.stringify(k.slice(0, 100))}`);
        }
      },
      addPacked: (slice: PackedSlice) => m.#addPacked(slice),
      finish: () => {
        m.#flushPending();
        m.#pending = undefined;
        m.#trimTail();
        return m;
      },
    };
  }

  // ---- building from received bytes ----------------------------------------------------------------

  #addPacked(slice: PackedSlice): void {
    const u = slice.bytes;
    const uv = new DataView(u.buffer, u.byteOffset, u.byteLength);
    let p = slice.at;
    const end = slice.end;
    while (p < end) {
      // The whole records that fit in the tail slab, copied at once.
      const tail = this.#tail;
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
        // rather than hundreds (each large external allocation can make V8 collect); #trimTail
        // shrinks the last one when the build finishes.
        const grown = Math.min(BUILD_SLAB_MAX, Math.max(this.#slabBytes, this.#liveBytes));
        this.#newTail(Math.max(grown, recordEnd(uv, p) - p));
        continue;
      }
      const base = tail.used;
      tail.buf.set(u.subarray(p, q), base);
      tail.used += q - p;
      this.#indexRun(tail, base, base + (q - p));
      p = q;
    }
  }

  /**
   * Records of a map being built that are hashed but not yet in the index (see #indexRun): slab id,
   * offset, lane-A hash of each. Inserted in index order when a batch is full (see PENDING), and by
   * #flushPending (the builder's finish).
   */
  #pending: PendingBatch | undefined;
  /** How many records a pending batch holds (see PENDING). */
  #pendingCap = PENDING;

  /**
   * Hash the records in [base, stop) of the tail slab, for a map being built (no open snapshot): key
   * and value bytes (UTF-8 checked when not ASCII), digest summed; queue them for the index. In
   * WebAssembly when available (record-hash.ts: 0.11 against 0.19–0.23 µs per record), else in the
   * JavaScript loop below (same results).
   */
  #indexRun(slab: Slab, base: number, stop: number): void {
    const slabId = this.#tailIndex + 1;
    const p = (this.#pending ??= pendingBatch(this.#pendingCap));
    const hasher = recordRunHasher();
    if (hasher) {
      const count = hasher.run(slab.buf, base, stop, base, this.#lane1, this.#lane2);
      if (count < 0) throw new TypeError('SlabMap: packed records overrun their slice');
      if ((hasher.high & 0x80808080) !== 0) checkUtf8Records(slab, base, stop);
      this.#lane1 = hasher.sumA >>> 0;
      this.#lane2 = hasher.sumB >>> 0;
      const ints = hasher.ints;
      for (let i = 0; i < count; ) {
        const m = Math.min(count - i, p.cap - p.n);
        p.hash.set(ints.subarray(hasher.hashIndex + i, hasher.hashIndex + i + m), p.n);
        p.at.set(ints.subarray(hasher.atIndex + i, hasher.atIndex + i + m), p.n);
        p.slab.fill(slabId, p.n, p.n + m);
        p.n += m;
        i += m;
        if (p.n === p.cap) this.#flushPending();
      }
      this.#liveBytes += stop - base;
      return;
    }
    const v = slab.view;
    let l1 = this.#lane1;
    let l2 = this.#lane2;
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
    this.#lane1 = l1;
    this.#lane2 = l2;
    this.#liveBytes += stop - base;
  }

  /**
   * Insert the queued records into the index, sorted by their home slot (a counting sort on its top
   * bits): the index is then swept from start to end instead of hit at random, so a batch touches
   * each page of the index once — far fewer cache and TLB misses than one random insert per record.
   * A repeated key is a corrupt snapshot (TypeError).
   */
  #flushPending(): void {
    const p = this.#pending;
    if (!p || p.n === 0) return;
    const n = p.n;
    p.n = 0;
    this.#migrate(Infinity); // (entries added with add() may have started a growth)
    if (this.#size + n > (this.#mask + 1) * MAX_LOAD) this.#sizeIndex(this.#size + n, true);
    const slots = this.#slots;
    const mask = this.#mask;
    const bits = Math.max(0, 31 - Math.clz32(mask + 1) - 12);
    const counts = new Int32Array(4097);
    const hash = p.hash;
    for (let r = 0; r < n; r++) counts[((hash[r]! & mask) >>> bits) + 1]!++;
    for (let b = 1; b <= 4096; b++) counts[b]! += counts[b - 1]!;
    // Scatter the entries themselves (not their positions), so the insert loop reads them in order.
    const sh = p.sortedHash;
    const ss = p.sortedSlab;
    const sa = p.sortedAt;
    const slab = p.slab;
    const at = p.at;
    for (let r = 0; r < n; r++) {
      const k1 = hash[r]!;
      const d = counts[(k1 & mask) >>> bits]!++;
      sh[d] = k1;
      ss[d] = slab[r]!;
      sa[d] = at[r]!;
    }
    for (let j = 0; j < n; j++) this.#insertFresh(slots, mask, sh[j]!, ss[j]!, sa[j]!);
    this.#size += n;
  }

  /**
   * Insert one record of a map being built (one call per record, so V8 optimises it early; the batch
   * loops around it run too rarely to be optimised well).
   */
  #insertFresh(slots: Int32Array, mask: number, k1: number, slabId: number, at: number): void {
    for (let i = k1 & mask; ; i = (i + 1) & mask) {
      const s = i * STRIDE;
      const sl = slots[s + 1]!;
      if (sl === 0) {
        slots[s] = k1;
        slots[s + 1] = slabId;
        slots[s + 2] = at;
        return;
      }
      if (slots[s] === k1) this.#checkRepeat(sl, slots[s + 2]!, this.#slabs[slabId - 1]!, at);
    }
  }

  /** Throw when the record at `at` in `slab` has the same key as the one at (slabId - 1, o). */
  #checkRepeat(slabId: number, o: number, slab: Slab, at: number): void {
    const other = this.#slabs[slabId - 1]!.view;
    const kl = slab.view.getUint32(at, true);
    if (other.getUint32(o, true) === kl && sameBytes(other, o + RECORD_HEADER, slab.view, at + RECORD_HEADER, kl)) {
      throw new TypeError(`SlabMap records repeat the key ${JSON.stringify(slab.buf.toString('utf8', at + RECORD_HEADER, at + RECORD_HEADER + Math.min(kl, 100)))}`);
    }
  }

  // ---- index -----------------------------------------------------------------------------------------

  /** The key's UTF-8 bytes into the scratch buffer, hashed (→ laneA, laneB); returns their length. */
  #keyBytes(key: string): number {
    if (typeof key !== 'string') throw new TypeError('SlabMap keys are strings');
    if (this.#scratch.buf.length < 3 * key.length) this.#scratch = new Slab(Math.max(2 * this.#scratch.buf.length, 3 * key.length));
    const n = key.length === 0 ? 0 : writeUtf8(this.#scratch.buf, key, 0, this.#scratch.buf.length);
    hashBytes(this.#scratch.view, 0, n, SEED_A, SEED_B);
    return n;
  }

  /** Slot (index into #slots) of the key now in the scratch buffer (its hash in laneA), or -1. */
  #findScratch(kl: number): number {
    const h = laneA | 0;
    const s = this.#probeKey(this.#slots, this.#mask, h, kl);
    if (s >= 0 || !this.#old) return s;
    const o = this.#probeKey(this.#old, this.#oldMask, h, kl);
    return o < 0 ? -1 : this.#promote(o);
  }

  /** Slot of the scratch key (hash h, kl bytes) in `slots`, or -1; tombstones (slab id -1) are skipped. */
  #probeKey(slots: Int32Array, mask: number, h: number, kl: number): number {
    const key = this.#scratch.view;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = i * STRIDE;
      const sl = slots[s + 1]!;
      if (sl === 0) return -1;
      if (sl < 0 || slots[s] !== h) continue;
      const v = this.#slabs[sl - 1]!.view;
      const o = slots[s + 2]!;
      if (v.getUint32(o, true) === kl && sameBytes(v, o + RECORD_HEADER, key, 0, kl)) return s;
    }
  }

  /** Move the entry at slot `o` of the old table into #slots (tombstone left behind); its new slot. */
  #promote(o: number): number {
    const old = this.#old!;
    const s = this.#place(old[o]!, old[o + 1]!, old[o + 2]!);
    old[o + 1] = -1;
    return s;
  }

  /** Put an entry into #slots (no growth check); its slot. */
  #place(k1: number, slabId: number, at: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    let i = k1 & mask;
    while (slots[i * STRIDE + 1] !== 0) i = (i + 1) & mask;
    const s = i * STRIDE;
    slots[s] = k1;
    slots[s + 1] = slabId;
    slots[s + 2] = at;
    return s;
  }

  /** Move up to `n` slots of the old table (from #migrateAt on) into #slots; drop it when done. */
  #migrate(n: number): void {
    const old = this.#old;
    if (!old) return;
    const end = Math.min(old.length, this.#migrateAt + n * STRIDE);
    for (let j = this.#migrateAt; j < end; j += STRIDE) {
      if (old[j + 1]! <= 0) continue;
      this.#place(old[j]!, old[j + 1]!, old[j + 2]!);
      old[j + 1] = -1; // moved: a later lookup must not find (and move) it again
    }
    this.#migrateAt = end;
    if (end >= old.length) this.#old = undefined;
  }

  #insert(k1: number, slabIndex: number, o: number): void {
    if (this.#size + 1 > (this.#mask + 1) * MAX_LOAD) this.#grow();
    this.#place(k1, slabIndex + 1, o);
  }

  /**
   * Start moving to a table twice the size: the current one becomes #old and is emptied a few slots per
   * write. A new table holds at most MAX_LOAD / 2 when it starts and gains one entry per insert, while
   * every write moves MIGRATE_SLOTS ≥ 2 old slots, so the move ends long before it could fill.
   */
  #grow(): void {
    this.#migrate(Infinity); // (only if a previous move is somehow unfinished)
    this.#old = this.#slots;
    this.#oldMask = this.#mask;
    this.#migrateAt = 0;
    const cap = (this.#mask + 1) * 2;
    this.#slots = new Int32Array(cap * STRIDE);
    this.#mask = cap - 1;
  }

  /** An index for `entries` entries (at least 1024 slots): empty, or with `keep` the current entries moved in. */
  #sizeIndex(entries: number, keep = false): void {
    if (keep) this.#migrate(Infinity);
    else this.#old = undefined;
    let cap = 1024;
    while (cap * MAX_LOAD < entries) cap *= 2;
    const old = this.#slots;
    const slots = new Int32Array(cap * STRIDE);
    const mask = cap - 1;
    if (keep) {
      for (let j = 0; j < old.length; j += STRIDE) {
        if (old[j + 1] === 0) continue;
        let i = old[j]! & mask;
        while (slots[i * STRIDE + 1] !== 0) i = (i + 1) & mask;
        const s = i * STRIDE;
        slots[s] = old[j]!;
        slots[s + 1] = old[j + 1]!;
        slots[s + 2] = old[j + 2]!;
      }
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** Linear probing deletion without tombstones: shift later members of the cluster back. */
  #removeSlot(slot: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = slot / STRIDE;
    let i = hole;
    for (;;) {
      i = (i + 1) & mask;
      const s = i * STRIDE;
      if (slots[s + 1] === 0) break;
      const home = slots[s]! & mask;
      // Move i into the hole unless its home lies cyclically in (hole, i].
      const between = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!between) {
        const d = hole * STRIDE;
        slots[d] = slots[s]!;
        slots[d + 1] = slots[s + 1]!;
        slots[d + 2] = slots[s + 2]!;
        hole = i;
      }
    }
    const d = hole * STRIDE;
    slots[d] = 0;
    slots[d + 1] = 0;
    slots[d + 2] = 0;
  }

  // ---- slabs -------------------------------------------------------------------------------------------

  /** After a build: move the tail's records into a slab of their size when most of a large tail is unused. */
  #trimTail(): void {
    const tail = this.#tail;
    if (tail.buf.length <= this.#slabBytes || tail.used * 2 > tail.buf.length) return;
    const slab = new Slab(Math.max(this.#slabBytes, tail.used), this.#shared);
    tail.buf.copy(slab.buf, 0, 0, tail.used);
    slab.used = tail.used;
    this.#slabs[this.#tailIndex] = slab;
    this.#tail = slab;
  }

  #newTail(minBytes: number): void {
    const old = this.#tail;
    if (!old.queued && old.deadBytes * 2 >= old.used && old.used > 0) {
      old.queued = true;
      this.#candidates.push(this.#tailIndex);
    }
    if (minBytes >= 2 ** 31) throw new RangeError(`SlabMap: a record of ${minBytes} bytes is too large`);
    const slab = new Slab(Math.max(this.#slabBytes, minBytes), this.#shared);
    // A freed index is reused only while no snapshot is open (an open snapshot lists the slabs it reads).
    const idx = this.#open.length === 0 && this.#freeIndices.length > 0 ? this.#freeIndices.pop()! : this.#slabs.length;
    if (idx === this.#slabs.length) this.#slabs.push(slab);
    else this.#slabs[idx] = slab;
    this.#tail = slab;
    this.#tailIndex = idx;
  }

  /** Mark the record at (slabIndex, o) dead (in the current epoch) and account its bytes. */
  #kill(slabIndex: number, o: number): void {
    const slab = this.#slabs[slabIndex]!;
    const len = recordEnd(slab.view, o) - o;
    slab.deadAt.push(o);
    slab.deadEpoch.push(this.#epoch);
    slab.deadBytes += len;
    this.#liveBytes -= len;
    if (!slab.queued && slab !== this.#tail && slab.deadBytes * 2 >= slab.used) {
      slab.queued = true;
      this.#candidates.push(slabIndex);
    }
  }

  /** Add (sign 1) or remove (-1) the record at `o` in `slab` to/from the digest; k1, k2: its key's lanes. */
  #account(slab: Slab, o: number, k1: number, k2: number, sign: 1 | -1): void {
    const v = slab.view;
    const vAt = o + RECORD_HEADER + v.getUint32(o, true);
    hashBytes(v, vAt, vAt + v.getUint32(o + 4, true), VALUE_SEED_A, VALUE_SEED_B);
    combine(k1, k2);
    this.#lane1 = (this.#lane1 + sign * laneA) >>> 0;
    this.#lane2 = (this.#lane2 + sign * laneB) >>> 0;
  }

  /**
   * Compaction work after a write of `bytes`: move up to 4 × bytes of live records (at least one
   * record) out of the slab being compacted; free it when done. Nothing while a snapshot is open.
   */
  #compactStep(bytes: number): void {
    if (this.#open.length > 0) return;
    let budget = bytes * 4;
    while (budget > 0) {
      if (this.#compacting < 0) {
        const next = this.#candidates.pop();
        if (next === undefined) return;
        const s = this.#slabs[next];
        if (!s || s === this.#tail) continue;
        this.#compacting = next;
        this.#compactAt = 0;
      }
      const idx = this.#compacting;
      const slab = this.#slabs[idx]!;
      const v = slab.view;
      while (budget > 0 && this.#compactAt < slab.used) {
        const o = this.#compactAt;
        const kl = v.getUint32(o, true);
        const len = RECORD_HEADER + kl + v.getUint32(o + 4, true);
        this.#compactAt += len;
        hashBytes(v, o + RECORD_HEADER, o + RECORD_HEADER + kl, SEED_A, SEED_B);
        const slot = this.#slotOf(laneA, idx, o);
        if (slot < 0) continue; // dead
        budget -= len;
        // Copy to the tail (the source slab is never the tail), repoint the index.
        if (len > this.#tail.buf.length - this.#tail.used) this.#newTail(len);
        const tail = this.#tail;
        tail.buf.set(slab.buf.subarray(o, o + len), tail.used);
        this.#slots[slot + 1] = this.#tailIndex + 1;
        this.#slots[slot + 2] = tail.used;
        tail.used += len;
        // The old copy is dead from now on (a snapshot opened before the slab is freed must skip it).
        slab.deadAt.push(o);
        slab.deadEpoch.push(this.#epoch);
      }
      if (this.#compactAt >= slab.used) {
        this.#slabs[idx] = undefined;
        this.#freeIndices.push(idx);
        this.#compacting = -1;
      }
    }
  }

  /** The slot (index into #slots) holding (slabIndex, o) among those with hash k1, or -1 (the record is dead). */
  #slotOf(k1: number, slabIndex: number, o: number): number {
    const s = probeAddress(this.#slots, this.#mask, k1 | 0, slabIndex + 1, o);
    if (s >= 0 || !this.#old) return s;
    const old = probeAddress(this.#old, this.#oldMask, k1 | 0, slabIndex + 1, o);
    return old < 0 ? -1 : this.#promote(old);
  }
}

/** The slot of `slots` whose entry is (hash h, slabId, o), or -1. */
function probeAddress(slots: Int32Array, mask: number, h: number, slabId: number, o: number): number {
  for (let i = h & mask; ; i = (i + 1) & mask) {
    const s = i * STRIDE;
    const sl = slots[s + 1]!;
    if (sl === 0) return -1;
    if (sl === slabId && slots[s] === h && slots[s + 2] === o) return s;
  }
}

/** Records of a map being built, waiting for the index (see SlabMap's #pending). */
interface PendingBatch {
  readonly slab: Int32Array;
  readonly at: Int32Array;
  readonly hash: Int32Array;
  readonly sortedSlab: Int32Array;
  readonly sortedAt: Int32Array;
  readonly sortedHash: Int32Array;
  readonly cap: number;
  n: number;
}

function pendingBatch(cap: number): PendingBatch {
  const a = (): Int32Array => new Int32Array(cap);
  return { slab: a(), at: a(), hash: a(), sortedSlab: a(), sortedAt: a(), sortedHash: a(), cap, n: 0 };
}

/** Throw a TypeError unless the record's key [kAt, keyEnd) and value [keyEnd, valueEnd) are UTF-8. */
function checkUtf8Record(slab: Slab, kAt: number, keyEnd: number, valueEnd: number): void {
  if (!(isUtf8(slab.buf.subarray(kAt, keyEnd)) && isUtf8(slab.buf.subarray(keyEnd, valueEnd)))) throw new TypeError('SlabMap record is not UTF-8');
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

/** What `SlabMap.builder()` returns: a StateBuilder that also takes packed slices as they arrive. */
export interface SlabMapBuilder extends StateBuilder<SlabMap> {
  addPacked(slice: PackedSlice): void;
  expect(totalRecords: number): void;
}
