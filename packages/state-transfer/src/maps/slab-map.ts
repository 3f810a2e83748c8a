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
 * tail slab (`slabBytes`, default 4 MiB; a larger record gets a slab of its own; slab.ts). A record is
 * the same bytes on the wire (a packed slice, see record-codec.ts). Setting a key appends a new record
 * and marks the old one dead; deleting marks it dead. The index (slab-index.ts) maps the key's hash to
 * the record's address. A map received from another replica is built by slab-map-builder.ts.
 *
 * Snapshots. `snapshot()` fixes, in O(slabs), the list of slabs and the tail slab's end; every record
 * killed after that carries a later *epoch* than the snapshot's, so the cursor emits exactly the
 * records that were live when it was opened (dead before: skipped; killed after: still emitted;
 * appended after: beyond the fixed end). Slabs are never freed or reused while a snapshot is open.
 *
 * Index growth. At 60 % load a table twice the size takes over; the old one is emptied a few slots per
 * write (MIGRATE_SLOTS), so a growing map never pauses to rehash everything.
 *
 * Compaction. When at least half of a (non-tail) slab is dead and no snapshot is open, its live records
 * are moved to the tail a few at a time by later writes (bounded work per write, no pause) and the
 * slab is freed; `compact()` does all of it at once. Memory stays under about twice the live bytes plus
 * two slabs.
 *
 * Strings are stored as UTF-8 (a lone surrogate becomes U+FFFD, as in any UTF-8 store). The digest is
 * the same as a SnapshotMap's over equal contents (same per-entry hash of the same UTF-8 bytes).
 */
import { Buffer } from 'node:buffer';
import { combine, hashBytes, hex32, laneA, laneB, SEED_A, SEED_B, VALUE_SEED_A, VALUE_SEED_B } from './entry-hash.js';
import { RECORD_HEADER } from './record-codec.js';
import { Slab, writeUtf8 } from './slab.js';
import { recordEnd, SlabRunCursor, type ShareableSnapshotCursor, type SlabRun } from './slab-cursor.js';
import { SlabIndex } from './slab-index.js';
import { slabMapBuilder, type SlabMapBuilder, type SlabMapParts } from './slab-map-builder.js';

export { RECORD_HEADER };
export type { SlabMapBuilder };

/** Options of a SlabMap: slab size, initial index size, and whether slabs are shareable with worker threads. */
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
/** Old-table slots the index moves per write while it grows (see SlabIndex.migrate). */
const MIGRATE_SLOTS = 8;

interface OpenSlabSnapshot {
  readonly epoch: number;
}

