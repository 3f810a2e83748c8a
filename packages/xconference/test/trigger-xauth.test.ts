import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '../src/session/focus-trigger.js';
import { findCookie, readXauthority } from '../src/session/xauth.js';

describe('parseFocusTrigger', () => {
  it('parses key chords, buttons and none', () => {
    expect(parseFocusTrigger('ctrl+alt+f')).toMatchObject({ kind: 'key', keysym: 0x66, modifiers: 4 | 8 });
    expect(parseFocusTrigger('Shift+F5')).toMatchObject({ kind: 'key', keysym: 0xffc2, modifiers: 1 });
    expect(parseFocusTrigger('button3')).toMatchObject({ kind: 'button', button: 3 });
    expect(parseFocusTrigger('button')).toMatchObject({ kind: 'button', button: 0 });
    expect(parseFocusTrigger('none').kind).toBe('none');
  });
  it('rejects unknown modifiers and keys', () => {
    expect(() => parseFocusTrigger('hyper+f')).toThrow(/unknown modifier/);
    expect(() => parseFocusTrigger('ctrl+Escape')).toThrow(/unsupported key/);
  });
});

function entry(family: number, address: string, display: string, name: string, data: Buffer): Buffer {
  const f = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  return Buffer.concat([
    Buffer.from([family >> 8, family & 0xff]),
    f(Buffer.from(address)),
    f(Buffer.from(display)),
    f(Buffer.from(name)),
    f(data),
  ]);
}

describe('Xauthority', () => {
  it('finds the MIT-MAGIC-COOKIE-1 for a local display', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xauth-'));
    const file = join(dir, 'Xauthority');
    const cookie = Buffer.alloc(16, 0x5a);
    writeFileSync(
      file,
      Buffer.concat([
        entry(256, 'otherhost', '91', 'MIT-MAGIC-COOKIE-1', Buffer.alloc(16, 1)),
        entry(256, 'myhost', '91', 'MIT-MAGIC-COOKIE-1', cookie),
      ]),
    );
    try {
      const entries = readXauthority(file);
      expect(entries).toHaveLength(2);
      expect(findCookie(entries, 91, 'myhost')?.data.equals(cookie)).toBe(true);
      expect(findCookie(entries, 92, 'myhost')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('returns nothing for a missing or truncated file', () => {
    expect(readXauthority('/nonexistent/xauth')).toEqual([]);
    expect(readXauthority(undefined)).toEqual([]);
  });
});
