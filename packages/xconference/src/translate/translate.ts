import { ErrorCode, EVENTS, Opcode, REQUESTS } from '../generated/xproto.js';
import { read16, read32, write32 } from '../wire/bytes.js';
import type { ResourceField, ResourceKind, ResourceList } from '../wire/xproto-types.js';
import type { IdMap } from './id-map.js';

const XA_ATOM = 4;
/** Value-list entries that hold pixel values (converted when the servers' TrueColor layouts differ). */
const PIXEL_VALUES: ReadonlySet<string> = new Set(['background_pixel', 'border_pixel', 'foreground', 'background']);
const XA_WINDOW = 33;

type Direction = 'toServer' | 'toApp';

/** Rewrites 4-byte ids in a message, copying it the first time a value actually changes. */
class Rewriter {
  out: Buffer;
  private copied = false;
  constructor(
    src: Buffer,
    private readonly map: IdMap,
    private readonly dir: Direction,
    private readonly le: boolean,
  ) {
    this.out = src;
  }

  id(offset: number, kind: ResourceKind, bigEndianAlways = false): void {
    if (offset + 4 > this.out.length) return;
    const le = bigEndianAlways ? false : this.le;
    const v = read32(this.out, offset, le);
    const t = this.dir === 'toServer' ? this.map.toServer(v, kind) : this.map.toApp(v, kind);
    if (t === v) return;
    if (!this.copied) {
      this.out = Buffer.from(this.out);
      this.copied = true;
    }
    write32(this.out, offset, t, le);
  }

  /** Converts a pixel value (value-list entry) for this server. */
  pixel(offset: number): void {
    if (offset + 4 > this.out.length) return;
    const v = read32(this.out, offset, this.le);
    const t = this.map.pixelToServer(v);
    if (t === v) return;
    this.ensureCopy();
    write32(this.out, offset, t, this.le);
  }

  /** Maps a depth byte for this server. */
  depth(offset: number): void {
    const v = this.out[offset];
    if (v === undefined) return;
    const t = this.map.depthToServer(v);
    if (t === v) return;
    this.ensureCopy();
    this.out[offset] = t;
  }

  private ensureCopy(): void {
    if (!this.copied) {
      this.out = Buffer.from(this.out);
      this.copied = true;
    }
  }

  fields(fields: readonly ResourceField[], base: number, shift: number): void {
    for (const f of fields) this.id(base + (f.offset >= 4 ? f.offset + shift : f.offset), f.kind);
  }

  lists(lists: readonly ResourceList[], shift: number): void {
    for (const l of lists) {
      const start = l.offset + shift;
      let count: number;
      if (l.length === null) count = Math.floor((this.out.length - start) / 4);
      else if (l.length.size === 2) count = read16(this.out, l.length.offset + (l.length.offset >= 4 ? shift : 0), this.le);
      else count = read32(this.out, l.length.offset + (l.length.offset >= 4 ? shift : 0), this.le);
      const end = Math.min(this.out.length, start + 4 * count);
      for (let off = start; off + 4 <= end; off += 4) this.id(off, l.kind);
    }
  }
}

/**
 * Translates a request from the application's numbering to a server's. Returns `req` itself when nothing
 * changes (the common case when servers agree), else a translated copy. Big requests (length field 0)
 * have their fields shifted by 4 bytes.
 */
export function translateRequest(req: Buffer, map: IdMap, le: boolean): Buffer {
  if (map.passThrough) return req;
  const opcode = req[0]!;
  const spec = REQUESTS[opcode];
  if (!spec) return req;
  const shift = read16(req, 2, le) === 0 ? 4 : 0;
  const w = new Rewriter(req, map, 'toServer', le);
  w.fields(spec.resources, 0, shift);
  if (spec.lists.length) w.lists(spec.lists, shift);
  const vl = spec.valueList;
  if (vl) {
    const mask = vl.maskSize === 2 ? read16(req, vl.maskOffset + shift, le) : read32(req, vl.maskOffset + shift, le);
    let off = vl.listOffset + shift;
    for (const b of vl.bits) {
      if ((mask & b.bit) === 0) continue;
      if (b.kind) w.id(off, b.kind);
      else if (PIXEL_VALUES.has(b.name)) w.pixel(off);
      off += 4;
    }
  }
  if (opcode === Opcode.CreateWindow || opcode === Opcode.CreatePixmap) w.depth(1);
  if (opcode === Opcode.ChangeProperty) translatePropertyData(w, req, 8 + shift, 12 + shift, 16 + shift, 20 + shift, 24 + shift, le, map);
  else if (opcode === Opcode.PolyText8 || opcode === Opcode.PolyText16) translateTextItems(w, 16 + shift, opcode === Opcode.PolyText16);
  else if (opcode === Opcode.SendEvent) {
    const event = EVENTS[req[12 + shift]! & 0x7f];
    if (event?.hasSequence) w.fields(event.resources, 12 + shift, 0);
  }
  return w.out;
}

