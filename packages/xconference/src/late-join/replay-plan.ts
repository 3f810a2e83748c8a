import { Opcode } from '../generated/xproto.js';
import { pad4, write16, write32 } from '../wire/bytes.js';
import type { ResourceTracker } from './resource-tracker.js';
import { CW, GCV, type TrackedWindow } from './tracked.js';

/** A pixmap whose contents are copied from the master (GetImage there, PutImage on the newcomer). */
export interface PixmapImage {
  readonly pixmap: number;
  readonly depth: number;
  readonly width: number;
  readonly height: number;
}

/**
 * The requests that recreate an application's live resources on a new server, in the application's
 * numbering and byte order (the session translates them for the server like any request). `before` creates
 * fonts, colormaps and pixmaps; then the contents of `images` are copied from the master; `after` creates
 * cursors, windows (parents first, siblings bottom to top), GCs, properties, maps the mapped windows
 * (children first) and frees what was only recreated for the replay's sake.
 */
export interface ReplayPlan {
  readonly before: Buffer[];
  readonly images: PixmapImage[];
  readonly after: Buffer[];
  /**
   * The CreateWindow requests of the top-level windows (in `after`): the session patches their size with the
   * master's (GetGeometry), which a window manager may have changed without the application asking.
   */
  readonly topLevels: ReadonlyArray<{ readonly id: number; readonly request: Buffer }>;
  /** A resource id the application does not use now, for the GC that puts images (freed at once). */
  readonly imageGc: number;
  /** Things left out, one log line each. */
  readonly skipped: string[];
}

const hex = (id: number): string => `0x${id.toString(16)}`;

/** Builds requests in one byte order. */
export class RequestEncoder {
  constructor(readonly le: boolean) {}

  /** A request with `body` after the 4-byte header (padded to 4 bytes). */
  request(opcode: number, data: number, body: Buffer): Buffer {
    const out = Buffer.alloc(4 + body.length + pad4(body.length));
    out[0] = opcode;
    out[1] = data;
    write16(out, 2, out.length / 4, this.le);
    body.copy(out, 4);
    return out;
  }

  words(opcode: number, data: number, values: readonly number[]): Buffer {
    const body = Buffer.alloc(4 * values.length);
    for (const [i, v] of values.entries()) write32(body, 4 * i, v, this.le);
    return this.request(opcode, data, body);
  }

  /** A value mask and its values in bit order. */
  valueList(values: ReadonlyMap<number, number>): Buffer {
    const bits = [...values.keys()].sort((a, b) => a - b);
    const out = Buffer.alloc(4 + 4 * bits.length);
    write32(
      out,
      0,
      bits.reduce((m, b) => (m | b) >>> 0, 0),
      this.le,
    );
    for (const [i, b] of bits.entries()) write32(out, 4 + 4 * i, values.get(b)!, this.le);
    return out;
  }

  /** ChangeProperty requests for one value, split so that none needs BIG-REQUESTS (Replace, then Append). */
  changeProperty(window: number, atom: number, type: number, format: number, data: Buffer, maxData = 65536): Buffer[] {
    const unit = format / 8;
    const step = Math.max(4, maxData - (maxData % 4));
    const out: Buffer[] = [];
    let off = 0;
    do {
      const chunk = data.subarray(off, Math.min(data.length, off + step));
      const body = Buffer.alloc(20 + chunk.length);
      write32(body, 0, window, this.le);
      write32(body, 4, atom, this.le);
      write32(body, 8, type, this.le);
      body[12] = format;
      write32(body, 16, chunk.length / unit, this.le);
      chunk.copy(body, 20);
      out.push(this.request(Opcode.ChangeProperty, off === 0 ? 0 : 2, body));
      off += chunk.length;
    } while (off < data.length);
    return out;
  }

