/**
 * The index of a SlabMap: an open-addressing hash table (linear probing) from a key to the address of
 * its record, `STRIDE` int32 per slot — the key's lane-A hash, the slab id (slab index + 1; 0 = empty
 * slot) and the record's offset in the slab. Keys themselves stay in the slabs: a probe compares the
 * key bytes of the records it meets.
 *
 * Growth. At 60 % load a table twice the size takes over and the old one is emptied a few slots per
 * write (`migrate`), so a growing map never stops to rehash everything. A key looked up in the old table
 * is moved at once, so callers only ever see slots of the current table.
 *
 * Bulk inserts. A map being built from received records inserts them a batch at a time (`addBatch`),
 * sorted by home slot, so that the table is swept from start to end instead of hit at random.
 */
import { RECORD_HEADER } from './record-codec.js';
import { sameBytes, type Slab } from './slab.js';

/** Slot stride of the index: lane-A hash, slab index + 1 (0 = empty slot), offset, unused. */
const STRIDE = 4;
/** The index is grown when more than this fraction of its slots is used. */
const MAX_LOAD = 0.6;

/** A map's slabs, by slab id - 1 (freed slabs are undefined). */
export type SlabList = readonly (Slab | undefined)[];

/** Records of a map being built, hashed and waiting for the index (see SlabIndex.addBatch). */
export interface PendingBatch {
  readonly slab: Int32Array;
  readonly at: Int32Array;
  readonly hash: Int32Array;
  readonly sortedSlab: Int32Array;
  readonly sortedAt: Int32Array;
  readonly sortedHash: Int32Array;
  readonly cap: number;
  n: number;
}

export function pendingBatch(cap: number): PendingBatch {
  const a = (): Int32Array => new Int32Array(cap);
  return { slab: a(), at: a(), hash: a(), sortedSlab: a(), sortedAt: a(), sortedHash: a(), cap, n: 0 };
}

export class SlabIndex {
  #slots: Int32Array;
  #mask: number;
  /**
   * While the index grows: the previous, half-size table, whose entries move to #slots a few slots per
   * write (see migrate) from #migrateAt on, so a growing map never stops to rehash everything. Its
   * deleted entries are tombstones (slab id -1): shifting entries back could carry them behind the
   * cursor. A key found there is moved at once, so callers only ever see slots of #slots.
   */
  #old: Int32Array | undefined;
  #oldMask = 0;
  #migrateAt = 0;
  #size = 0;

  /** An empty index sized for `entries` entries (at least 1024 slots). */
  constructor(entries: number) {
    this.#slots = new Int32Array(0);
    this.#mask = -1;
    this.reset(entries);
  }

  /** Entries in the index. */
  get size(): number {
    return this.#size;
  }

  /** True while the index is moving to a larger table, a few slots per write (diagnostic). */
  get growing(): boolean {
    return this.#old !== undefined;
  }

  /** The slab id (slab index + 1) of the record at `slot`. */
  slabIdAt(slot: number): number {
    return this.#slots[slot + 1]!;
  }

  /** The offset in its slab of the record at `slot`. */
  offsetAt(slot: number): number {
    return this.#slots[slot + 2]!;
  }

  /** The key at `slot` now lives at (slabId, at). */
  repoint(slot: number, slabId: number, at: number): void {
    this.#slots[slot + 1] = slabId;
    this.#slots[slot + 2] = at;
  }

