import { describe, expect, it } from 'vitest';
import { RequestFramer, ServerMessageFramer } from '../src/wire/framing.js';

const collect = (framer: { push(c: Buffer, f: (m: Buffer) => void): void }, chunks: Buffer[]): Buffer[] => {
  const out: Buffer[] = [];
  for (const c of chunks) framer.push(c, (m) => out.push(Buffer.from(m)));
  return out;
};

function request(opcode: number, words: number, le = true): Buffer {
  const b = Buffer.alloc(words * 4, 0xaa);
  b[0] = opcode;
  if (le) b.writeUInt16LE(words, 2);
  else b.writeUInt16BE(words, 2);
  return b;
}

describe('RequestFramer', () => {
  it('splits requests across arbitrary chunk boundaries, both byte orders', () => {
    for (const le of [true, false]) {
      const stream = Buffer.concat([request(43, 1, le), request(1, 8, le), request(70, 5, le)]);
      for (let cut = 1; cut < stream.length; cut += 3) {
        const out = collect(new RequestFramer(le), [stream.subarray(0, cut), stream.subarray(cut)]);
        expect(out.map((m) => [m[0], m.length])).toEqual([
          [43, 4],
          [1, 32],
          [70, 20],
        ]);
      }
    }
  });

  it('hands out slices of the incoming chunk without copying when a request is whole', () => {
    const chunk = Buffer.concat([request(43, 1), request(43, 1)]);
    const seen: Buffer[] = [];
    new RequestFramer(true).push(chunk, (m) => seen.push(m));
    expect(seen[0]!.buffer).toBe(chunk.buffer);
  });

  it('rejects a zero length unless BIG-REQUESTS is enabled, then reads the 32-bit length', () => {
    const big = Buffer.alloc(12);
    big[0] = 72;
    big.writeUInt16LE(0, 2);
    big.writeUInt32LE(3, 4);
    expect(() => collect(new RequestFramer(true), [big])).toThrowError(
      expect.objectContaining({ name: 'XProtocolError', code: 'bad-length' }),
    );
    const f = new RequestFramer(true);
    f.bigRequests = true;
    expect(collect(f, [big.subarray(0, 6), big.subarray(6)]).map((m) => m.length)).toEqual([12]);
  });

  it('rejects BIG-REQUESTS lengths that are too small or too large', () => {
    const f = new RequestFramer(true, 1024);
    f.bigRequests = true;
    const tiny = Buffer.alloc(8);
    tiny.writeUInt32LE(1, 4);
    expect(() => collect(f, [tiny])).toThrowError(expect.objectContaining({ code: 'bad-length' }));
    const g = new RequestFramer(true, 1024);
    g.bigRequests = true;
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(100000, 4);
    expect(() => collect(g, [huge])).toThrowError(expect.objectContaining({ code: 'too-large' }));
  });

  it('holds a truncated request until the rest arrives', () => {
    const f = new RequestFramer(true);
    expect(collect(f, [request(1, 8).subarray(0, 10)])).toEqual([]);
    expect(f.pending).toBe(10);
  });
});

describe('ServerMessageFramer', () => {
  const reply = (extraWords: number, seq: number): Buffer => {
    const b = Buffer.alloc(32 + extraWords * 4);
    b[0] = 1;
    b.writeUInt16LE(seq, 2);
    b.writeUInt32LE(extraWords, 4);
    return b;
  };

  it('frames errors, events, replies with extra data and GenericEvents', () => {
    const err = Buffer.alloc(32);
    const ev = Buffer.alloc(32);
    ev[0] = 12;
    const ge = Buffer.alloc(32 + 8);
    ge[0] = 35;
    ge.writeUInt32LE(2, 4);
    const stream = Buffer.concat([err, reply(3, 5), ev, ge]);
    const out = collect(new ServerMessageFramer(true), [stream.subarray(0, 50), stream.subarray(50)]);
    expect(out.map((m) => [m[0], m.length])).toEqual([
      [0, 32],
      [1, 44],
      [12, 32],
      [35, 40],
    ]);
  });

  it('keeps the several replies of ListFontsWithInfo (same sequence number) apart', () => {
    const stream = Buffer.concat([reply(10, 7), reply(12, 7), reply(7, 7)]);
    const out = collect(new ServerMessageFramer(true), [stream]);
    expect(out.map((m) => [m.readUInt16LE(2), m.length])).toEqual([
      [7, 72],
      [7, 80],
      [7, 60],
    ]);
  });

  it('refuses absurd reply lengths', () => {
    const b = Buffer.alloc(32);
    b[0] = 1;
    b.writeUInt32LE(0xffffffff, 4);
    expect(() => collect(new ServerMessageFramer(true), [b])).toThrowError(expect.objectContaining({ code: 'too-large' }));
  });
});