/** A string → string map stored off the JavaScript heap in Buffer slabs, with O(1) snapshots streamed as raw bytes. */
export class SlabMap {
  readonly #slabBytes: number;
  readonly #shared: boolean;
  #slabs: (Slab | undefined)[] = [];
  #freeIndices: number[] = [];
  #tail: Slab;
  #tailIndex: number;
  #index: SlabIndex;
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
    if (!Number.isInteger(slab) || slab < MIN_SLAB || slab >= 2 ** 31)
      throw new RangeError(`slabBytes must be an integer from ${MIN_SLAB} to 2^31 - 1 (got ${slab})`);
    this.#slabBytes = slab;
    this.#shared = options.shared === true;
    this.#index = new SlabIndex(options.expectedSize ?? 0);
    this.#tailIndex = 0;
    this.#tail = new Slab(slab, this.#shared);
    this.#slabs.push(this.#tail);
  }

  /** Number of entries. */
  get size(): number {
    return this.#index.size;
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
    return this.#index.growing;
  }

  /** Order-independent digest of the contents (16 hex digits + size), equal to a SnapshotMap's. O(1). */
  digest(): string {
    return hex32(this.#lane1) + hex32(this.#lane2) + ':' + this.#index.size;
  }

  /** The value of `key`, or undefined. */
  get(key: string): string | undefined {
    const slot = this.#findScratch(this.#keyBytes(key));
    if (slot < 0) return undefined;
    const slab = this.#slabs[this.#index.slabIdAt(slot) - 1]!;
    const o = this.#index.offsetAt(slot);
    const vAt = o + RECORD_HEADER + slab.view.getUint32(o, true);
    return slab.buf.toString('utf8', vAt, vAt + slab.view.getUint32(o + 4, true));
  }

  /** True when `key` is present. */
  has(key: string): boolean {
    return this.#findScratch(this.#keyBytes(key)) >= 0;
  }

  /** Set `key` to a string value (open snapshots keep seeing the old one). */
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
    const index = this.#index;
    if (slot >= 0) {
      const oldSlab = index.slabIdAt(slot) - 1;
      const oldAt = index.offsetAt(slot);
      this.#account(this.#slabs[oldSlab]!, oldAt, k1, k2, -1);
      this.#kill(oldSlab, oldAt);
      index.repoint(slot, this.#tailIndex + 1, o);
    } else {
      index.insert(k1, this.#tailIndex + 1, o);
    }
    this.#liveBytes += recBytes;
    this.#account(tail, o, k1, k2, 1);
    index.migrate(MIGRATE_SLOTS);
    this.#compactStep(recBytes);
    return this;
  }

  /** Remove `key`; false when it was absent. */
  delete(key: string): boolean {
    const slot = this.#findScratch(this.#keyBytes(key));
    if (slot < 0) return false;
    const k1 = laneA;
    const k2 = laneB;
    const index = this.#index;
    const slabIndex = index.slabIdAt(slot) - 1;
    const o = index.offsetAt(slot);
    this.#account(this.#slabs[slabIndex]!, o, k1, k2, -1);
    this.#kill(slabIndex, o);
    index.remove(slot);
    index.migrate(MIGRATE_SLOTS);
    this.#compactStep(RECORD_HEADER);
    return true;
  }

  /** Remove every entry (open snapshots keep seeing them). */
  clear(): void {
    if (this.#open.length > 0) {
      // Open snapshots still read the slabs: kill every record instead.
      this.#index.drain((slabId, at) => this.#kill(slabId - 1, at));
    } else {
      this.#slabs = [];
      this.#freeIndices = [];
      this.#candidates = [];
      this.#compacting = -1;
      this.#tailIndex = 0;
      this.#tail = new Slab(this.#slabBytes, this.#shared);
      this.#slabs.push(this.#tail);
      this.#index.reset(0);
    }
    this.#liveBytes = 0;
    this.#lane1 = 0;
    this.#lane2 = 0;
  }

  /** Live entries, in index order (not insertion order). */
  *entries(): IterableIterator<[string, string]> {
    for (const [slabId, o] of this.#index.addresses()) {
      const slab = this.#slabs[slabId - 1]!;
      const kl = slab.view.getUint32(o, true);
      const vl = slab.view.getUint32(o + 4, true);
      const kAt = o + RECORD_HEADER;
      yield [slab.buf.toString('utf8', kAt, kAt + kl), slab.buf.toString('utf8', kAt + kl, kAt + kl + vl)];
    }
  }

  /** Every key, in storage order. */
  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  /** Every [key, value] pair, in storage order. */
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
    return new SlabRunCursor(runs, this.#index.size, skipsOf, () => {
      this.#open = this.#open.filter((s) => s !== snap);
      slabs.length = 0;
    });
  }

  /** Packed records or flat [k1, v1, …] strings → a new map, for `restoreChunks()` (slab-map-builder.ts). */
  static builder(options?: SlabMapOptions): SlabMapBuilder {
    return slabMapBuilder(new SlabMap(options).#parts());
  }

  /** What a builder fills: this map's index, slabs, tail, byte count and digest lanes. */
  #parts(): SlabMapParts {
    // (the accessors below run with the parts object as `this`)
    const m = this;
    return {
      map: m,
      index: m.#index,
      slabBytes: m.#slabBytes,
      get slabs() {
        return m.#slabs;
      },
      get tail() {
        return m.#tail;
      },
      get tailId() {
        return m.#tailIndex + 1;
      },
      get liveBytes() {
        return m.#liveBytes;
      },
      set liveBytes(v: number) {
        m.#liveBytes = v;
      },
      get lane1() {
        return m.#lane1;
      },
      set lane1(v: number) {
        m.#lane1 = v;
      },
      get lane2() {
        return m.#lane2;
      },
      set lane2(v: number) {
        m.#lane2 = v;
      },
      newTail: (minBytes: number) => m.#newTail(minBytes),
      trimTail: () => m.#trimTail(),
    };
  }

  // ---- index ---------------------------------------------------------------------------------------

  /** The key's UTF-8 bytes into the scratch buffer, hashed (→ laneA, laneB); returns their length. */
  #keyBytes(key: string): number {
    if (typeof key !== 'string') throw new TypeError('SlabMap keys are strings');
    if (this.#scratch.buf.length < 3 * key.length) this.#scratch = new Slab(Math.max(2 * this.#scratch.buf.length, 3 * key.length));
    const n = key.length === 0 ? 0 : writeUtf8(this.#scratch.buf, key, 0, this.#scratch.buf.length);
    hashBytes(this.#scratch.view, 0, n, SEED_A, SEED_B);
    return n;
  }

  /** Slot of the key now in the scratch buffer (its hash in laneA), or -1. */
  #findScratch(kl: number): number {
    return this.#index.find(this.#slabs, this.#scratch.view, kl, laneA | 0);
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
        const slot = this.#index.addressOf(laneA, idx + 1, o);
        if (slot < 0) continue; // dead
        budget -= len;
        // Copy to the tail (the source slab is never the tail), repoint the index.
        if (len > this.#tail.buf.length - this.#tail.used) this.#newTail(len);
        const tail = this.#tail;
        tail.buf.set(slab.buf.subarray(o, o + len), tail.used);
        this.#index.repoint(slot, this.#tailIndex + 1, tail.used);
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
}
