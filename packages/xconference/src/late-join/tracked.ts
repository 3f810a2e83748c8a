/**
 * What the resource tracker keeps of an application's resources, and the helpers that read it from the
 * application's requests (in the application's byte order, BIG-REQUESTS or not).
 */
import { read16, read32 } from '../wire/bytes.js';

/** Window attribute bits (CreateWindow/ChangeWindowAttributes value mask). */
export const CW = {
  backPixmap: 0x1,
  backPixel: 0x2,
  borderPixmap: 0x4,
  borderPixel: 0x8,
  colormap: 0x2000,
  cursor: 0x4000,
} as const;

/** GC value bits that interact with SetDashes/SetClipRectangles or refer to other resources. */
export const GCV = {
  tile: 0x400,
  stipple: 0x800,
  font: 0x4000,
  clipX: 0x20000,
  clipY: 0x40000,
  clipMask: 0x80000,
  dashOffset: 0x100000,
  dashes: 0x200000,
} as const;

export interface TrackedWindow {
  readonly id: number;
  parent: number;
  readonly depth: number;
  x: number;
  y: number;
  width: number;
  height: number;
  borderWidth: number;
  readonly klass: number;
  readonly visual: number;
  /** Attribute bit → value, as last set (CreateWindow merged with ChangeWindowAttributes). */
  readonly values: Map<number, number>;
  mapped: boolean;
}

export interface TrackedPixmap {
  readonly id: number;
  readonly depth: number;
  readonly width: number;
  readonly height: number;
}

export interface TrackedGC {
  readonly id: number;
  readonly drawable: number;
  readonly values: Map<number, number>;
  /** The last SetDashes request (dash offset patched by later ChangeGC), unless ChangeGC set dashes since. */
  dashes: Buffer | null;
  /** The last SetClipRectangles request (origin patched by later ChangeGC), unless ChangeGC set a clip mask since. */
  clip: Buffer | null;
}

export interface TrackedCursor {
  readonly id: number;
  /** The CreateCursor or CreateGlyphCursor request (colours patched by RecolorCursor). */
  readonly request: Buffer;
  /** Freed by the application but still the cursor attribute of a window (the server keeps it alive). */
  freed: boolean;
}

export interface TrackedProperty {
  type: number;
  format: number;
  data: Buffer;
}

/**
 * The fields of one request at their offsets in the ordinary form: a BIG-REQUESTS request has 4 more
 * header bytes, so every field after byte 3 moves by 4 (`at`). A field past the end reads as 0.
 */
export class RequestFields {
  private readonly shift: number;

  constructor(
    readonly req: Buffer,
    readonly le: boolean,
  ) {
    this.shift = read16(req, 2, le) === 0 ? 4 : 0;
  }

  /** Where the field at ordinary offset `off` is in this request. */
  at(off: number): number {
    return off + this.shift;
  }

  u32(off: number): number {
    return off + this.shift + 4 <= this.req.length ? read32(this.req, off + this.shift, this.le) : 0;
  }

  u16(off: number): number {
    return off + this.shift + 2 <= this.req.length ? read16(this.req, off + this.shift, this.le) : 0;
  }

  i16(off: number): number {
    return (this.u16(off) << 16) >> 16;
  }
}

/** Bits that cancel each other (background pixmap vs pixel, border pixmap vs pixel). */
export function windowExclusive(values: Map<number, number>, bit: number): void {
  if (bit === CW.backPixmap) values.delete(CW.backPixel);
  else if (bit === CW.backPixel) values.delete(CW.backPixmap);
  else if (bit === CW.borderPixmap) values.delete(CW.borderPixel);
  else if (bit === CW.borderPixel) values.delete(CW.borderPixmap);
}

/** Reads a value mask + list and merges it into `values`. */
export function mergeValues(
  values: Map<number, number>,
  req: Buffer,
  maskOffset: number,
  listOffset: number,
  le: boolean,
  exclusive: ((values: Map<number, number>, bit: number) => void) | null,
): Map<number, number> {
  if (maskOffset + 4 > req.length) return values;
  const mask = read32(req, maskOffset, le);
  let off = listOffset;
  for (let bit = 1; bit !== 0; bit = (bit << 1) >>> 0) {
    if ((mask & bit) === 0) continue;
    if (off + 4 > req.length) break;
    exclusive?.(values, bit);
    values.set(bit, read32(req, off, le));
    off += 4;
  }
  return values;
}

/** A copy of a request in the ordinary (non-BIG-REQUESTS) form when it fits, else as is. */
export function normalise(req: Buffer, le: boolean): Buffer {
  if (read16(req, 2, le) !== 0 || req.length > 0x3fffc) return Buffer.from(req);
  const out = Buffer.alloc(req.length - 4);
  req.copy(out, 0, 0, 4);
  req.copy(out, 4, 8);
  if (le) out.writeUInt16LE(out.length / 4, 2);
  else out.writeUInt16BE(out.length / 4, 2);
  return out;
}

const GROWABLE = Symbol('growable');

/**
 * `old` followed by `more`, reusing `old`'s spare capacity (its underlying buffer, allocated with room to
 * double), so that a property grown by many small appends costs linear, not quadratic, copying.
 */
export function appendInPlace(old: Buffer, more: Buffer): Buffer {
  const length = old.length + more.length;
  if ((old as Buffer & { [GROWABLE]?: true })[GROWABLE] && old.byteOffset === 0 && old.buffer.byteLength >= length) {
    const grown = Buffer.from(old.buffer, 0, length) as Buffer & { [GROWABLE]?: true };
    more.copy(grown, old.length);
    grown[GROWABLE] = true;
    return grown;
  }
  const store = Buffer.alloc(Math.max(length, 2 * old.length, 256));
  old.copy(store, 0);
  more.copy(store, old.length);
  const grown = store.subarray(0, length) as Buffer & { [GROWABLE]?: true };
  grown[GROWABLE] = true;
  return grown;
}
