import { read16, read32 } from './wire.js';

/**
 * Opcodes whose requests create, change or free a resource the tracker keeps. The session looks an opcode
 * up here (one array read) before calling the tracker, so drawing requests cost nothing more.
 */
export const TRACKED_OPCODES: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const op of [1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 18, 19, 45, 46, 53, 54, 55, 56, 57, 58, 59, 60, 78, 79, 93, 94, 95, 96, 114]) t[op] = 1;
  return t;
})();

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

export interface TrackerLimits {
  /** Total bytes of property values kept per application (default 16 MiB). */
  readonly maxPropertyBytes?: number;
  /** Total resources kept per application (default 200,000). */
  readonly maxResources?: number;
}

export interface TrackerStats {
  windows: number;
  pixmaps: number;
  gcs: number;
  fonts: number;
  cursors: number;
  colormaps: number;
  propertyBytes: number;
  /** Resources or property values not kept because a limit was reached. */
  notKept: number;
}

const CLOSED_FONTS_KEPT = 64;

/**
 * Keeps, from an application's request stream (in the application's numbering and byte order), the live
 * resources it created: windows with attributes, geometry, stacking and map state; pixmaps; GCs; fonts;
 * cursors; colormaps; and properties of its windows. What the application frees is dropped. A late joiner's
 * server is brought up to date by replaying this state (replay-plan.ts).
 */
export class ResourceTracker {
  readonly windows = new Map<number, TrackedWindow>();
  /** Stacking order of the tracked children of each parent (tracked or not), bottom to top. */
  readonly stacks = new Map<number, number[]>();
  readonly pixmaps = new Map<number, TrackedPixmap>();
  readonly gcs = new Map<number, TrackedGC>();
  readonly fonts = new Map<number, string>();
  /** Recently closed fonts (id → name): a GC or glyph cursor may still use them; reopened for the replay. */
  readonly closedFonts = new Map<number, string>();
  readonly cursors = new Map<number, TrackedCursor>();
  readonly colormaps = new Map<number, Buffer>();
  readonly properties = new Map<number, Map<number, TrackedProperty>>();
  private propertyBytes = 0;
  private notKept = 0;
  private readonly maxPropertyBytes: number;
  private readonly maxResources: number;
  private warned = false;

  constructor(
    private readonly le: boolean,
    /** The application's root window (the master's). */
    readonly root: number,
    /** The application's resource-id base and mask (the master's). */
    readonly idBase: number,
    readonly idMask: number,
    private readonly log: (line: string) => void = () => {},
    limits: TrackerLimits = {},
  ) {
    this.maxPropertyBytes = limits.maxPropertyBytes ?? 16 * 1024 * 1024;
    this.maxResources = limits.maxResources ?? 200_000;
  }

  get stats(): TrackerStats {
    return {
      windows: this.windows.size,
      pixmaps: this.pixmaps.size,
      gcs: this.gcs.size,
      fonts: this.fonts.size,
      cursors: this.cursors.size,
      colormaps: this.colormaps.size,
      propertyBytes: this.propertyBytes,
      notKept: this.notKept,
    };
  }

  /** True if `id` is a resource the tracker currently knows as live. */
  isLive(id: number): boolean {
    return (
      this.windows.has(id) ||
      this.pixmaps.has(id) ||
      this.gcs.has(id) ||
      this.fonts.has(id) ||
      this.colormaps.has(id) ||
      (this.cursors.get(id)?.freed === false)
    );
  }

  /** An id of the application's range that no live resource uses, searching down from the top of the range. */
  unusedId(exclude: ReadonlySet<number> = new Set()): number {
    for (let low = this.idMask; low > 0; low--) {
      const id = ((this.idBase | (low & this.idMask)) >>> 0);
      if (!this.isLive(id) && !exclude.has(id) && !this.cursors.has(id)) return id;
    }
    throw new Error('no unused resource id');
  }

