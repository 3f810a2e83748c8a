import { describe, expect, it } from 'vitest';
import { planReplay, RequestEncoder } from '../src/late-join/replay-plan.js';
import { RefusedCreates } from '../src/late-join/refused-creates.js';
import { ResourceTracker, TRACKED_OPCODES } from '../src/late-join/resource-tracker.js';

const ROOT = 0x50d;
const BASE = 0x400000;
const MASK = 0x1fffff;
const W1 = BASE + 1;
const W2 = BASE + 2;
const W3 = BASE + 3;
const W4 = BASE + 4;
const enc = new RequestEncoder(true);

const name = (op: number): string =>
  ({
    1: 'CreateWindow',
    8: 'MapWindow',
    18: 'ChangeProperty',
    45: 'OpenFont',
    46: 'CloseFont',
    53: 'CreatePixmap',
    55: 'CreateGC',
    58: 'SetDashes',
    59: 'SetClipRectangles',
    60: 'FreeGC',
    78: 'CreateColormap',
    93: 'CreateCursor',
    94: 'CreateGlyphCursor',
    95: 'FreeCursor',
  })[op] ?? String(op);
/** The plan as "Opcode id" lines (id = first field). */
const summary = (reqs: Buffer[]): string[] => reqs.map((r) => `${name(r[0]!)} ${r.readUInt32LE(4).toString(16)}`);

function createWindow(
  id: number,
  parent: number,
  x: number,
  y: number,
  w: number,
  h: number,
  values: Map<number, number> = new Map(),
): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(id, 0);
  head.writeUInt32LE(parent, 4);
  head.writeInt16LE(x, 8);
  head.writeInt16LE(y, 10);
  head.writeUInt16LE(w, 12);
  head.writeUInt16LE(h, 14);
  head.writeUInt16LE(0, 16);
  head.writeUInt16LE(1, 18); // InputOutput
  return enc.request(1, 0, Buffer.concat([head, enc.valueList(values)]));
}
const idReq = (op: number, id: number): Buffer => enc.words(op, 0, [id]);
function configure(id: number, values: Map<number, number>): Buffer {
  const vl = enc.valueList(values);
  const body = Buffer.alloc(8 + vl.length - 4);
  body.writeUInt32LE(id, 0);
  body.writeUInt16LE(vl.readUInt32LE(0), 4);
  vl.copy(body, 8, 4);
  return enc.request(12, 0, body);
}
function changeProperty(mode: number, window: number, atom: number, type: number, text: string): Buffer {
  const r = enc.changeProperty(window, atom, type, 8, Buffer.from(text, 'latin1'))[0]!;
  r[1] = mode;
  return r;
}
function openFont(id: number, fontName: string): Buffer {
  const body = Buffer.alloc(8 + fontName.length);
  body.writeUInt32LE(id, 0);
  body.writeUInt16LE(fontName.length, 4);
  body.write(fontName, 8, 'latin1');
  return enc.request(45, 0, body);
}
const createGC = (id: number, drawable: number, values: Map<number, number>): Buffer =>
  enc.request(55, 0, Buffer.concat([enc.words(0, 0, [id, drawable]).subarray(4), enc.valueList(values)]));
const changeGC = (id: number, values: Map<number, number>): Buffer =>
  enc.request(56, 0, Buffer.concat([enc.words(0, 0, [id]).subarray(4), enc.valueList(values)]));
const createPixmap = (id: number, depth: number, w: number, h: number): Buffer => {
  const r = enc.words(53, depth, [id, ROOT, 0]);
  r.writeUInt16LE(w, 12);
  r.writeUInt16LE(h, 14);
  return r;
};

function tracker(limits = {}): { t: ResourceTracker; feed: (...reqs: Buffer[]) => void; logs: string[] } {
  const logs: string[] = [];
  const t = new ResourceTracker(true, ROOT, BASE, MASK, (l) => logs.push(l), limits);
  return {
    t,
    feed: (...reqs) => {
      for (const r of reqs) t.observe(r);
    },
    logs,
  };
}

