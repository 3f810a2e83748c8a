import { XProtocolError } from '../errors.js';
import { pad4, read16, read32, write16, type ByteOrder } from './bytes.js';

/** The client's connection setup request (first bytes an application sends). */
export interface ClientSetup {
  readonly byteOrder: ByteOrder;
  readonly major: number;
  readonly minor: number;
  readonly authName: string;
  readonly authData: Buffer;
  /** Total size of the setup request in bytes. */
  readonly size: number;
}

/**
 * Parses the client setup request at the start of `buf`. Returns null while more bytes are needed;
 * throws XProtocolError on a bad byte-order byte.
 */
export function parseClientSetup(buf: Buffer): ClientSetup | null {
  if (buf.length < 1) return null;
  const order = buf[0];
  if (order !== 0x6c && order !== 0x42) {
    throw new XProtocolError('bad-byte-order', `bad byte-order byte 0x${(order ?? 0).toString(16)} in connection setup`);
  }
  if (buf.length < 12) return null;
  const le = order === 0x6c;
  const nameLen = read16(buf, 6, le);
  const dataLen = read16(buf, 8, le);
  const size = 12 + nameLen + pad4(nameLen) + dataLen + pad4(dataLen);
  if (buf.length < size) return null;
  const nameStart = 12;
  const dataStart = nameStart + nameLen + pad4(nameLen);
  return {
    byteOrder: le ? 'LE' : 'BE',
    major: read16(buf, 2, le),
    minor: read16(buf, 4, le),
    authName: buf.toString('latin1', nameStart, nameStart + nameLen),
    authData: Buffer.from(buf.subarray(dataStart, dataStart + dataLen)),
    size,
  };
}

/** Encodes a client setup request (what the proxy sends to each participant's server). */
export function encodeClientSetup(byteOrder: ByteOrder, authName = '', authData: Buffer = Buffer.alloc(0)): Buffer {
  const le = byteOrder === 'LE';
  const nameBytes = Buffer.from(authName, 'latin1');
  const size = 12 + nameBytes.length + pad4(nameBytes.length) + authData.length + pad4(authData.length);
  const out = Buffer.alloc(size);
  out[0] = le ? 0x6c : 0x42;
  write16(out, 2, 11, le);
  write16(out, 4, 0, le);
  write16(out, 6, nameBytes.length, le);
  write16(out, 8, authData.length, le);
  nameBytes.copy(out, 12);
  authData.copy(out, 12 + nameBytes.length + pad4(nameBytes.length));
  return out;
}

export interface VisualInfo {
  readonly id: number;
  readonly depth: number;
  readonly klass: number;
  readonly bitsPerRgb: number;
  readonly colormapEntries: number;
  readonly redMask: number;
  readonly greenMask: number;
  readonly blueMask: number;
}

export interface ScreenInfo {
  readonly root: number;
  readonly defaultColormap: number;
  readonly whitePixel: number;
  readonly blackPixel: number;
  readonly width: number;
  readonly height: number;
  readonly rootVisual: number;
  readonly rootDepth: number;
  readonly visuals: readonly VisualInfo[];
}

export interface PixmapFormat {
  readonly depth: number;
  readonly bitsPerPixel: number;
  readonly scanlinePad: number;
}

/** The parts of a successful server setup reply the proxy needs. */
export interface ServerSetup {
  readonly status: 'success' | 'failed' | 'authenticate';
  readonly reason: string;
  readonly resourceIdBase: number;
  readonly resourceIdMask: number;
  readonly maxRequestLength: number;
  readonly minKeycode: number;
  readonly maxKeycode: number;
  readonly vendor: string;
  readonly screens: readonly ScreenInfo[];
  /** Byte order of image data (ZPixmap pixels) on this server. */
  readonly imageByteOrder: 'LE' | 'BE';
  /** How images of each depth are laid out: bits per pixel and scanline padding in bits. */
  readonly pixmapFormats: readonly PixmapFormat[];
  /** Total size of the reply in bytes. */
  readonly size: number;
}

/** Size of the server setup reply at the start of `buf`, or null while fewer than 8 bytes are present. */
export function serverSetupSize(buf: Buffer, le: boolean): number | null {
  if (buf.length < 8) return null;
  return 8 + 4 * read16(buf, 6, le);
}

