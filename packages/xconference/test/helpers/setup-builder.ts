// Test helper (not built): encodes server setup replies like an X server would.
import { pad4, write16, write32 } from '../../src/wire/bytes.js';

export interface FakeScreen {
  root: number;
  colormap: number;
  rootVisual: number;
  depth: number;
  visuals: Array<{ id: number; depth: number; klass: number; red: number; green: number; blue: number }>;
}

export function encodeServerSetup(opts: {
  le: boolean;
  base: number;
  mask: number;
  screen: FakeScreen;
  vendor?: string;
  maxRequest?: number;
}): Buffer {
  const { le, screen } = opts;
  const vendor = Buffer.from(opts.vendor ?? 'Fake X');
  const depths = [...new Set(screen.visuals.map((v) => v.depth))];
  const screenSize = 40 + depths.reduce((n, d) => n + 8 + 24 * screen.visuals.filter((v) => v.depth === d).length, 0);
  const formats = 1;
  const size = 40 + vendor.length + pad4(vendor.length) + 8 * formats + screenSize;
  const b = Buffer.alloc(size);
  b[0] = 1;
  write16(b, 2, 11, le);
  write16(b, 6, (size - 8) / 4, le);
  write32(b, 12, opts.base, le);
  write32(b, 16, opts.mask, le);
  write16(b, 24, vendor.length, le);
  write16(b, 26, opts.maxRequest ?? 65535, le);
  b[28] = 1;
  b[29] = formats;
  b[34] = 8;
  b[35] = 255;
  vendor.copy(b, 40);
  let off = 40 + vendor.length + pad4(vendor.length);
  b[off] = screen.depth;
  b[off + 1] = 32;
  b[off + 2] = 32;
  off += 8;
  write32(b, off, screen.root, le);
  write32(b, off + 4, screen.colormap, le);
  write32(b, off + 8, 0xffffff, le);
  write32(b, off + 12, 0, le);
  write16(b, off + 20, 640, le);
  write16(b, off + 22, 480, le);
  write32(b, off + 32, screen.rootVisual, le);
  b[off + 38] = screen.depth;
  b[off + 39] = depths.length;
  off += 40;
  for (const d of depths) {
    const vs = screen.visuals.filter((v) => v.depth === d);
    b[off] = d;
    write16(b, off + 2, vs.length, le);
    off += 8;
    for (const v of vs) {
      write32(b, off, v.id, le);
      b[off + 4] = v.klass;
      b[off + 5] = 8;
      write16(b, off + 6, 256, le);
      write32(b, off + 8, v.red, le);
      write32(b, off + 12, v.green, le);
      write32(b, off + 16, v.blue, le);
      off += 24;
    }
  }
  return b;
}

export const TRUECOLOR24 = { klass: 4, red: 0xff0000, green: 0xff00, blue: 0xff };

export function screen(root: number, visualId = 0x21, colormap = 0x20): FakeScreen {
  return { root, colormap, rootVisual: visualId, depth: 24, visuals: [{ id: visualId, depth: 24, ...TRUECOLOR24 }] };
}
