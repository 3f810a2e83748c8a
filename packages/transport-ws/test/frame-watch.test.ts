// FrameWatch follows WebSocket frame boundaries in raw socket bytes, for the partial-frame deadline.
import { describe, expect, it } from 'vitest';
import { FrameWatch } from '../src/frame-watch.js';

/** A frame: FIN bit, opcode, masked or not, `length` payload bytes (7-bit, 16-bit or 64-bit length). */
function frame(fin: boolean, opcode: number, masked: boolean, length: number): Buffer {
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = masked ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (length < 126) head.push(m | length);
  else if (length < 65536) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(length);
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(length));
  }
  return Buffer.concat([Buffer.from(head), ext, masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), Buffer.alloc(length, 0x5a)]);
}

describe('FrameWatch', () => {
  const frames: Array<{ bytes: Buffer; midAfter: boolean }> = [
    { bytes: frame(true, 2, true, 5), midAfter: false },
    { bytes: frame(true, 2, false, 200), midAfter: false },
    { bytes: frame(true, 2, true, 70_000), midAfter: false },
    { bytes: frame(true, 2, true, 0), midAfter: false },
    { bytes: frame(false, 2, true, 10), midAfter: true }, // first fragment
    { bytes: frame(true, 9, true, 3), midAfter: true }, // a ping between fragments
    { bytes: frame(false, 0, true, 300), midAfter: true }, // continuation, more to come
    { bytes: frame(true, 0, true, 1), midAfter: false }, // final fragment
    { bytes: frame(true, 8, true, 2), midAfter: false }, // close
  ];

  it('is mid-frame exactly inside frames and fragmented messages, whatever the chunking', () => {
    for (const chunkSize of [1, 2, 3, 7, 13, 1000, 1 << 20]) {
      const watch = new FrameWatch();
      for (const { bytes, midAfter } of frames) {
        let alwaysMidInside = true;
        for (let at = 0; at < bytes.byteLength; at += chunkSize) {
          const end = Math.min(at + chunkSize, bytes.byteLength);
          watch.push(bytes.subarray(at, end));
          if (end < bytes.byteLength) alwaysMidInside &&= watch.midFrame;
        }
        expect(alwaysMidInside, `chunk ${chunkSize}, inside a ${bytes.byteLength}-byte frame`).toBe(true);
        expect(watch.midFrame, `chunk ${chunkSize}, after a ${bytes.byteLength}-byte frame`).toBe(midAfter);
      }
    }
  });

  it('follows frames that share a chunk, and tells its listener after every chunk', () => {
    const watch = new FrameWatch();
    const seen: boolean[] = [];
    watch.onChunk((mid) => seen.push(mid));
    const all = Buffer.concat(frames.map((f) => f.bytes));
    const cut = frames[0]!.bytes.byteLength + 3; // inside the second frame's header
    watch.push(all.subarray(0, cut));
    watch.push(all.subarray(cut));
    expect(seen).toEqual([true, false]);
    expect(watch.chunks).toBe(2);
  });
});
