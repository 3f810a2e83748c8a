import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  encodeFrameHeader,
  FrameDecoder,
  FRAME_HEADER_BYTES,
  isTransportError,
  MessageTooLargeError,
  STREAM_PREAMBLE,
} from '@tandem/transport';
import { mulberry32 } from './prng.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const hex = (ms: Uint8Array[]): string[] => ms.map((m) => Buffer.from(m.buffer, m.byteOffset, m.byteLength).toString('hex'));

const messages = (random: () => number, n: number, bigRate = 0.1): Uint8Array[] =>
  Array.from({ length: n }, () => {
    const m = new Uint8Array(Math.floor(random() * (random() < bigRate ? 5000 : 40)));
    for (let i = 0; i < m.length; i++) m[i] = Math.floor(random() * 256);
    return m;
  });

describe('frame encoding', () => {
  it('writes a 4-byte big-endian length before the payload', () => {
    expect([...encodeFrameHeader(0x01020304)]).toEqual([1, 2, 3, 4]);
    expect([...encodeFrame(Uint8Array.of(9, 8))]).toEqual([0, 0, 0, 2, 9, 8]);
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0]);
  });

  it('refuses lengths that are not a uint32, and messages over the limit', () => {
    expect(() => encodeFrameHeader(-1)).toThrow(RangeError);
    expect(() => encodeFrameHeader(2 ** 32)).toThrow(RangeError);
    expect(() => encodeFrame(new Uint8Array(11), 10)).toThrow(MessageTooLargeError);
  });
});

