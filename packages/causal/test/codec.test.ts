// The stamp encoding: round trips for any well-formed stamp, typed errors for any malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BROADCAST,
  decodeCausalMessage,
  decodeStamp,
  encodeCausalMessage,
  encodeStamp,
  isCausalProtocolError,
  stampSize,
  type CausalStamp,
} from '../src/index.js';
import { decodeFrame, encodeFrame, groupFingerprint, type Frame } from '../src/frames.js';

const count = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const stampArb: fc.Arbitrary<CausalStamp> = fc.integer({ min: 2, max: 40 }).chain((n) =>
  fc
    .record({
      kind: fc.constantFrom('direct' as const, 'broadcast' as const),
      from: fc.integer({ min: 0, max: n - 1 }),
      toOffset: fc.integer({ min: 1, max: n - 1 }),
      direct: fc.array(count, { minLength: n, maxLength: n }),
      broadcast: fc.array(count, { minLength: n, maxLength: n }),
      dests: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: n }),
      fractions: fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }), {
        minLength: n,
        maxLength: n,
      }),
    })
    .map(({ kind, from, toOffset, direct, broadcast, dests, fractions }) => {
      const own = kind === 'direct' ? direct : broadcast;
      own[from] = Math.max(1, own[from]!);
      const inTransit = dests
        .filter((d) => d !== from)
        .sort((a, b) => a - b)
        .map((to, i) => ({ to, latest: direct.map((v, k) => Math.floor(v * fractions[i]![k]!)) }))
        .filter((e) => e.latest.some((v) => v > 0));
      return { kind, from, to: kind === 'direct' ? (from + toOffset) % n : BROADCAST, direct, broadcast, inTransit };
    }),
);

describe('stamp codec', () => {
  it('round-trips every well-formed stamp', () => {
    fc.assert(
      fc.property(stampArb, (stamp) => {
        const bytes = encodeStamp(stamp);
        expect(bytes.byteLength).toBe(stampSize(stamp));
        expect(decodeStamp(bytes, stamp.direct.length)).toEqual(stamp);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips a stamped payload', () => {
    fc.assert(
      fc.property(stampArb, fc.uint8Array({ maxLength: 64 }), (stamp, payload) => {
        const decoded = decodeCausalMessage(encodeCausalMessage({ stamp, payload }), stamp.direct.length);
        expect(decoded.stamp).toEqual(stamp);
        expect(decoded.payload).toEqual(payload);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects garbage, truncations and a wrong group size with CausalProtocolError only', () => {
    const typed = (f: () => unknown): void => {
      try {
        f();
      } catch (err) {
        if (!isCausalProtocolError(err)) throw err;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (bytes, n) => {
        typed(() => decodeStamp(bytes, n));
        typed(() => decodeCausalMessage(bytes, n));
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(stampArb, fc.nat(), fc.integer({ min: 1, max: 41 }), (stamp, cut, n) => {
        const bytes = encodeStamp(stamp);
        typed(() => decodeStamp(bytes.subarray(0, cut % bytes.byteLength), stamp.direct.length));
        typed(() => decodeStamp(bytes, n));
      }),
      { numRuns: 500 },
    );
  });

  it('is compact: a first message costs a handful of bytes; an empty vector one byte', () => {
    const stamp: CausalStamp = { kind: 'direct', from: 0, to: 1, direct: [1, 0, 0], broadcast: [0, 0, 0], inTransit: [] };
    // header, from, to, direct {0: 1} (3 bytes); no broadcast vector, no in-transit set (header bits)
    expect([...encodeStamp(stamp)]).toEqual([0x10, 0, 1, 2, 0, 0]);
    const dense: CausalStamp = { kind: 'broadcast', from: 1, to: BROADCAST, direct: [0, 0, 0, 0], broadcast: [5, 6, 7, 8], inTransit: [] };
    expect([...encodeStamp(dense)]).toEqual([0x13, 1, 0, 1, 5, 6, 7, 8]); // dense: shorter than 4 (gap, value) pairs
  });

  it('refuses to encode a malformed stamp', () => {
    const bad = { kind: 'direct', from: 0, to: 0, direct: [1, 0], broadcast: [0, 0], inTransit: [] } as CausalStamp;
    expect(() => encodeStamp(bad)).toThrow(expect.objectContaining({ name: 'CausalProtocolError' }));
  });
});

describe('group frames', () => {
  it('round-trip; garbage is a CausalProtocolError', () => {
    const frames: Frame[] = [
      { type: 'hello', version: 1, fingerprint: groupFingerprint(['a', 'b']), from: 1, size: 2 },
      { type: 'data', seq: 300, body: new Uint8Array([1, 2, 3]) },
      { type: 'ack', seq: 7 },
      { type: 'refused', seq: 8 },
      { type: 'reject', reason: 'different members' },
    ];
    for (const f of frames) expect(decodeFrame(encodeFrame(f))).toEqual(f);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), (bytes) => {
        try {
          decodeFrame(bytes);
        } catch (err) {
          expect(isCausalProtocolError(err)).toBe(true);
        }
      }),
      { numRuns: 1_000 },
    );
    expect(groupFingerprint(['a', 'b'])).not.toBe(groupFingerprint(['a', 'c']));
  });
});
