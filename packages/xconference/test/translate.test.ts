import { describe, expect, it } from 'vitest';
import { IdMap } from '../src/translate/id-map.js';
import { parseServerSetup } from '../src/wire/setup.js';
import { encodeServerSetup, screen } from './helpers/setup-builder.js';
import { translateEvent, translateReply, translateRequest } from '../src/translate/translate.js';

const setupOf = (base: number, root: number, colormap = 0x20) =>
  parseServerSetup(encodeServerSetup({ le: true, base, mask: 0x1fffff, screen: screen(root, 0x21, colormap) }), true);
const app = setupOf(0x400000, 0x50d);
const other = setupOf(0x200000, 0x42, 0x21);

describe('IdMap', () => {
  const map = new IdMap(app, other);
  it('maps the application’s resources with id & mask | base, both ways', () => {
    expect(map.toServer(0x400003, 'WINDOW')).toBe(0x200003);
    expect(map.toApp(0x200003, 'WINDOW')).toBe(0x400003);
  });
  it('maps the root window and default colormap specially, and leaves other ids and None alone', () => {
    expect(map.toServer(0x50d, 'WINDOW')).toBe(0x42);
    expect(map.toApp(0x42, 'WINDOW')).toBe(0x50d);
    expect(map.toServer(0x20, 'COLORMAP')).toBe(0x21);
    expect(map.toServer(0, 'WINDOW')).toBe(0);
    expect(map.toServer(0x600001, 'WINDOW')).toBe(0x600001);
  });
  it('keeps predefined atoms and maps interned ones through the table', () => {
    expect(map.toServer(39, 'ATOM')).toBe(39);
    map.learnAtom(300, 412);
    expect(map.toServer(300, 'ATOM')).toBe(412);
    expect(map.toApp(412, 'ATOM')).toBe(300);
  });
  it('is a pass-through when both servers agree', () => {
    expect(new IdMap(app, setupOf(0x400000, 0x50d)).passThrough).toBe(true);
    expect(map.passThrough).toBe(false);
  });
});

describe('translateRequest', () => {
  const map = new IdMap(app, other);
  it('rewrites CreateWindow ids and the value list (background pixmap, colormap) in a copy', () => {
    const req = Buffer.alloc(32 + 8);
    req[0] = 1;
    req[1] = 24;
    req.writeUInt16LE(10, 2);
    req.writeUInt32LE(0x400005, 4); // wid
    req.writeUInt32LE(0x50d, 8); // parent = root
    req.writeUInt32LE(0x21, 24); // visual
    req.writeUInt32LE(0x1 | 0x2000, 28); // BackPixmap | Colormap
    req.writeUInt32LE(0x400009, 32);
    req.writeUInt32LE(0x20, 36);
    const out = translateRequest(req, map, true);
    expect(out).not.toBe(req);
    expect(req.readUInt32LE(4)).toBe(0x400005); // original untouched (the master gets it)
    expect([out.readUInt32LE(4), out.readUInt32LE(8), out.readUInt32LE(32), out.readUInt32LE(36)]).toEqual([
      0x200005, 0x42, 0x200009, 0x21,
    ]);
  });

  it('shifts field offsets by 4 for BIG-REQUESTS requests', () => {
    const req = Buffer.alloc(20);
    req[0] = 70; // PolyFillRectangle
    req.writeUInt16LE(0, 2);
    req.writeUInt32LE(5, 4);
    req.writeUInt32LE(0x400001, 8);
    req.writeUInt32LE(0x400002, 12);
    const out = translateRequest(req, map, true);
    expect([out.readUInt32LE(8), out.readUInt32LE(12)]).toEqual([0x200001, 0x200002]);
  });

  it('rewrites the font of a PolyText8 font-change item (always most significant byte first)', () => {
    const req = Buffer.alloc(28);
    req[0] = 74;
    req.writeUInt16LE(7, 2);
    req.writeUInt32LE(0x400001, 4);
    req.writeUInt32LE(0x400002, 8);
    req[16] = 255;
    req.writeUInt32BE(0x400007, 17);
    req[21] = 2;
    req[22] = 0;
    req.write('hi', 23);
    const out = translateRequest(req, map, true);
    expect(out.readUInt32BE(17)).toBe(0x200007);
  });

  it('returns the request itself when nothing changes', () => {
    const req = Buffer.alloc(4);
    req[0] = 43;
    req.writeUInt16LE(1, 2);
    expect(translateRequest(req, map, true)).toBe(req);
  });
});