describe('ResourceTracker', () => {
  it('keeps a window with merged attributes and geometry, and replays it created, then mapped', () => {
    const { t, feed } = tracker();
    feed(
      createWindow(
        W1,
        ROOT,
        10,
        20,
        100,
        50,
        new Map([
          [0x2, 0xffffff],
          [0x800, 0x8000],
        ]),
      ),
      enc.words(2, 0, [W1, 0x1 | 0x800, 0, 0x8001]), // background pixmap None replaces the pixel; new event mask
      configure(
        W1,
        new Map([
          [1, 30],
          [4, 200],
        ]),
      ),
      idReq(8, W1),
    );
    const w = t.windows.get(W1)!;
    expect([w.x, w.y, w.width, w.height, w.mapped]).toEqual([30, 20, 200, 50, true]);
    expect([...w.values]).toEqual([
      [0x800, 0x8001],
      [0x1, 0],
    ]);
    const plan = planReplay(t, true);
    expect(summary(plan.after)).toEqual([`CreateWindow ${W1.toString(16)}`, `MapWindow ${W1.toString(16)}`]);
    const cw = plan.after[0]!;
    expect([cw.readUInt32LE(8), cw.readInt16LE(12), cw.readInt16LE(14), cw.readUInt16LE(16), cw.readUInt16LE(18)]).toEqual([
      ROOT,
      30,
      20,
      200,
      50,
    ]);
    expect(cw.readUInt32LE(28)).toBe(0x801); // value mask, then values in bit order
    expect([cw.readUInt32LE(32), cw.readUInt32LE(36)]).toEqual([0, 0x8001]);
  });

  it('drops a destroyed window with its subtree and properties; DestroySubwindows keeps the parent', () => {
    const { t, feed } = tracker();
    feed(
      createWindow(W1, ROOT, 0, 0, 10, 10),
      createWindow(W2, W1, 0, 0, 5, 5),
      createWindow(W3, W2, 0, 0, 2, 2),
      changeProperty(0, W3, 39, 31, 'x'),
    );
    expect(t.stats.propertyBytes).toBe(1);
    feed(idReq(5, W1));
    expect([...t.windows.keys()]).toEqual([W1]);
    expect(t.stats.propertyBytes).toBe(0);
    feed(idReq(4, W1));
    expect(t.windows.size + t.stacks.size + t.properties.size).toBe(0);
    expect(planReplay(t, true).after).toEqual([]);
  });

  it('replays parents before children, siblings in stacking order, and maps children before parents', () => {
    const { t, feed } = tracker();
    feed(
      createWindow(W1, ROOT, 0, 0, 100, 100),
      createWindow(W2, W1, 0, 0, 10, 10),
      createWindow(W3, W1, 0, 0, 10, 10),
      createWindow(W4, W1, 0, 0, 10, 10),
      configure(W4, new Map([[64, 1]])), // W4 to the bottom
      configure(
        W2,
        new Map([
          [32, W3],
          [64, 0],
        ]),
      ), // W2 just above W3
      enc.words(9, 0, [W1]), // MapSubwindows
      idReq(8, W1),
      idReq(10, W3),
    );
    expect(t.stacks.get(W1)).toEqual([W4, W3, W2]);
    const s = summary(planReplay(t, true).after);
    const h = (id: number): string => id.toString(16);
    expect(s).toEqual([
      `CreateWindow ${h(W1)}`,
      `CreateWindow ${h(W4)}`,
      `CreateWindow ${h(W3)}`,
      `CreateWindow ${h(W2)}`,
      `MapWindow ${h(W4)}`,
      `MapWindow ${h(W2)}`,
      `MapWindow ${h(W1)}`,
    ]);
    feed(enc.words(13, 0, [W1])); // CirculateWindow RaiseLowest
    expect(t.stacks.get(W1)).toEqual([W3, W2, W4]);
  });

  it('follows ReparentWindow, and recreates windows of foreign parents under the root', () => {
    const { t, feed } = tracker();
    feed(createWindow(W1, ROOT, 0, 0, 10, 10), createWindow(W2, ROOT, 0, 0, 10, 10));
    const rep = enc.words(7, 0, [W2, W1, 0]);
    rep.writeInt16LE(-5, 12);
    rep.writeInt16LE(7, 14);
    feed(rep, createWindow(W3, 0x123456, 0, 0, 1, 1));
    expect(t.windows.get(W2)).toMatchObject({ parent: W1, x: -5, y: 7 });
    const plan = planReplay(t, true);
    const creates = plan.after.filter((r) => r[0] === 1).map((r) => [r.readUInt32LE(4), r.readUInt32LE(8)]);
    expect(creates).toEqual([
      [W1, ROOT],
      [W2, W1],
      [W3, ROOT],
    ]);
    expect(plan.skipped.join('\n')).toMatch(/another client's window 0x123456/);
  });

  it('keeps GCs with merged values, dashes and clip rectangles (origin patched by ChangeGC), and drops freed ones', () => {
    const { t, feed } = tracker();
    const G1 = BASE + 10;
    const G2 = BASE + 11;
    feed(
      createWindow(W1, ROOT, 0, 0, 10, 10),
      createGC(
        G1,
        W1,
        new Map([
          [4, 0xff0000],
          [16, 2],
        ]),
      ),
      changeGC(
        G1,
        new Map([
          [4, 0x00ff00],
          [8, 7],
        ]),
      ),
    );
    const clip = enc.request(59, 0, Buffer.concat([enc.words(0, 0, [G1]).subarray(4), Buffer.from([1, 0, 2, 0, 0, 0, 0, 0, 5, 0, 5, 0])]));
    const dashes = enc.request(58, 0, Buffer.from([...enc.words(0, 0, [G1]).subarray(4), 0, 0, 2, 0, 3, 1]));
    feed(
      clip,
      dashes,
      changeGC(
        G1,
        new Map([
          [0x20000, 9],
          [0x100000, 4],
        ]),
      ),
      createGC(G2, ROOT, new Map()),
      idReq(60, G2),
    );
    const gc = t.gcs.get(G1)!;
    expect([...gc.values].sort((a, b) => a[0] - b[0])).toEqual([
      [4, 0x00ff00],
      [8, 7],
      [16, 2],
    ]);
    expect(gc.clip!.readInt16LE(8)).toBe(9);
    expect(gc.clip!.readInt16LE(10)).toBe(2);
    expect(gc.dashes!.readUInt16LE(8)).toBe(4);
    const after = planReplay(t, true).after;
    expect(summary(after).filter((l) => !l.startsWith('CreateWindow') && !l.startsWith('MapWindow'))).toEqual([
      `CreateGC ${G1.toString(16)}`,
      `SetDashes ${G1.toString(16)}`,
      `SetClipRectangles ${G1.toString(16)}`,
    ]);
    expect(after.find((r) => r[0] === 55)!.readUInt32LE(8)).toBe(W1);
    // a clip mask set by ChangeGC replaces the rectangles
    feed(changeGC(G1, new Map([[0x80000, 0]])));
    expect(t.gcs.get(G1)!.clip).toBeNull();
  });

  it('CopyGC copies the masked components', () => {
    const { t, feed } = tracker();
    const G1 = BASE + 10;
    const G2 = BASE + 11;
    feed(
      createGC(
        G1,
        ROOT,
        new Map([
          [4, 1],
          [8, 2],
        ]),
      ),
      createGC(
        G2,
        ROOT,
        new Map([
          [4, 9],
          [16, 3],
        ]),
      ),
      enc.words(57, 0, [G1, G2, 4 | 16]),
    );
    expect([...t.gcs.get(G2)!.values].sort((a, b) => a[0] - b[0])).toEqual([[4, 1]]);
  });

  it('keeps the final value of each property: replace, append, prepend, delete, rotate', () => {
    const { t, feed } = tracker();
    feed(
      createWindow(W1, ROOT, 0, 0, 10, 10),
      changeProperty(0, W1, 39, 31, 'mid'),
      changeProperty(2, W1, 39, 31, '-end'),
      changeProperty(1, W1, 39, 31, 'start-'),
    );
    const text = (atom: number): string | undefined => t.properties.get(W1)?.get(atom)?.data.toString('latin1');
    expect(text(39)).toBe('start-mid-end');
    feed(changeProperty(2, W1, 39, 4 /* another type: BadMatch */, 'x'));
    expect(text(39)).toBe('start-mid-end');
    feed(changeProperty(0, W1, 37, 31, 'icon'), changeProperty(0, W1, 38, 31, 'three'));
    const rot = enc.words(114, 0, [W1, 0, 39, 37, 38]);
    rot.writeUInt16LE(3, 8);
    rot.writeInt16LE(1, 10);
    feed(rot);
    expect([text(39), text(37), text(38)]).toEqual(['three', 'start-mid-end', 'icon']);
    feed(enc.words(19, 0, [W1, 37]));
    expect(text(37)).toBeUndefined();
    expect(t.stats.propertyBytes).toBe('three'.length + 'icon'.length);
    const props = planReplay(t, true).after.filter((r) => r[0] === 18);
    expect(props.map((r) => [r.readUInt32LE(8), r.toString('latin1', 24, 24 + r.readUInt32LE(20))])).toEqual([
      [39, 'three'],
      [38, 'icon'],
    ]);
  });

  it('keeps a property grown by many appends exactly (appends reuse spare room)', () => {
    const { t, feed } = tracker();
    feed(createWindow(W1, ROOT, 0, 0, 10, 10), changeProperty(0, W1, 39, 31, 'start:'));
    let expected = 'start:';
    for (let i = 0; i < 2000; i++) {
      const piece = `${i},`;
      feed(changeProperty(2, W1, 39, 31, piece));
      expected += piece;
      if (i === 1000) feed(changeProperty(1, W1, 39, 31, '<')), (expected = '<' + expected);
    }
    expect(t.properties.get(W1)!.get(39)!.data.toString('latin1')).toBe(expected);
    expect(t.stats.propertyBytes).toBe(expected.length);
  });

  it('splits a long property value into Replace + Append requests that need no BIG-REQUESTS', () => {
    const { t, feed } = tracker();
    const big = Buffer.alloc(150_000, 0x61);
    const req = enc.changeProperty(W1, 39, 31, 8, big, 1 << 20)[0]!; // one request…
    const asBig = Buffer.alloc(req.length + 4); // …in BIG-REQUESTS form
    req.copy(asBig, 0, 0, 4);
    asBig.writeUInt16LE(0, 2);
    asBig.writeUInt32LE(asBig.length / 4, 4);
    req.copy(asBig, 8, 4);
    feed(createWindow(W1, ROOT, 0, 0, 10, 10), asBig);
    expect(t.properties.get(W1)!.get(39)!.data.length).toBe(150_000);
    const props = planReplay(t, true).after.filter((r) => r[0] === 18);
    expect(props.map((r) => r[1])).toEqual([0, 2, 2]);
    expect(props.every((r) => r.readUInt16LE(2) * 4 === r.length)).toBe(true);
    expect(Buffer.concat(props.map((r) => r.subarray(24, 24 + r.readUInt32LE(20)))).equals(big)).toBe(true);
  });

  it('does not keep property values beyond its byte limit, and says so', () => {
    const { t, feed, logs } = tracker({ maxPropertyBytes: 10 });
    feed(createWindow(W1, ROOT, 0, 0, 10, 10), changeProperty(0, W1, 39, 31, 'short'), changeProperty(0, W1, 40, 31, 'much too long'));
    expect(t.properties.get(W1)!.has(40)).toBe(false);
    expect(t.stats.notKept).toBe(1);
    expect(logs.join('\n')).toMatch(/not kept/);
  });

  it('does not keep resources beyond its count limit', () => {
    const { t, feed, logs } = tracker({ maxResources: 2 });
    feed(createWindow(W1, ROOT, 0, 0, 1, 1), createPixmap(BASE + 5, 24, 4, 4), createPixmap(BASE + 6, 24, 4, 4));
    expect(t.pixmaps.size).toBe(1);
    expect(t.stats.notKept).toBe(1);
    expect(logs.length).toBe(1);
  });

  it('plans fonts, colormaps and pixmaps (with their images) before windows; freed pixmaps are gone', () => {
    const { t, feed } = tracker();
    const cmap = enc.words(78, 0, [BASE + 20, W1, 0x21]);
    feed(
      createWindow(W1, ROOT, 0, 0, 1, 1),
      openFont(BASE + 7, 'fixed'),
      cmap,
      createPixmap(BASE + 5, 24, 4, 3),
      createPixmap(BASE + 6, 1, 8, 8),
      idReq(54, BASE + 6),
    );
    const plan = planReplay(t, true);
    expect(summary(plan.before)).toEqual([
      `OpenFont ${(BASE + 7).toString(16)}`,
      `CreateColormap ${(BASE + 20).toString(16)}`,
      `CreatePixmap ${(BASE + 5).toString(16)}`,
    ]);
    expect(plan.before[1]!.readUInt32LE(8)).toBe(ROOT); // the colormap's window stands for the screen: the root
    expect(plan.images).toEqual([{ pixmap: BASE + 5, depth: 24, width: 4, height: 3 }]);
    expect(t.isLive(plan.imageGc)).toBe(false);
    expect((plan.imageGc & ~MASK) >>> 0 === BASE).toBe(true);
  });

  it('skips a cursor whose source pixmap was freed, and drops the window attribute that used it', () => {
    const { t, feed } = tracker();
    const P = BASE + 5;
    const C = BASE + 30;
    feed(
      createPixmap(P, 1, 16, 16),
      enc.words(93, 0, [C, P, 0, 0, 0, 0, 0]),
      idReq(54, P),
      createWindow(W1, ROOT, 0, 0, 10, 10, new Map([[0x4000, C]])),
    );
    const plan = planReplay(t, true);
    expect(plan.after.some((r) => r[0] === 93)).toBe(false);
    expect(plan.skipped.join('\n')).toMatch(/cursor 0x40001e not recreated/);
    expect(plan.after.find((r) => r[0] === 1)!.readUInt32LE(28)).toBe(0); // no cursor bit
  });

  it('reopens a closed font for a glyph cursor, and frees at the end a cursor that was freed but is still in use', () => {
    const { t, feed } = tracker();
    const F = BASE + 7;
    const C = BASE + 30;
    const glyph = enc.words(94, 0, [C, F, F, (69 << 16) | 68, 0, 0, 0]);
    feed(openFont(F, 'cursor'), glyph, idReq(46, F), createWindow(W1, ROOT, 0, 0, 10, 10, new Map([[0x4000, C]])), idReq(95, C));
    expect(t.cursors.get(C)!.freed).toBe(true);
    const plan = planReplay(t, true);
    expect(summary(plan.before)).toEqual([`OpenFont ${F.toString(16)}`]);
    expect(summary(plan.after)).toEqual([
      `CreateGlyphCursor ${C.toString(16)}`,
      `CreateWindow ${W1.toString(16)}`,
      `CloseFont ${F.toString(16)}`,
      `FreeCursor ${C.toString(16)}`,
    ]);
    expect(plan.after[1]!.readUInt32LE(28)).toBe(0x4000);
    // a cursor freed while no window uses it is simply dropped
    feed(idReq(4, W1), enc.words(94, 0, [C + 1, F, F, 0, 0, 0, 0]), idReq(95, C + 1));
    expect(t.cursors.has(C + 1)).toBe(false);
  });

  it('survives random requests of every tracked opcode, and still plans a replay (seeded, bounded)', () => {
    const { t } = tracker({ maxPropertyBytes: 1 << 20 });
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const ops = [1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 18, 19, 45, 46, 53, 54, 55, 56, 57, 58, 59, 60, 78, 79, 93, 94, 95, 96, 114];
    for (let i = 0; i < 5000; i++) {
      const units = 1 + rand(12);
      const req = Buffer.alloc(units * 4);
      for (let j = 4; j < req.length; j++) req[j] = rand(256);
      // ids mostly from a small set in the application's range, so requests refer to each other
      for (let j = 4; j + 4 <= req.length; j += 4) if (rand(2)) req.writeUInt32LE(BASE + rand(8), j);
      req[0] = ops[rand(ops.length)]!;
      req[1] = rand(3);
      req.writeUInt16LE(rand(20) === 0 ? 0 : units, 2);
      expect(() => t.observe(req)).not.toThrow();
    }
    // invariants: every window is in exactly one stack, its parent's; properties only of live windows
    const placed = [...t.stacks].flatMap(([parent, ids]) => ids.map((id) => [id, parent] as const));
    expect(placed.length).toBe(t.windows.size);
    for (const [id, parent] of placed) expect(t.windows.get(id)?.parent).toBe(parent);
    for (const w of t.properties.keys()) expect(t.windows.has(w)).toBe(true);
    const bytes = [...t.properties.values()].reduce((n, props) => n + [...props.values()].reduce((m, p) => m + p.data.length, 0), 0);
    expect(t.stats.propertyBytes).toBe(bytes);
    expect(t.windows.size).toBeGreaterThan(0);
    expect(() => planReplay(t, true)).not.toThrow();
    for (const r of [...planReplay(t, true).before, ...planReplay(t, true).after]) expect(r.readUInt16LE(2) * 4).toBe(r.length);
  });

  it('never throws on short or truncated requests', () => {
    const { t } = tracker();
    for (const op of [1, 2, 4, 7, 12, 18, 45, 55, 56, 59, 93, 114]) {
      expect(() => t.observe(Buffer.from([op, 0, 1, 0]))).not.toThrow();
      expect(() => t.observe(Buffer.from([op, 0, 3, 0, 1, 0, 64, 0, 2, 0, 0, 0]))).not.toThrow();
    }
  });

  it('tracks exactly the requests that create, change or free what it keeps (by name, from the generated table)', () => {
    const tracked = [...TRACKED_OPCODES.keys()].filter((op) => TRACKED_OPCODES[op] !== 0);
    expect(tracked).toEqual([
      1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 18, 19, 45, 46, 53, 54, 55, 56, 57, 58, 59, 60, 78, 79, 93, 94, 95, 96, 114,
    ]);
  });
});

describe('RefusedCreates: creations the master refused are not replayed', () => {
  it('forgets a resource whose create the master answered with an error, and only that one', () => {
    const { t } = tracker();
    const refused = new RefusedCreates();
    refused.observe(t, createPixmap(BASE + 5, 24, 4, 3), 53, 10, true);
    refused.observe(t, createPixmap(BASE + 6, 24, 4, 3), 53, 11, true);
    expect(t.isLive(BASE + 5) && t.isLive(BASE + 6)).toBe(true);
    refused.masterError(t, 11);
    expect([t.isLive(BASE + 5), t.isLive(BASE + 6)]).toEqual([true, false]);
    refused.masterError(t, 12); // an error for a request that created nothing
    expect(t.isLive(BASE + 5)).toBe(true);
  });

  it('an error for a create of an id already in use (BadIDChoice) leaves the live resource alone', () => {
    const { t } = tracker();
    const refused = new RefusedCreates();
    refused.observe(t, createPixmap(BASE + 5, 24, 4, 3), 53, 10, true);
    refused.observe(t, createPixmap(BASE + 5, 24, 8, 8), 53, 11, true); // the server refuses it
    refused.masterError(t, 11);
    expect(t.isLive(BASE + 5)).toBe(true);
    expect(t.pixmaps.get(BASE + 5)).toMatchObject({ width: 4, height: 3 });
  });
});
