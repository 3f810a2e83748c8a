/**
 * The catch-up backlog: the serving replica's most recent log entries, bounded by count (and
 * optionally by bytes), like Redis's replication backlog. A joiner whose snapshot was taken at seq S
 * is brought up to date from it with entries S+1, S+2, …; when S+1 has already been evicted (the
 * joiner fell too far behind) the transfer starts afresh with a new snapshot.
 */
import { BacklogOverrunError } from './errors.js';

/** A log entry as the transfer carries it: anything with a sequence number. */
export interface LogEntry {
  seq: number;
  [field: string]: unknown;
}

export interface BacklogOptions<E> {
  /** Most entries kept (default 100 000). */
  maxEntries?: number;
  /** Most bytes kept, as measured by `sizeOf` (default: unbounded). */
  maxBytes?: number;
  /** Size of an entry in bytes, for maxBytes (default: 1 per entry). */
  sizeOf?: (entry: E) => number;
}

export class ReplicationBacklog<E extends LogEntry = LogEntry> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #sizeOf: ((entry: E) => number) | undefined;
  #items: E[] = [];
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
  }

  /** Entries held. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Entries dropped from the front so far. */
  get evicted(): number {
    return this.#evicted;
  }

  /** Seq of the newest entry ever appended (0 = none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Seq of the oldest entry held; lastSeq + 1 when empty. */
  get firstSeq(): number {
    return this.size === 0 ? this.#lastSeq + 1 : this.#items[this.#head]!.seq;
  }

  /** Append the next entry (its seq must be lastSeq + 1, except for the very first or after reset). */
  append(entry: E): void {
    if (this.#lastSeq !== 0 && entry.seq !== this.#lastSeq + 1) {
      throw new RangeError(`backlog: entry seq ${entry.seq} does not follow ${this.#lastSeq}`);
    }
    const size = this.#sizeOf ? this.#sizeOf(entry) : 1;
    this.#items.push(entry);
    this.#sizes.push(size);
    this.#bytes += size;
    this.#lastSeq = entry.seq;
    while (this.size > this.maxEntries || (this.#bytes > this.maxBytes && this.size > 1)) this.#dropOldest();
    for (const l of this.#listeners) l();
  }

  /** Forget everything and continue from `seq` (next append must be seq + 1). */
  reset(seq: number): void {
    this.#items = [];
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
   * when `seq` has been evicted.
   */
  read(seq: number, max: number): E[] {
    if (!this.covers(seq)) throw new BacklogOverrunError(seq, this.firstSeq);
    if (seq > this.#lastSeq) return [];
    const start = this.#head + (seq - this.firstSeq);
    return this.#items.slice(start, Math.min(this.#items.length, start + Math.max(1, max)));
  }

  /** Called after every append (the sender waits on it). Returns an unsubscribe function. */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #dropOldest(): void {
    this.#bytes -= this.#sizes[this.#head]!;
    this.#head++;
    this.#evicted++;
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }
}
