/**
 * The primary's log of entries the backup has not acknowledged yet, in seq order. Appending and
 * trimming from the front are O(1) amortised.
 */
import type { Entry } from './messages.js';

export class UnackedLog {
  #items: Entry[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Highest seq in the log, or undefined. */
  get lastSeq(): number | undefined {
    return this.size === 0 ? undefined : this.#items[this.#items.length - 1]!.seq;
  }

  push(entry: Entry): void {
    this.#items.push(entry);
  }

  /** Drop every entry with seq ≤ upToSeq. */
  trimTo(upToSeq: number): void {
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.seq <= upToSeq) this.#head++;
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
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
    this.#head = 0;
  }
}