  /** Slot (index into the table) of the key `key[0, kl)` whose lane-A hash is h, or -1. */
  find(slabs: SlabList, key: DataView, kl: number, h: number): number {
    const s = probeKey(slabs, this.#slots, this.#mask, key, kl, h);
    if (s >= 0 || !this.#old) return s;
    const o = probeKey(slabs, this.#old, this.#oldMask, key, kl, h);
    return o < 0 ? -1 : this.#promote(o);
  }

  /** The slot holding (slabId, o) among those with hash h, or -1 (the record is dead). */
  addressOf(h: number, slabId: number, o: number): number {
    const s = probeAddress(this.#slots, this.#mask, h | 0, slabId, o);
    if (s >= 0 || !this.#old) return s;
    const old = probeAddress(this.#old, this.#oldMask, h | 0, slabId, o);
    return old < 0 ? -1 : this.#promote(old);
  }

  /** Add a key (not in the index) with hash h at (slabId, o), growing the table when it is full. */
  insert(h: number, slabId: number, o: number): void {
    if (this.#size + 1 > (this.#mask + 1) * MAX_LOAD) this.#grow();
    this.#place(h, slabId, o);
    this.#size++;
  }

  /** Linear probing deletion without tombstones: shift later members of the cluster back. */
  remove(slot: number): void {
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
    this.#size--;
  }

  /** Move up to `n` slots of the old table (from #migrateAt on) into #slots; drop it when done. */
  migrate(n: number): void {
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

  /** Empty, sized for `entries` entries (at least 1024 slots). */
  reset(entries: number): void {
    this.#old = undefined;
    this.#slots = new Int32Array(tableSlots(entries) * STRIDE);
    this.#mask = this.#slots.length / STRIDE - 1;
    this.#size = 0;
  }

  /** Call `each` with the address of every entry, then empty the index (its table keeps its size). */
  drain(each: (slabId: number, at: number) => void): void {
    this.migrate(Infinity);
    const slots = this.#slots;
    for (let s = 0; s < slots.length; s += STRIDE) if (slots[s + 1] !== 0) each(slots[s + 1]!, slots[s + 2]!);
    slots.fill(0);
    this.#size = 0;
  }

  /** The address (slab id, offset) of every entry, in table order. */
  *addresses(): IterableIterator<readonly [slabId: number, at: number]> {
    for (const slots of this.#old ? [this.#slots, this.#old] : [this.#slots]) {
      for (let s = 0; s < slots.length; s += STRIDE) if (slots[s + 1]! > 0) yield [slots[s + 1]!, slots[s + 2]!];
    }
  }

  /**
   * Insert the records of a batch (keys not yet in the index) sorted by their home slot (a counting sort
   * on its top bits): the index is then swept from start to end instead of hit at random, so a batch
   * touches each page of the index once — far fewer cache and TLB misses than one random insert per
   * record. A repeated key is a corrupt snapshot (TypeError). Empties the batch.
   */
  addBatch(slabs: SlabList, p: PendingBatch): void {
    if (p.n === 0) return;
    const n = p.n;
    p.n = 0;
    this.migrate(Infinity); // (entries added one by one may have started a growth)
    if (this.#size + n > (this.#mask + 1) * MAX_LOAD) this.#reserve(this.#size + n);
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
    for (let j = 0; j < n; j++) this.#insertFresh(slabs, slots, mask, sh[j]!, ss[j]!, sa[j]!);
    this.#size += n;
  }

  /**
   * Insert one record of a map being built (one call per record, so V8 optimises it early; the batch
   * loops around it run too rarely to be optimised well).
   */
  #insertFresh(slabs: SlabList, slots: Int32Array, mask: number, k1: number, slabId: number, at: number): void {
    for (let i = k1 & mask; ; i = (i + 1) & mask) {
      const s = i * STRIDE;
      const sl = slots[s + 1]!;
      if (sl === 0) {
        slots[s] = k1;
        slots[s + 1] = slabId;
        slots[s + 2] = at;
        return;
      }
      if (slots[s] === k1) checkRepeat(slabs[sl - 1]!, slots[s + 2]!, slabs[slabId - 1]!, at);
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

  /**
   * Start moving to a table twice the size: the current one becomes #old and is emptied a few slots per
   * write. A new table holds at most MAX_LOAD / 2 when it starts and gains one entry per insert, while
   * every write moves (SlabMap's MIGRATE_SLOTS) ≥ 2 old slots, so the move ends long before it could fill.
   */
  #grow(): void {
    this.migrate(Infinity); // (only if a previous move is somehow unfinished)
    this.#old = this.#slots;
    this.#oldMask = this.#mask;
    this.#migrateAt = 0;
    const cap = (this.#mask + 1) * 2;
    this.#slots = new Int32Array(cap * STRIDE);
    this.#mask = cap - 1;
  }

  /** A table for `entries` entries with the current entries moved in, at once. */
  #reserve(entries: number): void {
    this.migrate(Infinity);
    const old = this.#slots;
    const slots = new Int32Array(tableSlots(entries) * STRIDE);
    const mask = slots.length / STRIDE - 1;
    for (let j = 0; j < old.length; j += STRIDE) {
      if (old[j + 1] === 0) continue;
      let i = old[j]! & mask;
      while (slots[i * STRIDE + 1] !== 0) i = (i + 1) & mask;
      const s = i * STRIDE;
      slots[s] = old[j]!;
      slots[s + 1] = old[j + 1]!;
      slots[s + 2] = old[j + 2]!;
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

/** Slots of a table for `entries` entries: a power of two, at least 1024, loaded at most MAX_LOAD. */
function tableSlots(entries: number): number {
  let cap = 1024;
  while (cap * MAX_LOAD < entries) cap *= 2;
  return cap;
}

/** Slot of the key key[0, kl) (hash h) in `slots`, or -1; tombstones (slab id -1) are skipped. */
function probeKey(slabs: SlabList, slots: Int32Array, mask: number, key: DataView, kl: number, h: number): number {
  for (let i = h & mask; ; i = (i + 1) & mask) {
    const s = i * STRIDE;
    const sl = slots[s + 1]!;
    if (sl === 0) return -1;
    if (sl < 0 || slots[s] !== h) continue;
    const v = slabs[sl - 1]!.view;
    const o = slots[s + 2]!;
    if (v.getUint32(o, true) === kl && sameBytes(v, o + RECORD_HEADER, key, 0, kl)) return s;
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

/** Throw when the record at `at` in `slab` has the same key as the one at `o` in `other`. */
function checkRepeat(other: Slab, o: number, slab: Slab, at: number): void {
  const kl = slab.view.getUint32(at, true);
  if (other.view.getUint32(o, true) === kl && sameBytes(other.view, o + RECORD_HEADER, slab.view, at + RECORD_HEADER, kl)) {
    throw new TypeError(
      `SlabMap records repeat the key ${JSON.stringify(slab.buf.toString('utf8', at + RECORD_HEADER, at + RECORD_HEADER + Math.min(kl, 100)))}`,
    );
  }
}
