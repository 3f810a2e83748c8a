/**
 * The catch-up backlog: the serving replica's most recent log entries, bounded by count (and
 * optionally by bytes), like Redis's replication backlog. A joiner whose snapshot was taken at seq S
 * is brought up to date from it with entries S+1, S+2, …; when S+1 has already been evicted (the
 * joiner fell too far behind) the transfer starts afresh with a new snapshot.
 */
import { Buffer } from 'node:buffer';
import { packEncoded } from '@tandem/core/internal';
import { pack, unpack } from './codec.js';
import { BacklogOverrunError } from './errors.js';

/** A log entry as the transfer carries it: anything with a sequence number. */
export interface LogEntry {
  seq: number;
  [field: string]: unknown;
}

/** Options of a ReplicationBacklog: entry and byte bounds, how to size an entry, and how entries are stored. */
export interface BacklogOptions<E> {
  /** Most entries kept (default 100 000). */
  maxEntries?: number;
  /** Most bytes kept, as measured by `sizeOf` (default: unbounded). */
  maxBytes?: number;
  /** Size of an entry in bytes, for maxBytes (default: its encoded size with `storage: 'encoded'`, else 1). */
  sizeOf?: (entry: E) => number;
  /**
   * How entries are kept (default 'objects'):
   * * 'encoded': msgpack bytes in 1 MiB slabs outside the JavaScript heap, decoded again by `read` (the
   *   way a joiner receives them anyway). A serving replica appends an entry per request and keeps it for
   *   as long as the backlog reaches back; as objects, every one of them survives V8's young-generation
   *   collections and is copied twice (to the survivor space, then to the old generation): with a busy
   *   replica, a good part of each such pause. As bytes they cost the collector nothing, for a msgpack
   *   encoding per append (`tools/bench-state-transfer/backlog-gc.ts` measures both side by side:
   *   scavenge pauses 1.2–1.3× shorter with 'encoded' for a 1M-key replica at 2000 requests/s).
   * * 'objects': the entries themselves (read returns the same objects; anything may be kept).
   */
  storage?: 'encoded' | 'objects';
}

/** Encoded entries are packed into slabs of this size (one larger entry gets a slab of its own). */
const SLAB_BYTES = 1 << 20;

/** What a transfer server reads of a backlog (a ReplicationBacklog, or a view of one on another thread). */
export interface BacklogView<E extends LogEntry = LogEntry> {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** True when the backlog still holds entry `seq` (between firstSeq and lastSeq). */
  covers(seq: number): boolean;
  /** Up to `max` entries from `seq` on, in order; throws BacklogOverrunError when `seq` has been dropped. */
  read(seq: number, max: number): E[];
  /** Call `listener` after every append; returns a function that removes it. */
  onAppend(listener: () => void): () => void;
}

