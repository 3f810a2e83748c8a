import { Opcode, type OpcodeName } from '../generated/xproto.js';
import { read32 } from '../wire/bytes.js';
import {
  appendInPlace,
  GCV,
  CW,
  mergeValues,
  normalise,
  RequestFields,
  windowExclusive,
  type TrackedCursor,
  type TrackedGC,
  type TrackedPixmap,
  type TrackedProperty,
  type TrackedWindow,
} from './tracked.js';

/** What a tracked request does to the tracker's state. */
type Handler = (t: ResourceTracker, r: RequestFields) => void;

/**
 * Opcodes whose requests create, change or free a resource the tracker keeps (filled from the tracker's
 * handlers, by request name). The session looks an opcode up here (one array read) before calling the
 * tracker, so drawing requests cost nothing more.
 */
export const TRACKED_OPCODES: Uint8Array = new Uint8Array(256);
/** The tracker's handler of each tracked opcode. */
const HANDLERS: Array<Handler | undefined> = new Array(256);

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

/** Closed fonts remembered for GCs and glyph cursors that still use them. */
const CLOSED_FONTS_KEPT = 64;

/**
 * Keeps, from an application's request stream (in the application's numbering and byte order), the live
 * resources it created: windows with attributes, geometry, stacking and map state; pixmaps; GCs; fonts;
 * cursors; colormaps; and properties of its windows. What the application frees is dropped. A late joiner's
 * server is brought up to date by replaying this state (replay-plan.ts). Its handlers are at the end, by request name.
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
      this.cursors.get(id)?.freed === false
    );
  }

  /** An id of the application's range that no live resource uses, searching down from the top of the range. */
  unusedId(exclude: ReadonlySet<number> = new Set()): number {
    for (let low = this.idMask; low > 0; low--) {
      const id = (this.idBase | (low & this.idMask)) >>> 0;
      if (!this.isLive(id) && !exclude.has(id) && !this.cursors.has(id)) return id;
    }
    throw new Error('no unused resource id');
  }

  /** The master refused the request that created `id` (it had no effect there): nothing to replay. */
  forget(id: number): void {
    this.destroyWindow(id);
    for (const m of [this.pixmaps, this.gcs, this.fonts, this.colormaps, this.cursors]) m.delete(id);
  }

  /** Observes one request the application sent (opcode in TRACKED_OPCODES); never throws on short input. */
  observe(req: Buffer): void {
    if (req.length < 8) return;
    HANDLERS[req[0]!]?.(this, new RequestFields(req, this.le));
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

  private changeProperty(
    mode: number,
    window: number,
    atom: number,
    type: number,
    format: number,
    units: number,
    req: Buffer,
    dataOffset: number,
  ): void {
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
      this.log(
        `resource tracker: property ${atom} of window 0x${window.toString(16)} (${value.length} bytes) not kept: over ${this.maxPropertyBytes} bytes of properties`,
      );
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
    for (let i = 0; i < atoms.length; i++) props.set(atoms[(((i + delta) % count) + count) % count]!, old[i]!);
  }

  /**
   * What each tracked request does, by its name in xproto (checked against the generated names); the
   * opcodes come from the generated table. Each reads the request's fields in the ordinary layout.
   */
  private static readonly onRequest = {
    CreateWindow(t, r) {
      const id = r.u32(4);
      const parent = r.u32(8);
      if (!t.fresh(id) || id === parent) return;
      t.windows.set(id, {
        id,
        parent,
        depth: r.req[1]!,
        x: r.i16(12),
        y: r.i16(14),
        width: r.u16(16),
        height: r.u16(18),
        borderWidth: r.u16(20),
        klass: r.u16(22),
        visual: r.u32(24),
        values: mergeValues(new Map(), r.req, r.at(28), r.at(32), r.le, windowExclusive),
        mapped: false,
      });
      t.stackPush(parent, id);
    },
    ChangeWindowAttributes(t, r) {
      const w = t.windows.get(r.u32(4));
      if (w) mergeValues(w.values, r.req, r.at(8), r.at(12), r.le, windowExclusive);
    },
    DestroyWindow(t, r) {
      t.destroyWindow(r.u32(4));
    },
    DestroySubwindows(t, r) {
      for (const c of [...(t.stacks.get(r.u32(4)) ?? [])]) t.destroyWindow(c);
    },
    ReparentWindow(t, r) {
      // The window goes on top of its new parent's children, at (x, y); map state is kept.
      const w = t.windows.get(r.u32(4));
      if (!w || t.isSelfOrAncestor(w.id, r.u32(8))) return; // the server answers BadMatch
      t.stackRemove(w.parent, w.id);
      w.parent = r.u32(8);
      w.x = r.i16(12);
      w.y = r.i16(14);
      t.stackPush(w.parent, w.id);
    },
    MapWindow: (t, r) => t.setMapped(r.u32(4), true),
    UnmapWindow: (t, r) => t.setMapped(r.u32(4), false),
    MapSubwindows: (t, r) => t.setChildrenMapped(r.u32(4), true),
    UnmapSubwindows: (t, r) => t.setChildrenMapped(r.u32(4), false),
    ConfigureWindow(t, r) {
      t.configureWindow(r.u32(4), r.u16(8), r.req, r.at(12));
    },
    CirculateWindow(t, r) {
      // RaiseLowest (0) puts the bottom child on top, LowerHighest (1) the top one at the bottom.
      const stack = t.stacks.get(r.u32(4));
      if (!stack || stack.length < 2) return;
      if (r.req[1] === 0) stack.push(stack.shift()!);
      else stack.unshift(stack.pop()!);
    },
    ChangeProperty(t, r) {
      t.changeProperty(r.req[1]!, r.u32(4), r.u32(8), r.u32(12), r.req[r.at(16)]!, r.u32(20), r.req, r.at(24));
    },
    DeleteProperty(t, r) {
      t.deleteProperty(r.u32(4), r.u32(8));
    },
    RotateProperties(t, r) {
      t.rotateProperties(r.u32(4), r.u16(8), r.i16(10), r.req, r.at(12));
    },
    OpenFont(t, r) {
      const id = r.u32(4);
      if (!t.fresh(id)) return;
      const len = r.u16(8);
      t.fonts.set(id, r.req.toString('latin1', r.at(12), Math.min(r.req.length, r.at(12) + len)));
      t.closedFonts.delete(id);
    },
    CloseFont(t, r) {
      const id = r.u32(4);
      const name = t.fonts.get(id);
      if (name === undefined) return;
      t.fonts.delete(id);
      t.closedFonts.set(id, name);
      if (t.closedFonts.size > CLOSED_FONTS_KEPT) t.closedFonts.delete(t.closedFonts.keys().next().value!);
    },
    CreatePixmap(t, r) {
      const id = r.u32(4);
      if (!t.fresh(id)) return;
      t.pixmaps.set(id, { id, depth: r.req[1]!, width: r.u16(12), height: r.u16(14) });
    },
    FreePixmap(t, r) {
      t.pixmaps.delete(r.u32(4));
    },
    CreateGC(t, r) {
      const id = r.u32(4);
      if (!t.fresh(id)) return;
      t.gcs.set(id, {
        id,
        drawable: r.u32(8),
        values: mergeValues(new Map(), r.req, r.at(12), r.at(16), r.le, null),
        dashes: null,
        clip: null,
      });
    },
    ChangeGC(t, r) {
      const gc = t.gcs.get(r.u32(4));
      if (gc) t.changeGC(gc, r.req, r.at(8), r.at(12));
    },
    CopyGC(t, r) {
      // The masked components of the source replace the destination's.
      const src = t.gcs.get(r.u32(4));
      const dst = t.gcs.get(r.u32(8));
      if (!src || !dst) return;
      const mask = r.u32(12);
      for (let bit = 1; bit !== 0 && bit <= 0x400000; bit <<= 1) {
        if ((mask & bit) === 0) continue;
        const v = src.values.get(bit);
        if (v === undefined) dst.values.delete(bit);
        else dst.values.set(bit, v);
      }
      if (mask & (GCV.dashes | GCV.dashOffset)) dst.dashes = src.dashes;
      if (mask & (GCV.clipMask | GCV.clipX | GCV.clipY)) dst.clip = src.clip;
    },
    SetDashes(t, r) {
      const gc = t.gcs.get(r.u32(4));
      if (!gc) return;
      gc.dashes = normalise(r.req, r.le);
      gc.values.delete(GCV.dashes);
      gc.values.delete(GCV.dashOffset);
    },
    SetClipRectangles(t, r) {
      const gc = t.gcs.get(r.u32(4));
      if (!gc) return;
      gc.clip = normalise(r.req, r.le);
      gc.values.delete(GCV.clipMask);
      gc.values.delete(GCV.clipX);
      gc.values.delete(GCV.clipY);
    },
    FreeGC(t, r) {
      t.gcs.delete(r.u32(4));
    },
    CreateColormap(t, r) {
      const id = r.u32(4);
      if (!t.fresh(id)) return;
      t.colormaps.set(id, Buffer.from(r.req));
    },
    FreeColormap(t, r) {
      t.colormaps.delete(r.u32(4));
    },
    CreateCursor: (t, r) => t.createCursor(r),
    CreateGlyphCursor: (t, r) => t.createCursor(r),
    FreeCursor(t, r) {
      const c = t.cursors.get(r.u32(4));
      if (!c) return;
      if (t.cursorInUse(c.id)) c.freed = true;
      else t.cursors.delete(c.id);
    },
    RecolorCursor(t, r) {
      // Six CARD16 colours at 8..19; CreateCursor holds them at 16, CreateGlyphCursor at 20.
      const c = t.cursors.get(r.u32(4));
      if (!c || r.req.length < r.at(20)) return;
      r.req.copy(c.request, c.request[0] === Opcode.CreateCursor ? 16 : 20, r.at(8), r.at(20));
    },
  } satisfies Partial<Record<OpcodeName, Handler>>;

  static {
    for (const [name, handler] of Object.entries(ResourceTracker.onRequest)) {
      const opcode = Opcode[name as OpcodeName];
      HANDLERS[opcode] = handler;
      TRACKED_OPCODES[opcode] = 1;
    }
  }

  private setMapped(id: number, mapped: boolean): void {
    const w = this.windows.get(id);
    if (w) w.mapped = mapped;
  }

  private setChildrenMapped(parent: number, mapped: boolean): void {
    for (const c of this.stacks.get(parent) ?? []) {
      const w = this.windows.get(c);
      if (w) w.mapped = mapped;
    }
  }

  /** A cursor (CreateCursor, CreateGlyphCursor); a freed cursor still in use may be replaced: its id is free again. */
  private createCursor(r: RequestFields): void {
    const id = r.u32(4);
    if (!this.fresh(id)) return;
    this.cursors.set(id, { id, request: normalise(r.req, r.le), freed: false });
  }
}

function writeField16(buf: Buffer, off: number, value: number, le: boolean): void {
  if (le) buf.writeUInt16LE(value & 0xffff, off);
  else buf.writeUInt16BE(value & 0xffff, off);
}