/** Parses a complete server setup reply (call once serverSetupSize() bytes are present). */
export function parseServerSetup(buf: Buffer, le: boolean): ServerSetup {
  const size = serverSetupSize(buf, le);
  if (size === null || buf.length < size) throw new XProtocolError('truncated', 'truncated server setup reply');
  const status = buf[0];
  if (status !== 1) {
    const reasonLen = status === 0 ? (buf[1] ?? 0) : size - 8;
    return {
      status: status === 0 ? 'failed' : 'authenticate',
      reason: buf.toString('latin1', 8, 8 + reasonLen).replace(/\0+$/, ''),
      resourceIdBase: 0,
      resourceIdMask: 0,
      maxRequestLength: 0,
      minKeycode: 0,
      maxKeycode: 0,
      vendor: '',
      screens: [],
      imageByteOrder: 'LE',
      pixmapFormats: [],
      size,
    };
  }
  try {
    const vendorLen = read16(buf, 24, le);
    const screenCount = buf[28] ?? 0;
    const formatCount = buf[29] ?? 0;
    const pixmapFormats: PixmapFormat[] = [];
    for (let f = 0, at = 40 + vendorLen + pad4(vendorLen); f < formatCount && at + 8 <= size; f++, at += 8) {
      pixmapFormats.push({ depth: buf[at]!, bitsPerPixel: buf[at + 1]!, scanlinePad: buf[at + 2]! });
    }
    let off = 40 + vendorLen + pad4(vendorLen) + 8 * formatCount;
    const screens: ScreenInfo[] = [];
    for (let s = 0; s < screenCount; s++) {
      const depthCount = buf[off + 39] ?? 0;
      const screen = {
        root: read32(buf, off, le),
        defaultColormap: read32(buf, off + 4, le),
        whitePixel: read32(buf, off + 8, le),
        blackPixel: read32(buf, off + 12, le),
        width: read16(buf, off + 20, le),
        height: read16(buf, off + 22, le),
        rootVisual: read32(buf, off + 32, le),
        rootDepth: buf[off + 38] ?? 0,
        visuals: [] as VisualInfo[],
      };
      off += 40;
      for (let d = 0; d < depthCount; d++) {
        const depth = buf[off] ?? 0;
        const visualCount = read16(buf, off + 2, le);
        off += 8;
        for (let v = 0; v < visualCount; v++) {
          screen.visuals.push({
            id: read32(buf, off, le),
            depth,
            klass: buf[off + 4] ?? 0,
            bitsPerRgb: buf[off + 5] ?? 0,
            colormapEntries: read16(buf, off + 6, le),
            redMask: read32(buf, off + 8, le),
            greenMask: read32(buf, off + 12, le),
            blueMask: read32(buf, off + 16, le),
          });
          off += 24;
        }
      }
      screens.push(screen);
    }
    if (off > size) throw new RangeError('screens run past the reply');
    return {
      status: 'success',
      reason: '',
      resourceIdBase: read32(buf, 12, le),
      resourceIdMask: read32(buf, 16, le),
      maxRequestLength: read16(buf, 26, le),
      minKeycode: buf[34] ?? 0,
      maxKeycode: buf[35] ?? 0,
      vendor: buf.toString('latin1', 40, 40 + vendorLen),
      screens,
      imageByteOrder: buf[30] === 1 ? 'BE' : 'LE',
      pixmapFormats,
      size,
    };
  } catch (err) {
    if (err instanceof XProtocolError) throw err;
    throw new XProtocolError('malformed-setup', `malformed server setup reply: ${(err as Error).message}`);
  }
}

/** A setup-failed reply (status 0) to send to an application, with a reason. */
export function encodeSetupFailed(reason: string, le: boolean): Buffer {
  const text = Buffer.from(reason.slice(0, 255), 'latin1');
  const out = Buffer.alloc(8 + text.length + pad4(text.length));
  out[0] = 0;
  out[1] = text.length;
  write16(out, 2, 11, le);
  write16(out, 4, 0, le);
  write16(out, 6, (text.length + pad4(text.length)) / 4, le);
  text.copy(out, 8);
  return out;
}
