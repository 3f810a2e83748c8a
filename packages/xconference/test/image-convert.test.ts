import { describe, expect, it } from 'vitest';
import { convertZPixmap, rowBytes } from '../src/translate/image-convert.js';
import { parseServerSetup } from '../src/wire/setup.js';
import { encodeServerSetup, screen } from './helpers/setup-builder.js';

const to565 = (v: number): number => (((v >>> 19) & 0x1f) << 11) | (((v >>> 10) & 0x3f) << 5) | ((v >>> 3) & 0x1f);

describe('convertZPixmap', () => {
  it('re-encodes 32-bit 8-8-8 pixels as 16-bit 5-6-5, with each layout’s scanline padding and byte order', () => {
    const from = { le: true, bitsPerPixel: 32, scanlinePad: 32 };
    const to = { le: false, bitsPerPixel: 16, scanlinePad: 32 };
    const pixels = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x000000, 0x808080];
    const data = Buffer.alloc(rowBytes(3, from) * 2);
    for (const [i, p] of pixels.entries()) data.writeUInt32LE(p, 4 * i);
    const out = convertZPixmap(data, 3, 2, from, to, to565)!;
    expect(rowBytes(3, to)).toBe(8); // 48 bits padded to 64
    expect(out.length).toBe(16);
    const got = [0, 2, 4, 8, 10, 12].map((off) => out.readUInt16BE(off));
    expect(got).toEqual([0xf800, 0x07e0, 0x001f, 0xffff, 0x0000, to565(0x808080)]);
    expect([out.readUInt16BE(6), out.readUInt16BE(14)]).toEqual([0, 0]); // padding
  });

  it('refuses layouts it does not handle and short data', () => {
    const f32 = { le: true, bitsPerPixel: 32, scanlinePad: 32 };
    expect(convertZPixmap(Buffer.alloc(12), 1, 1, { le: true, bitsPerPixel: 24, scanlinePad: 32 }, f32, (v) => v)).toBeNull();
    expect(convertZPixmap(Buffer.alloc(4), 2, 2, f32, f32, (v) => v)).toBeNull();
  });
});

describe('parseServerSetup pixmap formats', () => {
  it('reads the image byte order and each depth’s bits per pixel and scanline pad', () => {
    const setup = parseServerSetup(encodeServerSetup({ le: true, base: 0x400000, mask: 0x1fffff, screen: screen(0x50d) }), true);
    expect(setup.imageByteOrder).toBe('LE');
    expect(setup.pixmapFormats).toEqual([{ depth: 24, bitsPerPixel: 32, scanlinePad: 32 }]);
  });
});
