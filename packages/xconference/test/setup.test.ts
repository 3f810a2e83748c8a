import { describe, expect, it } from 'vitest';
import { encodeClientSetup, encodeSetupFailed, parseClientSetup, parseServerSetup, serverSetupSize } from '../src/wire/setup.js';
import { encodeServerSetup, screen } from './helpers/setup-builder.js';

describe('connection setup', () => {
  it('round-trips the client setup request in both byte orders, with authorisation', () => {
    for (const order of ['LE', 'BE'] as const) {
      const enc = encodeClientSetup(order, 'MIT-MAGIC-COOKIE-1', Buffer.alloc(16, 7));
      expect(enc[0]).toBe(order === 'LE' ? 0x6c : 0x42);
      const parsed = parseClientSetup(enc)!;
      expect(parsed).toMatchObject({ byteOrder: order, major: 11, minor: 0, authName: 'MIT-MAGIC-COOKIE-1', size: enc.length });
      expect(parsed.authData.equals(Buffer.alloc(16, 7))).toBe(true);
      expect(parseClientSetup(enc.subarray(0, enc.length - 1))).toBeNull();
    }
  });

  it('rejects a bad byte-order byte with a typed error', () => {
    expect(() => parseClientSetup(Buffer.from('GET / HTTP/1.1\r\n'))).toThrowError(
      expect.objectContaining({ name: 'XProtocolError', code: 'bad-byte-order' }),
    );
  });

  it('parses a server setup reply in both byte orders', () => {
    for (const le of [true, false]) {
      const raw = encodeServerSetup({ le, base: 0x400000, mask: 0x1fffff, screen: screen(0x50d) });
      expect(serverSetupSize(raw, le)).toBe(raw.length);
      const s = parseServerSetup(raw, le);
      expect(s).toMatchObject({
        status: 'success',
        resourceIdBase: 0x400000,
        resourceIdMask: 0x1fffff,
        minKeycode: 8,
        maxKeycode: 255,
        vendor: 'Fake X',
      });
      expect(s.screens[0]).toMatchObject({ root: 0x50d, defaultColormap: 0x20, rootVisual: 0x21, rootDepth: 24 });
      expect(s.screens[0]!.visuals[0]).toMatchObject({ id: 0x21, depth: 24, klass: 4, redMask: 0xff0000 });
    }
  });

  it('parses a refusal and reports a truncated reply as a typed error', () => {
    const failed = parseServerSetup(encodeSetupFailed('no way', true), true);
    expect(failed).toMatchObject({ status: 'failed', reason: 'no way' });
    const raw = encodeServerSetup({ le: true, base: 0, mask: 0x1fffff, screen: screen(1) });
    expect(() => parseServerSetup(raw.subarray(0, 20), true)).toThrowError(expect.objectContaining({ code: 'truncated' }));
  });

  it('reports screens that run past the reply as malformed', () => {
    const raw = Buffer.from(encodeServerSetup({ le: true, base: 0, mask: 0x1fffff, screen: screen(1) }));
    raw[28] = 3; // claims three screens
    expect(() => parseServerSetup(raw, true)).toThrowError(expect.objectContaining({ name: 'XProtocolError', code: 'malformed-setup' }));
  });
});
