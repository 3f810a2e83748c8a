import type { ResourceKind } from '../wire/xproto-types.js';
import type { ScreenInfo, ServerSetup, VisualInfo } from '../wire/setup.js';

/** Atoms 1..68 are predefined by the protocol and identical on every server. */
export const LAST_PREDEFINED_ATOM = 68;

/**
 * Translates ids between the application's view (the master's numbering) and one server's numbering:
 * the application's resources by `id & mask | base`, the root window, default colormap and visuals of
 * screen 0 specially, and atoms through a table filled from InternAtom replies.
 */
export class IdMap {
  readonly identity: boolean;
  private readonly appBase: number;
  private readonly appMask: number;
  private readonly base: number;
  private readonly mask: number;
  private readonly appRoot: number;
  private readonly root: number;
  private readonly appColormap: number;
  private readonly colormap: number;
  private readonly visualToServer = new Map<number, number>();
  private readonly visualToApp = new Map<number, number>();
  private readonly atomToServer = new Map<number, number>();
  private readonly atomToApp = new Map<number, number>();
  private atomsIdentical = true;
  /** Root depths of the application's view and of this server (CreateWindow/CreatePixmap depths are mapped). */
  readonly appDepth: number;
  readonly depth: number;
  /** True when TrueColor pixel values must be converted (the root visuals' channel masks differ). */
  readonly convertsPixels: boolean;
  private readonly appMasks: readonly [number, number, number];
  private readonly masks: readonly [number, number, number];

  constructor(app: ServerSetup, server: ServerSetup) {
    this.appBase = app.resourceIdBase >>> 0;
    this.appMask = app.resourceIdMask >>> 0;
    this.base = server.resourceIdBase >>> 0;
    this.mask = server.resourceIdMask >>> 0;
    const a = app.screens[0] as ScreenInfo;
    const s = server.screens[0] as ScreenInfo;
    this.appRoot = a.root;
    this.root = s.root;
    this.appColormap = a.defaultColormap;
    this.colormap = s.defaultColormap;
    for (const v of a.visuals) {
      const match = matchVisual(v, s.visuals, a.rootVisual === v.id ? s.rootVisual : undefined);
      if (match !== undefined) {
        this.visualToServer.set(v.id, match);
        if (!this.visualToApp.has(match)) this.visualToApp.set(match, v.id);
      }
    }
    this.appDepth = a.rootDepth;
    this.depth = s.rootDepth;
    const av = a.visuals.find((v) => v.id === a.rootVisual);
    const sv = s.visuals.find((v) => v.id === s.rootVisual);
    this.appMasks = [av?.redMask ?? 0, av?.greenMask ?? 0, av?.blueMask ?? 0];
    this.masks = [sv?.redMask ?? 0, sv?.greenMask ?? 0, sv?.blueMask ?? 0];
    this.convertsPixels =
      av !== undefined && sv !== undefined && av.klass === 4 && sv.klass === 4 && this.appMasks.some((m, i) => m !== this.masks[i]);
    let visualsIdentical = true;
    for (const [k, v] of this.visualToServer) if (k !== v) visualsIdentical = false;
    this.identity =
      this.appBase === this.base &&
      this.appMask === this.mask &&
      this.appRoot === this.root &&
      this.appColormap === this.colormap &&
      visualsIdentical &&
      this.appDepth === this.depth &&
      !this.convertsPixels;
  }

  /** The application's root depth in this server's terms (other depths, e.g. 1 for bitmaps, are kept). */
  depthToServer(depth: number): number {
    return depth === this.appDepth ? this.depth : depth;
  }

  /** A TrueColor pixel value of the application's root visual as the same colour on this server. */
  pixelToServer(pixel: number): number {
    if (!this.convertsPixels) return pixel;
    let out = 0;
    for (let i = 0; i < 3; i++) out |= scaleChannel(pixel, this.appMasks[i]!, this.masks[i]!);
    return out >>> 0;
  }

  /** True when no field of any message needs rewriting for this server (ids, visuals and atoms agree). */
  get passThrough(): boolean {
    return this.identity && this.atomsIdentical;
  }

  /** Records that the application's atom `appAtom` is `serverAtom` on this server. */
  learnAtom(appAtom: number, serverAtom: number): void {
    if (appAtom === 0 || serverAtom === 0) return;
    this.atomToServer.set(appAtom, serverAtom);
    this.atomToApp.set(serverAtom, appAtom);
    if (appAtom !== serverAtom) this.atomsIdentical = false;
  }

  toServer(id: number, kind: ResourceKind): number {
    if (id === 0) return 0;
    if (kind === 'ATOM') return id <= LAST_PREDEFINED_ATOM ? id : (this.atomToServer.get(id) ?? id);
    if (kind === 'VISUALID') return this.visualToServer.get(id) ?? id;
    if (id === this.appRoot) return this.root;
    if (id === this.appColormap) return this.colormap;
    if ((id & ~this.appMask) >>> 0 === this.appBase) return ((id & this.appMask & this.mask) | this.base) >>> 0;
    return id;
  }

  toApp(id: number, kind: ResourceKind): number {
    if (id === 0) return 0;
    if (kind === 'ATOM') return id <= LAST_PREDEFINED_ATOM ? id : (this.atomToApp.get(id) ?? id);
    if (kind === 'VISUALID') return this.visualToApp.get(id) ?? id;
    if (id === this.root) return this.appRoot;
    if (id === this.colormap) return this.appColormap;
    if ((id & ~this.mask) >>> 0 === this.base) return ((id & this.mask & this.appMask) | this.appBase) >>> 0;
    return id;
  }
}

/** Moves the channel selected by `from` into the bit positions of `to`, rescaling its width. */
function scaleChannel(pixel: number, from: number, to: number): number {
  if (from === 0 || to === 0) return 0;
  const fromShift = 31 - Math.clz32(from & -from);
  const fromMax = from >>> fromShift;
  const toShift = 31 - Math.clz32(to & -to);
  const toMax = to >>> toShift;
  const v = ((pixel & from) >>> 0) >>> fromShift;
  return (Math.round((v * toMax) / fromMax) << toShift) >>> 0;
}

/** The server visual that stands for the application's visual `v`: same id if equivalent, else same class/depth/masks. */
function matchVisual(v: VisualInfo, candidates: readonly VisualInfo[], rootVisual: number | undefined): number | undefined {
  const same = (c: VisualInfo): boolean =>
    c.depth === v.depth && c.klass === v.klass && c.redMask === v.redMask && c.greenMask === v.greenMask && c.blueMask === v.blueMask;
  if (rootVisual !== undefined) return rootVisual;
  const byId = candidates.find((c) => c.id === v.id && same(c));
  if (byId) return byId.id;
  return candidates.find(same)?.id;
}