  /** CreateGC for `pixmap`, PutImage (ZPixmap) in row bands that need no BIG-REQUESTS, FreeGC. */
  putImage(pixmap: number, gc: number, depth: number, width: number, height: number, data: Buffer, maxBytes = 200_000): Buffer[] {
    const out: Buffer[] = [this.words(Opcode.CreateGC, 0, [gc, pixmap, 0])];
    const rowBytes = height > 0 ? Math.floor(data.length / height) : 0;
    if (rowBytes > 0) {
      const rows = Math.max(1, Math.floor(maxBytes / rowBytes));
      for (let y = 0; y < height; y += rows) {
        const h = Math.min(rows, height - y);
        const band = data.subarray(y * rowBytes, (y + h) * rowBytes);
        const body = Buffer.alloc(20 + band.length);
        write32(body, 0, pixmap, this.le);
        write32(body, 4, gc, this.le);
        write16(body, 8, width, this.le);
        write16(body, 10, h, this.le);
        write16(body, 12, 0, this.le);
        write16(body, 14, y, this.le);
        body[16] = 0; // left pad
        body[17] = depth;
        band.copy(body, 20);
        out.push(this.request(Opcode.PutImage, 2, body));
      }
    }
    out.push(this.words(Opcode.FreeGC, 0, [gc]));
    return out;
  }
}