  /** Observes one request the application sent (opcode in TRACKED_OPCODES); never throws on short input. */
  observe(req: Buffer): void {
    if (req.length < 8) return;
    const le = this.le;
    // A BIG-REQUESTS request has 4 more header bytes: every field after byte 3 moves by 4.
    const s = read16(req, 2, le) === 0 ? 4 : 0;
    const u32 = (off: number): number => (off + s + 4 <= req.length ? read32(req, off + s, le) : 0);
    const u16 = (off: number): number => (off + s + 2 <= req.length ? read16(req, off + s, le) : 0);
    const i16 = (off: number): number => (u16(off) << 16) >> 16;
    switch (req[0]) {
      case 1: // CreateWindow
        if (!this.fresh(u32(4)) || u32(4) === u32(8)) return;
        this.windows.set(u32(4), {
          id: u32(4),
          parent: u32(8),
          depth: req[1]!,
          x: i16(12),
          y: i16(14),
          width: u16(16),
          height: u16(18),
          borderWidth: u16(20),
          klass: u16(22),
          visual: u32(24),
          values: mergeValues(new Map(), req, 28 + s, 32 + s, le, windowExclusive),
          mapped: false,
        });
        this.stackPush(u32(8), u32(4));
        return;
      case 2: {
        const w = this.windows.get(u32(4));
        if (w) mergeValues(w.values, req, 8 + s, 12 + s, le, windowExclusive);
        return;
      }
      case 4:
        this.destroyWindow(u32(4));
        return;
      case 5:
        for (const c of [...(this.stacks.get(u32(4)) ?? [])]) this.destroyWindow(c);
        return;
      case 7: {
        // ReparentWindow: the window goes on top of its new parent's children, at (x, y); map state is kept.
        const w = this.windows.get(u32(4));
        if (!w || this.isSelfOrAncestor(w.id, u32(8))) return; // the server answers BadMatch
        this.stackRemove(w.parent, w.id);
        w.parent = u32(8);
        w.x = i16(12);
        w.y = i16(14);
        this.stackPush(w.parent, w.id);
        return;
      }
      case 8:
      case 10: {
        const w = this.windows.get(u32(4));
        if (w) w.mapped = req[0] === 8;
        return;
      }
      case 9:
      case 11:
        for (const c of this.stacks.get(u32(4)) ?? []) {
          const w = this.windows.get(c);
          if (w) w.mapped = req[0] === 9;
        }
        return;
      case 12:
        this.configureWindow(u32(4), u16(8), req, 12 + s);
        return;
      case 13: {
        // CirculateWindow: RaiseLowest (0) puts the bottom child on top, LowerHighest (1) the top one at the bottom.
        const stack = this.stacks.get(u32(4));
        if (!stack || stack.length < 2) return;
        if (req[1] === 0) stack.push(stack.shift()!);
        else stack.unshift(stack.pop()!);
        return;
      }
      case 18:
        this.changeProperty(req[1]!, u32(4), u32(8), u32(12), req[16 + s]!, u32(20), req, 24 + s);
        return;
      case 19:
        this.deleteProperty(u32(4), u32(8));
        return;
      case 114:
        this.rotateProperties(u32(4), u16(8), i16(10), req, 12 + s);
        return;
      case 45: {
        if (!this.fresh(u32(4))) return;
        const len = u16(8);
        this.fonts.set(u32(4), req.toString('latin1', 12 + s, Math.min(req.length, 12 + s + len)));
        this.closedFonts.delete(u32(4));
        return;
      }
      case 46: {
        const name = this.fonts.get(u32(4));
        if (name === undefined) return;
        this.fonts.delete(u32(4));
        this.closedFonts.set(u32(4), name);
        if (this.closedFonts.size > CLOSED_FONTS_KEPT) this.closedFonts.delete(this.closedFonts.keys().next().value!);
        return;
      }
      case 53:
        if (!this.fresh(u32(4))) return;
        this.pixmaps.set(u32(4), { id: u32(4), depth: req[1]!, width: u16(12), height: u16(14) });
        return;
      case 54:
        this.pixmaps.delete(u32(4));
        return;
      case 55:
        if (!this.fresh(u32(4))) return;
        this.gcs.set(u32(4), { id: u32(4), drawable: u32(8), values: mergeValues(new Map(), req, 12 + s, 16 + s, le, null), dashes: null, clip: null });
        return;
      case 56: {
        const gc = this.gcs.get(u32(4));
        if (gc) this.changeGC(gc, req, 8 + s, 12 + s);
        return;
      }
      case 57: {
        // CopyGC: the masked components of the source replace the destination's.
        const src = this.gcs.get(u32(4));
        const dst = this.gcs.get(u32(8));
        if (!src || !dst) return;
        const mask = u32(12);
        for (let bit = 1; bit !== 0 && bit <= 0x400000; bit <<= 1) {
          if ((mask & bit) === 0) continue;
          const v = src.values.get(bit);
          if (v === undefined) dst.values.delete(bit);
          else dst.values.set(bit, v);
        }
        if (mask & (GCV.dashes | GCV.dashOffset)) dst.dashes = src.dashes;
        if (mask & (GCV.clipMask | GCV.clipX | GCV.clipY)) dst.clip = src.clip;
        return;
      }
      case 58: {
        const gc = this.gcs.get(u32(4));
        if (!gc) return;
        gc.dashes = normalise(req, le);
        gc.values.delete(GCV.dashes);
        gc.values.delete(GCV.dashOffset);
        return;
      }
      case 59: {
        const gc = this.gcs.get(u32(4));
        if (!gc) return;
        gc.clip = normalise(req, le);
        gc.values.delete(GCV.clipMask);
        gc.values.delete(GCV.clipX);
        gc.values.delete(GCV.clipY);
        return;
      }
      case 60:
        this.gcs.delete(u32(4));
        return;
      case 78:
        if (!this.fresh(u32(4))) return;
        this.colormaps.set(u32(4), Buffer.from(req));
        return;
      case 79:
        this.colormaps.delete(u32(4));
        return;
      case 93:
      case 94:
        if (!this.fresh(u32(4))) return; // a freed cursor still in use may be replaced: its id is free again
        this.cursors.set(u32(4), { id: u32(4), request: normalise(req, le), freed: false });
        return;
      case 95: {
        const c = this.cursors.get(u32(4));
        if (!c) return;
        if (this.cursorInUse(c.id)) c.freed = true;
        else this.cursors.delete(c.id);
        return;
      }
      case 96: {
        // RecolorCursor: six CARD16 colours at 8..19; CreateCursor holds them at 16, CreateGlyphCursor at 20.
        const c = this.cursors.get(u32(4));
        if (!c || req.length < 20 + s) return;
        req.copy(c.request, c.request[0] === 93 ? 16 : 20, 8 + s, 20 + s);
        return;
      }
    }
  }

