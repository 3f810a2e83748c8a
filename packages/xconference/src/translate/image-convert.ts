/** How one server lays out a ZPixmap image of one depth. */
export interface ImageFormat {
  /** Image byte order of the server (not of the client connection). */
  readonly le: boolean;
  readonly bitsPerPixel: number;
  /** Scanline padding in bits (8, 16 or 32). */
  readonly scanlinePad: number;
}

/** Bytes per scanline of a `width`-pixel image in format `f`. */
export function rowBytes(width: number, f: ImageFormat): number {
  const bits = width * f.bitsPerPixel;
  const pad = f.scanlinePad > 0 ? f.scanlinePad : 32;
  return (Math.ceil(bits / pad) * pad) / 8;
}

const SUPPORTED_BPP: ReadonlySet<number> = new Set([8, 16, 32]);
/** The scanline pads X11 allows (a server's setup reply can claim anything: it is checked here). */
const SUPPORTED_PAD: ReadonlySet<number> = new Set([8, 16, 32]);

/**
 * Re-encodes a ZPixmap image from one server's layout to another's, converting each pixel value with
 * `pixel` (e.g. TrueColor 8-8-8 → 5-6-5). Returns null if a layout is not supported (bits per pixel other
 * than 8, 16, 32, a scanline pad other than 8, 16, 32) or the data is shorter than the image.
 */
export function convertZPixmap(
  data: Buffer,
  width: number,
  height: number,
  from: ImageFormat,
  to: ImageFormat,
  pixel: (value: number) => number,
): Buffer | null {
  if (!SUPPORTED_BPP.has(from.bitsPerPixel) || !SUPPORTED_BPP.has(to.bitsPerPixel)) return null;
  if (!SUPPORTED_PAD.has(from.scanlinePad) || !SUPPORTED_PAD.has(to.scanlinePad)) return null;
  const inRow = rowBytes(width, from);
  const outRow = rowBytes(width, to);
  if (data.length < inRow * height) return null;
  const out = Buffer.alloc(outRow * height);
  const inStep = from.bitsPerPixel / 8;
  const outStep = to.bitsPerPixel / 8;
  for (let y = 0; y < height; y++) {
    let i = y * inRow;
    let o = y * outRow;
    for (let x = 0; x < width; x++, i += inStep, o += outStep) {
      const v = readPixel(data, i, from.bitsPerPixel, from.le);
      writePixel(out, o, to.bitsPerPixel, to.le, pixel(v));
    }
  }
  return out;
}

function readPixel(b: Buffer, off: number, bpp: number, le: boolean): number {
  if (bpp === 32) return le ? b.readUInt32LE(off) : b.readUInt32BE(off);
  if (bpp === 16) return le ? b.readUInt16LE(off) : b.readUInt16BE(off);
  return b[off]!;
}

function writePixel(b: Buffer, off: number, bpp: number, le: boolean, v: number): void {
  if (bpp === 32) {
    if (le) b.writeUInt32LE(v >>> 0, off);
    else b.writeUInt32BE(v >>> 0, off);
  } else if (bpp === 16) {
    if (le) b.writeUInt16LE(v & 0xffff, off);
    else b.writeUInt16BE(v & 0xffff, off);
  } else b[off] = v & 0xff;
}
