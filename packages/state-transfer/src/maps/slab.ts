/**
 * A slab of a SlabMap: a large Buffer (outside the JavaScript heap, or a SharedArrayBuffer) that
 * records are appended to, with its dead records. A record is `keyLength u32 LE, valueLength u32 LE,
 * key UTF-8, value UTF-8` (RECORD_HEADER bytes of header), the same bytes as on the wire.
 */
import { Buffer } from 'node:buffer';

export class Slab {
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

/** Equal bytes: x[xAt, xAt + n) and y[yAt, yAt + n). */
export function sameBytes(x: DataView, xAt: number, y: DataView, yAt: number, n: number): boolean {
  let i = 0;
  for (; i + 3 < n; i += 4) if (x.getInt32(xAt + i, true) !== y.getInt32(yAt + i, true)) return false;
  for (; i < n; i++) if (x.getUint8(xAt + i) !== y.getUint8(yAt + i)) return false;
  return true;
}

type Utf8Writer = { utf8Write?: (s: string, at: number, max: number) => number };

/** Write `s` as UTF-8 into `buf` at `at` (at most `max` bytes); bytes written. */
export function writeUtf8(buf: Buffer, s: string, at: number, max: number): number {
  const w = (buf as unknown as Utf8Writer).utf8Write;
  return w ? w.call(buf, s, at, max) : buf.write(s, at, max, 'utf8');
}