describe('translating replies and events to the application', () => {
  const map = new IdMap(app, other);
  it('maps QueryTree root, parent and children', () => {
    const reply = Buffer.alloc(32 + 8);
    reply[0] = 1;
    reply.writeUInt32LE(2, 4);
    reply.writeUInt32LE(0x42, 8);
    reply.writeUInt32LE(0x42, 12);
    reply.writeUInt16LE(2, 16);
    reply.writeUInt32LE(0x200003, 32);
    reply.writeUInt32LE(0x999999, 36);
    const out = translateReply(reply, 15, map, true);
    expect([out.readUInt32LE(8), out.readUInt32LE(12), out.readUInt32LE(32), out.readUInt32LE(36)]).toEqual([
      0x50d, 0x50d, 0x400003, 0x999999,
    ]);
  });
  it('maps the windows of a KeyPress', () => {
    const ev = Buffer.alloc(32);
    ev[0] = 2;
    ev.writeUInt32LE(0x42, 8);
    ev.writeUInt32LE(0x200003, 12);
    const out = translateEvent(ev, map, true);
    expect([out.readUInt32LE(8), out.readUInt32LE(12)]).toEqual([0x50d, 0x400003]);
  });
});

describe('depth and pixel translation (24-bit master, 16-bit 5-6-5 server)', () => {
  const depth16 = parseServerSetup(
    encodeServerSetup({
      le: true,
      base: 0x200000,
      mask: 0x1fffff,
      screen: {
        root: 0x3ff,
        colormap: 0x20,
        rootVisual: 0x21,
        depth: 16,
        visuals: [{ id: 0x21, depth: 16, klass: 4, red: 0xf800, green: 0x7e0, blue: 0x1f }],
      },
    }),
    true,
  );
  const map = new IdMap(app, depth16);

  it('converts TrueColor pixels channel by channel', () => {
    expect(map.convertsPixels).toBe(true);
    expect(map.pixelToServer(0xffffff)).toBe(0xffff);
    expect(map.pixelToServer(0)).toBe(0);
    expect(map.pixelToServer(0xff0000)).toBe(0xf800);
    expect(map.pixelToServer(0x00ff00)).toBe(0x07e0);
    expect(map.pixelToServer(0x808080)).toBe((16 << 11) | (32 << 5) | 16);
  });

  it('maps the root depth in CreateWindow and the pixels of ChangeGC', () => {
    const cw = Buffer.alloc(32 + 4);
    cw[0] = 1;
    cw[1] = 24;
    cw.writeUInt16LE(9, 2);
    cw.writeUInt32LE(0x400005, 4);
    cw.writeUInt32LE(0x50d, 8);
    cw.writeUInt32LE(0x2, 28); // BackPixel
    cw.writeUInt32LE(0xffffff, 32);
    const out = translateRequest(cw, map, true);
    expect(out[1]).toBe(16);
    expect(out.readUInt32LE(32)).toBe(0xffff);
    const gc = Buffer.alloc(20);
    gc[0] = 56;
    gc.writeUInt16LE(5, 2);
    gc.writeUInt32LE(0x400006, 4);
    gc.writeUInt32LE(0x4 | 0x8, 8); // Foreground | Background
    gc.writeUInt32LE(0xff0000, 12);
    gc.writeUInt32LE(0x0000ff, 16);
    const g = translateRequest(gc, map, true);
    expect([g.readUInt32LE(12), g.readUInt32LE(16)]).toEqual([0xf800, 0x1f]);
  });

  it('keeps depth 1 (bitmaps) as it is', () => {
    const cp = Buffer.alloc(16);
    cp[0] = 53;
    cp[1] = 1;
    cp.writeUInt16LE(4, 2);
    cp.writeUInt32LE(0x400007, 4);
    cp.writeUInt32LE(0x50d, 8);
    expect(translateRequest(cp, map, true)[1]).toBe(1);
  });
});
