/**
 * The cursor of a SlabMap snapshot: it walks a fixed list of slabs, each up to the end it had when the
 * snapshot was opened, and skips the records that were already dead then. It needs nothing but the
 * slabs' bytes and, per slab, the offsets to skip, so the same cursor runs on the thread that owns the
 * map and, over SharedArrayBuffer slabs, on a transfer worker (see worker-server.ts).
 */
import { Buffer } from 'node:buffer';
import { RECORD_HEADER } from './record-codec.js';
import type { PackedResult, PackedSnapshotCursor } from '../transferable.js';

/** One slab as a snapshot reads it: its bytes and the end fixed when the snapshot was opened. */
export interface SlabRun {
  readonly buf: Buffer;
  readonly end: number;
}

/** A slab of a shared snapshot: a window of a SharedArrayBuffer and the snapshot's end in it. */
export interface SharedSlabRun {
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly end: number;
}

/** What another thread needs to read a snapshot: its slabs (shared memory) and its record count. */
export interface SharedSnapshotPlan {
  readonly slabs: readonly SharedSlabRun[];
  readonly totalRecords: number;
}

/** A snapshot cursor whose slabs live in shared memory (a SlabMap made with `shared: true`). */
export interface ShareableSnapshotCursor extends PackedSnapshotCursor {
  /** The slabs and count, for a cursor on another thread; undefined when a slab is not shared memory. */
  share(): SharedSnapshotPlan | undefined;
  /** Offsets of the records of slab `i` of the plan that the snapshot skips (any order). */
  skipsOf(i: number): number[];
}

/** True when the cursor can be shared with a transfer worker thread (it has `share`). */
export function isShareableCursor(c: unknown): c is ShareableSnapshotCursor {
  return typeof (c as Partial<ShareableSnapshotCursor> | undefined)?.share === 'function';
}

/** Offset just past the record at `o` (header, key, value). */
export function recordEnd(v: DataView, o: number): number {
  return o + RECORD_HEADER + v.getUint32(o, true) + v.getUint32(o + 4, true);
}

export class SlabRunCursor implements ShareableSnapshotCursor {
  readonly totalRecords: number;
  readonly recordWidth = 2;
  readonly #runs: SlabRun[];
  readonly #views: DataView[];
  readonly #skipsOf: (i: number) => number[];
  readonly #onClose: () => void;
  #p = -1;
  #buf: Buffer | undefined;
  #view: DataView | undefined;
  #end = 0;
  #at = 0;
  #skips: number[] = [];
  #skipNext = 0;
  #closed = false;
  readonly #out: unknown[] = [];
  /** Slabs in shared memory (see #copy) and the staging buffer for their misaligned runs. */
  readonly #shared: boolean;
  #staging: Buffer = Buffer.alloc(0);

  /** `skipsOf(i)`: offsets of slab i's records to skip (any order); asked once, when the cursor gets there. */
  constructor(runs: SlabRun[], totalRecords: number, skipsOf: (i: number) => number[], onClose: () => void) {
    this.#runs = runs;
    this.#views = runs.map((r) => new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.length));
    this.totalRecords = totalRecords;
    this.#skipsOf = skipsOf;
    this.#onClose = onClose;
    this.#shared = runs.some((r) => r.buf.buffer instanceof SharedArrayBuffer);
  }

  share(): SharedSnapshotPlan | undefined {
    const slabs: SharedSlabRun[] = [];
    for (const r of this.#runs) {
      if (!(r.buf.buffer instanceof SharedArrayBuffer)) return undefined;
      slabs.push({ buffer: r.buf.buffer, byteOffset: r.buf.byteOffset, byteLength: r.buf.length, end: r.end });
    }
    return { slabs, totalRecords: this.totalRecords };
  }

  skipsOf(i: number): number[] {
    return this.#skipsOf(i);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#runs.length = 0;
    this.#onClose();
  }

  /** Move to the next record to emit; false when the view is exhausted. */
  #advance(): boolean {
    for (;;) {
      if (this.#buf && this.#at < this.#end) {
        if (this.#skipNext < this.#skips.length && this.#skips[this.#skipNext] === this.#at) {
          this.#skipNext++;
          this.#at = recordEnd(this.#view!, this.#at);
          continue;
        }
        return true;
      }
      if (++this.#p >= this.#runs.length) return false;
      const run = this.#runs[this.#p]!;
      this.#buf = run.buf;
      this.#view = this.#views[this.#p]!;
      this.#end = run.end;
      this.#at = 0;
      // Sorted here, on the thread that reads the snapshot (not on the owner's, for a worker).
      this.#skips = this.#skipsOf(this.#p).sort((a, b) => a - b);
      this.#skipNext = 0;
    }
  }

  next(maxRecords: number): unknown[] | undefined {
    if (this.#closed) return undefined;
    const out = this.#out;
    let n = 0;
    const max = 2 * Math.max(1, maxRecords);
    while (n < max && this.#advance()) {
      const v = this.#view!;
      const at = this.#at;
      const kl = v.getUint32(at, true);
      const vl = v.getUint32(at + 4, true);
      const kAt = at + RECORD_HEADER;
      out[n++] = this.#buf!.toString('utf8', kAt, kAt + kl);
      out[n++] = this.#buf!.toString('utf8', kAt + kl, kAt + kl + vl);
      this.#at = kAt + kl + vl;
    }
    if (n === 0) {
      this.close();
      return undefined;
    }
    if (out.length !== n) out.length = n;
    return out;
  }

  /**
   * Copy slab bytes [from, to) into target at `at`. From shared memory, V8 copies word by word only
   * when source and target have the same alignment (else byte by byte: 1.4 against 10 GB/s measured on
   * Node 20), so such a run goes through an aligned staging buffer and then a plain memcpy.
   */
  #copy(from: number, to: number, target: Uint8Array, at: number): void {
    const src = this.#buf!;
    const n = to - from;
    const shift = (src.byteOffset + from) & 7;
    if (!this.#shared || n < 256 || shift === ((target.byteOffset + at) & 7)) {
      target.set(src.subarray(from, to), at);
      return;
    }
    if (this.#staging.length < n + 8) this.#staging = Buffer.allocUnsafeSlow(Math.max(n + 8, 64 * 1024));
    const staging = this.#staging;
    const s = shift - (staging.byteOffset & 7);
    const base = s >= 0 ? s : s + 8;
    staging.set(src.subarray(from, to), base);
    target.set(staging.subarray(base, base + n), at);
  }

  nextPacked(target: Uint8Array, to: number, room: number): PackedResult | undefined {
    if (this.#closed) return undefined;
    let records = 0;
    let bytes = 0;
    // Runs of consecutive live records are copied at once.
    while (this.#advance()) {
      const v = this.#view!;
      const runStart = this.#at;
      let q = runStart;
      const stop = this.#skipNext < this.#skips.length ? Math.min(this.#end, this.#skips[this.#skipNext]!) : this.#end;
      const limit = runStart + room - bytes;
      while (q < stop) {
        const next = recordEnd(v, q);
        if (next > limit) break;
        q = next;
        records++;
      }
      if (q > runStart) {
        this.#copy(runStart, q, target, to + bytes);
        bytes += q - runStart;
        this.#at = q;
      }
      if (q < stop || bytes >= room) {
        if (records === 0) return { records: 0, bytes: 0, needBytes: recordEnd(v, q) - q };
        return { records, bytes };
      }
    }
    if (records === 0) {
      this.close();
      return undefined;
    }
    return { records, bytes };
  }
}