export class ReplicationBacklog<E extends LogEntry = LogEntry> implements BacklogView<E> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly storage: 'encoded' | 'objects';
  readonly #sizeOf: ((entry: E) => number) | undefined;
  /** 'objects': the entries; 'encoded': unused. */
  #items: E[] = [];
  /** 'encoded': per entry its slab number, offset and length (small integers: nothing for the GC to trace). */
  #slabOf: number[] = [];
  #offsetOf: number[] = [];
  #lengthOf: number[] = [];
  /** 'encoded': slabs by number; the newest one is being filled. */
  readonly #slabs = new Map<number, Buffer>();
  #slabNo = -1;
  #slabUsed = SLAB_BYTES;
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  #lastSeq = 0;
  #evicted = 0;
  readonly #listeners = new Set<() => void>();

  constructor(options: BacklogOptions<E> = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 100_000);
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#sizeOf = options.sizeOf;
    this.storage = options.storage ?? 'objects';
  }

  /** Entries held. */
  get size(): number {
    return this.#sizes.length - this.#head;
  }

  /** Bytes of the entries held, as measured by `sizeOf`. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of slab memory held by 'encoded' storage (outside the JavaScript heap); 0 for 'objects'. */
  get slabBytes(): number {
    let n = 0;
    for (const b of this.#slabs.values()) n += b.length;
    return n;
  }

  /** Entries dropped from the front so far. */
  get evicted(): number {
    return this.#evicted;
  }

  /** Seq of the newest entry ever appended (0 = none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Seq of the oldest entry held; lastSeq + 1 when empty (entries are consecutive). */
  get firstSeq(): number {
    return this.#lastSeq - this.size + 1;
  }

  /** Append the next entry (its seq must be lastSeq + 1, except for the very first or after reset). */
  append(entry: E): void {
    if (this.#lastSeq !== 0 && entry.seq !== this.#lastSeq + 1) {
      throw new RangeError(`backlog: entry seq ${entry.seq} does not follow ${this.#lastSeq}`);
    }
    let size: number;
    if (this.storage === 'encoded') {
      const bytes = pack(entry);
      this.#store(bytes);
      size = this.#sizeOf ? this.#sizeOf(entry) : bytes.length;
    } else {
      this.#items.push(entry);
      size = this.#sizeOf ? this.#sizeOf(entry) : 1;
    }
    this.#sizes.push(size);
    this.#bytes += size;
    this.#lastSeq = entry.seq;
    while (this.size > this.maxEntries || (this.#bytes > this.maxBytes && this.size > 1)) this.#dropOldest();
    for (const l of this.#listeners) l();
  }

  /** Forget everything and continue from `seq` (next append must be seq + 1). */
  reset(seq: number): void {
    this.#items = [];
    this.#slabOf = [];
    this.#offsetOf = [];
    this.#lengthOf = [];
    this.#slabs.clear();
    this.#slabUsed = SLAB_BYTES;
    this.#sizes = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#lastSeq = seq;
  }

  /** True when every entry from `seq` on is still available (or not yet written). */
  covers(seq: number): boolean {
    return seq >= this.firstSeq;
  }

  /**
   * Up to `max` entries starting at `seq` (fewer when the log has fewer). Throws BacklogOverrunError
   * when `seq` has been evicted. Encoded entries are decoded afresh (new objects each call).
   */
  read(seq: number, max: number): E[] {
    const [start, end] = this.#range(seq, max);
    if (this.storage === 'objects') return this.#items.slice(start, end);
    const out: E[] = [];
    for (let i = start; i < end; i++) out.push(unpack(this.#stored(i)) as E);
    return out;
  }

  /**
   * `read(seq, max)` as one msgpack array (what `unpack` turns back into those entries). With
   * 'encoded' storage these are the stored bytes behind an array header: copies, no encoding — a
   * transfer worker's owner answers its backlog questions this way (worker-server.ts), and encoding
   * 512 entries as objects took it 0.5–1 ms while its requests waited.
   */
  readPacked(seq: number, max: number): Uint8Array {
    if (this.storage === 'objects') return pack(this.read(seq, max));
    const [start, end] = this.#range(seq, max);
    const parts: Uint8Array[] = [];
    for (let i = start; i < end; i++) parts.push(this.#stored(i));
    return packEncoded(parts);
  }

  /** Positions [start, end) of up to `max` entries from `seq` (empty past the last); BacklogOverrunError when evicted. */
  #range(seq: number, max: number): [number, number] {
    if (!this.covers(seq)) throw new BacklogOverrunError(seq, this.firstSeq);
    if (seq > this.#lastSeq) return [0, 0];
    const start = this.#head + (seq - this.firstSeq);
    return [start, Math.min(this.#sizes.length, start + Math.max(1, max))];
  }

  /** The stored bytes of the entry at position i ('encoded' storage): a view of its slab. */
  #stored(i: number): Uint8Array {
    const at = this.#offsetOf[i]!;
    return this.#slabs.get(this.#slabOf[i]!)!.subarray(at, at + this.#lengthOf[i]!);
  }

  /** Called after every append (the sender waits on it). Returns an unsubscribe function. */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Copy one encoded entry into the current slab (a new one when it does not fit). */
  #store(bytes: Uint8Array): void {
    // (#slabUsed starts at SLAB_BYTES, and an entry larger than a slab leaves it above: both start a new one.)
    if (this.#slabUsed + bytes.length > SLAB_BYTES) {
      this.#slabNo++;
      this.#slabs.set(this.#slabNo, Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, bytes.length)));
      this.#slabUsed = 0;
    }
    this.#slabs.get(this.#slabNo)!.set(bytes, this.#slabUsed);
    this.#slabOf.push(this.#slabNo);
    this.#offsetOf.push(this.#slabUsed);
    this.#lengthOf.push(bytes.length);
    this.#slabUsed += bytes.length;
  }

  #dropOldest(): void {
    const h = this.#head;
    this.#bytes -= this.#sizes[h]!;
    if (this.storage === 'encoded') {
      // The last entry of a slab gone: the slab goes too.
      const slab = this.#slabOf[h]!;
      if (h + 1 >= this.#slabOf.length ? slab !== this.#slabNo : this.#slabOf[h + 1] !== slab) this.#slabs.delete(slab);
    }
    this.#head++;
    this.#evicted++;
    if (this.#head > 4096 && this.#head * 2 > this.#sizes.length) {
      const from = this.#head;
      if (this.storage === 'objects') this.#items = this.#items.slice(from);
      else {
        this.#slabOf = this.#slabOf.slice(from);
        this.#offsetOf = this.#offsetOf.slice(from);
        this.#lengthOf = this.#lengthOf.slice(from);
      }
      this.#sizes = this.#sizes.slice(from);
      this.#head = 0;
    }
  }
}