  /** A create request's id: not in use (else the server answers BadIDChoice) and within the limit. */
  private fresh(id: number): boolean {
    return !this.isLive(id) && this.room();
  }

  /** True if `window` is `candidate` or one of its ancestors (reparenting there would make a cycle). */
  private isSelfOrAncestor(window: number, candidate: number): boolean {
    for (let w: number | undefined = candidate, n = 0; w !== undefined && n <= this.windows.size; n++) {
      if (w === window) return true;
      w = this.windows.get(w)?.parent;
    }
    return false;
  }

  private room(): boolean {
    const n = this.windows.size + this.pixmaps.size + this.gcs.size + this.fonts.size + this.cursors.size + this.colormaps.size;
    if (n < this.maxResources) return true;
    this.notKept++;
    if (!this.warned) {
      this.warned = true;
      this.log(`resource tracker: more than ${this.maxResources} resources; new ones are not kept for late joiners`);
    }
    return false;
  }

  private cursorInUse(id: number): boolean {
    for (const w of this.windows.values()) if (w.values.get(CW.cursor) === id) return true;
    return false;
  }

  private stackPush(parent: number, id: number): void {
    const s = this.stacks.get(parent);
    if (s) s.push(id);
    else this.stacks.set(parent, [id]);
  }

  private stackRemove(parent: number, id: number): void {
    const s = this.stacks.get(parent);
    if (!s) return;
    const i = s.indexOf(id);
    if (i >= 0) s.splice(i, 1);
    if (s.length === 0) this.stacks.delete(parent);
  }

  private destroyWindow(id: number): void {
    const w = this.windows.get(id);
    if (!w) return;
    for (const c of [...(this.stacks.get(id) ?? [])]) this.destroyWindow(c);
    this.stacks.delete(id);
    this.stackRemove(w.parent, id);
    this.windows.delete(id);
    const props = this.properties.get(id);
    if (props) {
      for (const p of props.values()) this.propertyBytes -= p.data.length;
      this.properties.delete(id);
    }
  }

  private configureWindow(id: number, mask: number, req: Buffer, listOffset: number): void {
    const w = this.windows.get(id);
    if (!w) return;
    let off = listOffset;
    const next = (): number => {
      const v = off + 4 <= req.length ? read32(req, off, this.le) : 0;
      off += 4;
      return v;
    };
    let sibling = 0;
    let mode = -1;
    if (mask & 1) w.x = (next() << 16) >> 16;
    if (mask & 2) w.y = (next() << 16) >> 16;
    if (mask & 4) w.width = next() & 0xffff;
    if (mask & 8) w.height = next() & 0xffff;
    if (mask & 16) w.borderWidth = next() & 0xffff;
    if (mask & 32) sibling = next();
    if (mask & 64) mode = next();
    // Above (0) / Below (1), relative to a sibling or to all siblings. TopIf, BottomIf and Opposite depend on
    // overlaps on each display and are not modelled.
    if (mode !== 0 && mode !== 1) return;
    const stack = this.stacks.get(w.parent);
    const self = stack ? stack.indexOf(id) : -1;
    if (!stack || self < 0) return;
    stack.splice(self, 1);
    const at = sibling ? stack.indexOf(sibling) : -1;
    if (at >= 0) stack.splice(mode === 0 ? at + 1 : at, 0, id);
    else if (mode === 0) stack.push(id);
    else stack.unshift(id);
  }