describe('FrameDecoder', () => {
  it('decodes many frames from one chunk as views into it (no copy)', () => {
    const chunk = concat([encodeFrame(Uint8Array.of(1)), encodeFrame(new Uint8Array(0)), encodeFrame(Uint8Array.of(2, 3))]);
    const out = new FrameDecoder({ maxMessageSize: 100 }).push(chunk);
    expect(out.map((m) => [...m])).toEqual([[1], [], [2, 3]]);
    expect(out[0]!.buffer).toBe(chunk.buffer);
    expect(out[2]!.buffer).toBe(chunk.buffer);
  });

  it('reassembles a stream cut at every byte boundary', () => {
    const input = messages(mulberry32(1), 30, 0);
    input.push(new Uint8Array(300).fill(1));
    const stream = concat([STREAM_PREAMBLE, ...input.map((m) => encodeFrame(m))]);
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      const d = new FrameDecoder({ maxMessageSize: 10_000, expectPreamble: true });
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(hex(got)).toEqual(hex(input));
      expect(d.isMidFrame).toBe(false);
    }
  });

  it('reassembles a stream fed one byte at a time and in random chunk sizes', () => {
    const random = mulberry32(7);
    const input = messages(random, 300);
    const stream = concat(input.map((m) => encodeFrame(m)));
    const byByte = new FrameDecoder({ maxMessageSize: 10_000 });
    const got1: Uint8Array[] = [];
    for (let i = 0; i < stream.byteLength; i++) got1.push(...byByte.push(stream.subarray(i, i + 1)));
    expect(hex(got1)).toEqual(hex(input));

    const randomChunks = new FrameDecoder({ maxMessageSize: 10_000 });
    const got2: Uint8Array[] = [];
    for (let at = 0; at < stream.byteLength; ) {
      const n = 1 + Math.floor(random() * 3000);
      got2.push(...randomChunks.push(stream.subarray(at, at + n)));
      at += n;
    }
    expect(hex(got2)).toEqual(hex(input));
  });

  it('throws MessageTooLargeError as soon as a header announces too much, before any payload arrives', () => {
    const d = new FrameDecoder({ maxMessageSize: 1024 });
    // 4 GiB - 1 announced: allocating first would fail or take the process down; the check comes first
    let err: unknown;
    try {
      d.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err, 'MessageTooLargeError')).toBe(true);
    expect((err as MessageTooLargeError).size).toBe(0xffffffff);
    expect((err as MessageTooLargeError).limit).toBe(1024);
    // once broken, always broken
    expect(() => d.push(encodeFrame(new Uint8Array(1)))).toThrow(MessageTooLargeError);
  });

  it('accepts a frame of exactly the limit, split across chunks', () => {
    const d = new FrameDecoder({ maxMessageSize: 1000 });
    const frame = encodeFrame(new Uint8Array(1000).fill(7));
    expect(d.push(frame.subarray(0, 2))).toEqual([]);
    expect(d.push(frame.subarray(2, 500))).toEqual([]);
    expect(d.bufferedBytes).toBe(496);
    const [m] = d.push(frame.subarray(500));
    expect(m!.byteLength).toBe(1000);
    expect(m!.every((b) => b === 7)).toBe(true);
    expect(() => new FrameDecoder({ maxMessageSize: 999 }).push(frame)).toThrow(MessageTooLargeError);
  });

  it('lets a reader fill the rest of a message in place (partialRest, filled); mixed with push', () => {
    const random = mulberry32(77);
    const big = new Uint8Array(300_000).map(() => Math.floor(random() * 256));
    const small = Uint8Array.of(9, 8, 7);
    const stream = concat([encodeFrame(big), encodeFrame(small), encodeFrame(big)]);
    const d = new FrameDecoder({ maxMessageSize: 1 << 20 });
    expect(d.partialRest()).toBeUndefined(); // a header comes next
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < stream.length) {
      const rest = d.partialRest();
      if (rest) {
        // Up to 70 000 bytes straight into the message being assembled, as a socket read would.
        const n = Math.min(rest.byteLength, 70_000, stream.length - at);
        rest.set(stream.subarray(at, at + n));
        at += n;
        const m = d.filled(n);
        if (m) out.push(m);
      } else {
        const n = Math.min(1000, stream.length - at);
        out.push(...d.push(stream.subarray(at, at + n)));
        at += n;
      }
    }
    expect(hex(out)).toEqual(hex([big, small, big]));
    expect(d.bufferedBytes).toBe(0);
    expect(() => d.filled(1)).toThrow(RangeError); // nothing being assembled
    d.push(encodeFrame(new Uint8Array(10)).subarray(0, 6));
    expect(d.partialRest()!.byteLength).toBe(8);
    expect(() => d.filled(9)).toThrow(RangeError); // more than its room
  });

  it('rejects a stream without the preamble with ProtocolError at the first wrong byte', () => {
    const d = new FrameDecoder({ maxMessageSize: 1000, expectPreamble: true });
    expect(d.push(STREAM_PREAMBLE.subarray(0, 2))).toEqual([]);
    let err: unknown;
    try {
      d.push(new TextEncoder().encode('X'));
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err, 'ProtocolError')).toBe(true);
    expect(() => new FrameDecoder({ maxMessageSize: 1, expectPreamble: true }).push(new TextEncoder().encode('GET / HTTP/1.1'))).toThrow(
      /preamble/,
    );
  });

  it('rejects another framing version with ProtocolError naming the version', () => {
    const other = STREAM_PREAMBLE.slice();
    other[4] = 9;
    expect(() => new FrameDecoder({ maxMessageSize: 1, expectPreamble: true }).push(other)).toThrow(/version 9/);
  });

  it('reports a stream that ends mid-frame as ProtocolError on finish()', () => {
    const clean = new FrameDecoder({ maxMessageSize: 100 });
    clean.push(encodeFrame(Uint8Array.of(1)));
    expect(() => clean.finish()).not.toThrow();

    const midHeader = new FrameDecoder({ maxMessageSize: 100 });
    midHeader.push(Uint8Array.of(0, 0));
    expect(() => midHeader.finish()).toThrow(/inside a frame/);

    const midPayload = new FrameDecoder({ maxMessageSize: 100 });
    midPayload.push(encodeFrame(new Uint8Array(10)).subarray(0, FRAME_HEADER_BYTES + 3));
    expect(midPayload.isMidFrame).toBe(true);
    let err: unknown;
    try {
      midPayload.finish();
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err, 'ProtocolError')).toBe(true);

    const midPreamble = new FrameDecoder({ maxMessageSize: 100, expectPreamble: true });
    midPreamble.push(STREAM_PREAMBLE.subarray(0, 3));
    expect(() => midPreamble.finish()).toThrow(/preamble/);
  });
});