/** Plans the replay of everything `t` keeps (see ReplayPlan). */
export function planReplay(t: ResourceTracker, le: boolean): ReplayPlan {
  const enc = new RequestEncoder(le);
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  const skipped: string[] = [];
  const frees: Buffer[] = [];
  const tempFonts = new Set<number>();
  const tempIds = new Set<number>();

  // A font a GC or glyph cursor still uses although the application closed it: reopened under its old id
  // (unused now) and closed again at the end of the replay.
  const fontUsable = (id: number): boolean => {
    if (t.fonts.has(id) || tempFonts.has(id)) return true;
    const name = t.closedFonts.get(id);
    if (name === undefined || t.isLive(id)) return false;
    tempFonts.add(id);
    tempIds.add(id);
    before.push(openFont(enc, id, name));
    frees.push(enc.words(Opcode.CloseFont, 0, [id]));
    return true;
  };

  for (const [id, name] of t.fonts) before.push(openFont(enc, id, name));
  for (const req of t.colormaps.values()) {
    // The window only selects the screen: the root stands for it.
    const c = Buffer.from(req);
    write32(c, 8, t.root, le);
    before.push(c);
  }
  const images: PixmapImage[] = [];
  for (const p of t.pixmaps.values()) {
    before.push(enc.request(Opcode.CreatePixmap, p.depth, words(le, [p.id, t.root, (p.height << 16) | p.width], [2])));
    if (p.width > 0 && p.height > 0) images.push({ pixmap: p.id, depth: p.depth, width: p.width, height: p.height });
  }

  // Cursors: their source pixmaps must still exist (the application usually frees them at once).
  const cursorOk = new Set<number>();
  for (const c of t.cursors.values()) {
    const r = c.request;
    const a = readWord(r, 8, le);
    const b = readWord(r, 12, le);
    if (r[0] === Opcode.CreateCursor) {
      if (!t.pixmaps.has(a) || (b !== 0 && !t.pixmaps.has(b))) {
        skipped.push(`cursor ${hex(c.id)} not recreated: its source or mask pixmap was freed`);
        continue;
      }
    } else if (!fontUsable(a) || (b !== 0 && !fontUsable(b))) {
      skipped.push(`cursor ${hex(c.id)} not recreated: its font is gone`);
      continue;
    }
    after.push(Buffer.from(r));
    cursorOk.add(c.id);
    if (c.freed) frees.push(enc.words(Opcode.FreeCursor, 0, [c.id]));
  }

  // Windows, parents first; each parent's children bottom to top (each new window goes on top).
  const created: TrackedWindow[] = [];
  const topLevels: Array<{ id: number; request: Buffer }> = [];
  const createTree = (w: TrackedWindow, parent: number): void => {
    const values = new Map(w.values);
    const dropIf = (bit: number, ok: (v: number) => boolean, what: string): void => {
      const v = values.get(bit);
      if (v === undefined || ok(v)) return;
      values.delete(bit);
      skipped.push(`window ${hex(w.id)}: ${what} ${hex(v)} is gone; attribute left out`);
    };
    dropIf(CW.backPixmap, (v) => v <= 1 || t.pixmaps.has(v) || !ownId(t, v), 'background pixmap');
    dropIf(CW.borderPixmap, (v) => v === 0 || t.pixmaps.has(v) || !ownId(t, v), 'border pixmap');
    dropIf(CW.colormap, (v) => v === 0 || t.colormaps.has(v) || !ownId(t, v), 'colormap');
    dropIf(CW.cursor, (v) => v === 0 || cursorOk.has(v) || !ownId(t, v), 'cursor');
    const head = words(
      le,
      [w.id, parent, ((w.y & 0xffff) << 16) | (w.x & 0xffff), (w.height << 16) | w.width, (w.klass << 16) | w.borderWidth, w.visual],
      [2, 3, 4],
    );
    const request = enc.request(Opcode.CreateWindow, w.depth, Buffer.concat([head, enc.valueList(values)]));
    after.push(request);
    if (parent === t.root) topLevels.push({ id: w.id, request });
    created.push(w);
    for (const c of t.stacks.get(w.id) ?? []) {
      const child = t.windows.get(c);
      if (child) createTree(child, w.id);
    }
  };
  for (const [parent, stack] of t.stacks) {
    if (t.windows.has(parent)) continue;
    if (parent !== t.root) skipped.push(`windows under another client's window ${hex(parent)} are recreated under the root`);
    for (const id of stack) {
      const w = t.windows.get(id);
      if (w) createTree(w, t.root);
    }
  }

  for (const gc of t.gcs.values()) {
    const values = new Map(gc.values);
    for (const [bit, what] of [
      [GCV.tile, 'tile'],
      [GCV.stipple, 'stipple'],
      [GCV.clipMask, 'clip mask'],
    ] as const) {
      const v = values.get(bit);
      if (v !== undefined && v !== 0 && ownId(t, v) && !t.pixmaps.has(v)) {
        values.delete(bit);
        skipped.push(`GC ${hex(gc.id)}: ${what} pixmap ${hex(v)} is gone; left out`);
      }
    }
    const font = values.get(GCV.font);
    if (font !== undefined && ownId(t, font) && !fontUsable(font)) {
      values.delete(GCV.font);
      skipped.push(`GC ${hex(gc.id)}: font ${hex(font)} is gone; left out`);
    }
    // The GC's depth is its drawable's: that drawable if it still exists, else the root.
    const drawable = t.windows.has(gc.drawable) || t.pixmaps.has(gc.drawable) ? gc.drawable : t.root;
    after.push(enc.request(Opcode.CreateGC, 0, Buffer.concat([words(le, [gc.id, drawable], []), enc.valueList(values)])));
    if (gc.dashes) after.push(Buffer.from(gc.dashes));
    if (gc.clip) after.push(Buffer.from(gc.clip));
  }

  for (const [window, props] of t.properties) {
    for (const [atom, p] of props) after.push(...enc.changeProperty(window, atom, p.type, p.format, p.data));
  }

  // Map children before parents, so each top-level window appears (and is exposed) once, complete.
  const mapTree = (w: TrackedWindow): void => {
    for (const c of t.stacks.get(w.id) ?? []) {
      const child = t.windows.get(c);
      if (child) mapTree(child);
    }
    if (w.mapped) after.push(enc.words(Opcode.MapWindow, 0, [w.id]));
  };
  for (const w of created) if (!t.windows.has(w.parent)) mapTree(w);

  after.push(...frees);
  return { before, images, after, topLevels, imageGc: t.unusedId(tempIds), skipped };
}

function openFont(enc: RequestEncoder, id: number, name: string): Buffer {
  const body = Buffer.alloc(8 + name.length);
  write32(body, 0, id, enc.le);
  write16(body, 4, name.length, enc.le);
  body.write(name, 8, 'latin1');
  return enc.request(Opcode.OpenFont, 0, body);
}

/** 32-bit words; indexes in `halves` are two 16-bit fields packed as (high << 16) | low, written low first. */
function words(le: boolean, values: readonly number[], halves: readonly number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => {
    if (halves.includes(i)) {
      write16(b, 4 * i, v & 0xffff, le);
      write16(b, 4 * i + 2, v >>> 16, le);
    } else write32(b, 4 * i, v, le);
  });
  return b;
}

function readWord(b: Buffer, off: number, le: boolean): number {
  return le ? b.readUInt32LE(off) : b.readUInt32BE(off);
}

/** True for ids in the application's range (its own resources); other clients' ids are left alone. */
function ownId(t: ResourceTracker, id: number): boolean {
  return (id & ~t.idMask) >>> 0 === t.idBase;
}
