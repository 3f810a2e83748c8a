import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HmacKey, KeyError, KeyRing, MAC_BYTES } from '../src/auth.js';

const reference = (key: Uint8Array, parts: Uint8Array[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, MAC_BYTES);
};

describe('HmacKey (precomputed pads, one-shot hashes)', () => {
  it('gives the bytes of RFC 2104 HMAC-SHA256 truncated to MAC_BYTES for any key up to a block and any parts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), (key, parts) => {
        const got = new HmacKey(Buffer.from(key)).mac(parts);
        expect(got.length).toBe(MAC_BYTES);
        expect(Buffer.from(got).equals(reference(key, parts))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps no state between calls (the same input gives the same tag, a different one another)', () => {
    const k = new HmacKey(randomBytes(32));
    const a = k.mac([new Uint8Array([1, 2, 3])]);
    k.mac([randomBytes(100)]);
    expect(k.mac([new Uint8Array([1, 2, 3])])).toEqual(a);
    expect(k.mac([new Uint8Array([1, 2, 4])])).not.toEqual(a);
  });

  it('refuses a key longer than a SHA-256 block', () => {
    expect(() => new HmacKey(randomBytes(65))).toThrow(KeyError);
  });
});

describe('KeyRing', () => {
  it('signs with the first key and verifies a tag from any key of the ring', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const old = KeyRing.derive([k1], 'state-mac');
    const rotated = KeyRing.derive([k2, k1], 'state-mac');
    const msg = new Uint8Array([9, 8, 7]);
    expect(rotated.verify(old.sign(msg), msg)).toBe(true);
    expect(old.verify(rotated.sign(msg), msg)).toBe(false);
    expect(KeyRing.derive([k1], 'peer-auth').verify(old.sign(msg), msg)).toBe(false);
  });
});