/** ChangeProperty/GetProperty data of type ATOM or WINDOW (format 32) holds ids too (WM_PROTOCOLS, WM_TRANSIENT_FOR). */
function translatePropertyData(
  w: Rewriter,
  msg: Buffer,
  _propertyOffset: number,
  typeOffset: number,
  formatOffset: number,
  lengthOffset: number,
  dataOffset: number,
  le: boolean,
  map: IdMap,
): void {
  const format = msg[formatOffset];
  if (format !== 32) return;
  const rawType = read32(msg, typeOffset, le);
  // In a request the type is in the application's numbering; predefined ATOM/WINDOW are identical anyway.
  void map;
  if (rawType !== XA_ATOM && rawType !== XA_WINDOW) return;
  const kind: ResourceKind = rawType === XA_ATOM ? 'ATOM' : 'WINDOW';
  const count = read32(msg, lengthOffset, le);
  const end = Math.min(msg.length, dataOffset + 4 * count);
  for (let off = dataOffset; off + 4 <= end; off += 4) w.id(off, kind);
}

/** PolyText items: a 255 length byte announces a font change, the font id always most significant byte first. */
function translateTextItems(w: Rewriter, start: number, wide: boolean): void {
  const buf = w.out;
  let off = start;
  while (off < buf.length) {
    const len = buf[off]!;
    if (len === 255) {
      w.id(off + 1, 'FONT', true);
      off += 5;
    } else if (len === 0) {
      if (off + 2 > buf.length || buf[off + 1] === 0) break;
      off += 2;
    } else {
      off += 2 + len * (wide ? 2 : 1);
    }
  }
}

/** Translates a reply from a server's numbering to the application's; `opcode` is the request it answers. */
export function translateReply(reply: Buffer, opcode: number, map: IdMap, le: boolean): Buffer {
  if (map.passThrough) return reply;
  const spec = REQUESTS[opcode]?.reply;
  if (!spec) return reply;
  const w = new Rewriter(reply, map, 'toApp', le);
  w.fields(spec.resources, 0, 0);
  if (spec.lists.length) w.lists(spec.lists, 0);
  if (opcode === Opcode.GetProperty && reply[1] === 32) {
    const type = read32(reply, 8, le);
    if (type === XA_ATOM || type === XA_WINDOW) {
      const count = read32(reply, 16, le);
      const end = Math.min(reply.length, 32 + 4 * count);
      for (let off = 32; off + 4 <= end; off += 4) w.id(off, type === XA_ATOM ? 'ATOM' : 'WINDOW');
    }
  }
  return w.out;
}

/** Translates an event from a server's numbering to the application's. */
export function translateEvent(event: Buffer, map: IdMap, le: boolean): Buffer {
  if (map.passThrough) return event;
  const spec = EVENTS[event[0]! & 0x7f];
  if (!spec || spec.generic) return event;
  const w = new Rewriter(event, map, 'toApp', le);
  w.fields(spec.resources, 0, 0);
  return w.out;
}

/** Errors whose bad value is a resource id (translated like any id of the application's range). */
const ID_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.Window,
  ErrorCode.Pixmap,
  ErrorCode.Cursor,
  ErrorCode.Font,
  ErrorCode.Drawable,
  ErrorCode.Colormap,
  ErrorCode.GContext,
  ErrorCode.IDChoice,
]);

/** Translates the bad value of an error (a resource id for most error codes) to the application's numbering. */
export function translateError(error: Buffer, map: IdMap, le: boolean): Buffer {
  if (map.passThrough) return error;
  const code = error[1]!;
  const kind: ResourceKind | null = code === ErrorCode.Atom ? 'ATOM' : ID_ERRORS.has(code) ? 'WINDOW' : null;
  if (!kind) return error;
  const w = new Rewriter(error, map, 'toApp', le);
  w.id(4, kind);
  return w.out;
}
