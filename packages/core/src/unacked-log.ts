/**
 * The primary's log of entries the backup has not acknowledged yet, in seq order. Appending and
 * trimming from the front are O(1) amortised.
 */
import { encodeValue, packEncoded } from './codec.js';
import type { Entry } from './messages.js';

export class UnackedLog {
  #items: Entry[] = [];
  /** Each entry's msgpack encoding, made on demand once ('entries' piggyback mode). */
  #packed: (Uint8Array | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Highest seq in the log, or undefined. */
  get lastSeq(): number | undefined {
    return this.size === 0 ? undefined : this.#items[this.#items.length - 1]!.seq;
  }

  /** The oldest entry in the log, or undefined. */
  get first(): Entry | undefined {
    return this.size === 0 ? undefined : this.#items[this.#head];
  }

  push(entry: Entry): void {
    this.#items.push(entry);
    this.#packed.push(undefined);
  }

  /** Entries with fromSeq < seq ≤ toSeq as one packed msgpack array (each entry encoded only once). */
  packedRange(fromSeqExclusive: number, toSeqInclusive = Number.POSITIVE_INFINITY): Uint8Array {
    const parts: Uint8Array[] = [];
    const items = this.#items;
    const packed = this.#packed;
    for (let i = this.#startIndex(fromSeqExclusive); i < items.length; i++) {
      const e = items[i]!;
      if (e.seq <= fromSeqExclusive) continue;
      if (e.seq > toSeqInclusive) break;
      let p = packed[i];
      if (p === undefined) packed[i] = p = encodeValue(e);
      parts.push(p);
    }
    return packEncoded(parts);
  }

  /** Index of the first entry that may have seq > fromSeq (seqs are consecutive; the scan re-checks). */
  #startIndex(fromSeqExclusive: number): number {
    const items = this.#items;
    if (this.#head >= items.length) return items.length;
    const first = items[this.#head]!.seq;
    const i = this.#head + Math.max(0, fromSeqExclusive - first + 1);
    // Consecutive seqs make this exact; if they ever were not, scan from the head.
    if (i > this.#head && (i - 1 >= items.length || items[i - 1]!.seq !== fromSeqExclusive)) return this.#head;
    return i;
  }

  /** Drop every entry with seq ≤ upToSeq. */
  trimTo(upToSeq: number): void {
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.seq <= upToSeq) {
      this.#packed[this.#head] = undefined; // release the encoding
      this.#head++;
    }
    if (this.#head === items.length) {
      this.#items = [];
      this.#packed = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#packed = this.#packed.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Entries with fromSeq < seq ≤ toSeq (toSeq default: all). */
  range(fromSeqExclusive: number, toSeqInclusive = Number.POSITIVE_INFINITY): Entry[] {
    const out: Entry[] = [];
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) {
      const e = items[i]!;
      if (e.seq <= fromSeqExclusive) continue;
      if (e.seq > toSeqInclusive) break;
      out.push(e);
    }
    return out;
  }

  clear(): void {
    this.#items = [];
    this.#packed = [];
    this.#head = 0;
  }
}