  private changeGC(gc: TrackedGC, req: Buffer, maskOffset: number, listOffset: number): void {
    const mask = maskOffset + 4 <= req.length ? read32(req, maskOffset, this.le) : 0;
    const values = mergeValues(new Map(), req, maskOffset, listOffset, this.le, null);
    // A clip origin or dash offset set after SetClipRectangles/SetDashes patches that request.
    if (gc.clip && !(mask & GCV.clipMask)) {
      const x = values.get(GCV.clipX);
      const y = values.get(GCV.clipY);
      if (x !== undefined) writeField16(gc.clip, 8, x, this.le);
      if (y !== undefined) writeField16(gc.clip, 10, y, this.le);
      values.delete(GCV.clipX);
      values.delete(GCV.clipY);
    }
    if (mask & GCV.clipMask) gc.clip = null;
    if (gc.dashes && !(mask & GCV.dashes)) {
      const d = values.get(GCV.dashOffset);
      if (d !== undefined) writeField16(gc.dashes, 8, d, this.le);
      values.delete(GCV.dashOffset);
    }
    if (mask & GCV.dashes) gc.dashes = null;
    for (const [bit, v] of values) gc.values.set(bit, v);
  }

  private changeProperty(mode: number, window: number, atom: number, type: number, format: number, units: number, req: Buffer, dataOffset: number): void {
    if (!this.windows.has(window)) return; // only the application's own windows
    if (format !== 8 && format !== 16 && format !== 32) return;
    const bytes = Math.min(units * (format / 8), Math.max(0, req.length - dataOffset));
    const data = req.subarray(dataOffset, dataOffset + bytes);
    let props = this.properties.get(window);
    const old = props?.get(atom);
    let value: Buffer;
    if (mode === 0 || !old) value = Buffer.from(data);
    else {
      if (old.type !== type || old.format !== format) return; // the server answers BadMatch
      value = mode === 1 ? Buffer.concat([data, old.data]) : appendInPlace(old.data, data);
    }
    const grow = value.length - (old?.data.length ?? 0);
    if (this.propertyBytes + grow > this.maxPropertyBytes) {
      this.notKept++;
      this.log(`resource tracker: property ${atom} of window 0x${window.toString(16)} (${value.length} bytes) not kept: over ${this.maxPropertyBytes} bytes of properties`);
      if (old) {
        props!.delete(atom);
        this.propertyBytes -= old.data.length;
      }
      return;
    }
    if (!props) this.properties.set(window, (props = new Map()));
    props.set(atom, { type, format, data: value });
    this.propertyBytes += grow;
  }

  private deleteProperty(window: number, atom: number): void {
    const props = this.properties.get(window);
    const old = props?.get(atom);
    if (!props || !old) return;
    props.delete(atom);
    this.propertyBytes -= old.data.length;
  }

  private rotateProperties(window: number, count: number, delta: number, req: Buffer, listOffset: number): void {
    const props = this.properties.get(window);
    if (!props || count === 0 || listOffset + 4 * count > req.length) return;
    const atoms: number[] = [];
    for (let i = 0; i < count; i++) atoms.push(read32(req, listOffset + 4 * i, this.le));
    const old = atoms.map((a) => props.get(a));
    if (old.some((p) => p === undefined) || new Set(atoms).size !== count) return; // the server answers an error
    // The value of atoms[i] becomes the value of atoms[(i + delta) mod n].
    atoms.forEach((_, i) => props.set(atoms[(((i + delta) % count) + count) % count]!, old[i]!));
  }
}

/**
 * `old` followed by `more`, reusing `old`'s spare capacity (its underlying buffer, allocated with room to
 * double), so that a property grown by many small appends costs linear, not quadratic, copying.
 */
function appendInPlace(old: Buffer, more: Buffer): Buffer {
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

const GROWABLE = Symbol('growable');

/** Bits that cancel each other (background pixmap vs pixel, border pixmap vs pixel). */
function windowExclusive(values: Map<number, number>, bit: number): void {
  if (bit === CW.backPixmap) values.delete(CW.backPixel);
  else if (bit === CW.backPixel) values.delete(CW.backPixmap);
  else if (bit === CW.borderPixmap) values.delete(CW.borderPixel);
  else if (bit === CW.borderPixel) values.delete(CW.borderPixmap);
}

/** Reads a value mask + list and merges it into `values`. */
function mergeValues(
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
function normalise(req: Buffer, le: boolean): Buffer {
  if (read16(req, 2, le) !== 0 || req.length > 0x3fffc) return Buffer.from(req);
  const out = Buffer.alloc(req.length - 4);
  req.copy(out, 0, 0, 4);
  req.copy(out, 4, 8);
  if (le) out.writeUInt16LE(out.length / 4, 2);
  else out.writeUInt16BE(out.length / 4, 2);
  return out;
}

function writeField16(buf: Buffer, off: number, value: number, le: boolean): void {
  if (le) buf.writeUInt16LE(value & 0xffff, off);
  else buf.writeUInt16BE(value & 0xffff, off);
}
