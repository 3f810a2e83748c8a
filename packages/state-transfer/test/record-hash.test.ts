import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32 } from '@tandem/core/internal';
import { SlabMap, SnapshotMap } from '../src/index.js';
import { combine, hashBytes, laneA, laneB, SEED_A, SEED_B, VALUE_SEED_A, VALUE_SEED_B } from '../src/maps/entry-hash.js';
import { decodeRecordSlices, framePackedSlice, PACKED_SLICE_OVERHEAD, type PackedSlice } from '../src/maps/record-codec.js';
import { recordRunHasher, useWasmRecordHash } from '../src/maps/record-hash.js';

const rootUrl = new URL('../../../', import.meta.url);

/** Random packed records: ASCII, multi-byte UTF-8 and (with `raw`) arbitrary bytes; empty keys and values; `unique` keys start with their index. */
function randomRecords(seed: number, count: number, raw = false, unique = false): Buffer {
  const rnd = mulberry32(seed);
  const text = (max: number): Buffer => {
    const n = Math.floor(rnd() * (max + 1));
    if (raw && rnd() < 0.2) return Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    let s = '';
    for (let i = 0; i < n; i++)
      s += rnd() < 0.1 ? String.fromCodePoint(0xa0 + Math.floor(rnd() * 0x2f000)) : String.fromCharCode(32 + Math.floor(rnd() * 95));
    return Buffer.from(s, 'utf8');
  };
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const k = unique ? Buffer.concat([Buffer.from(`${i}:`), text(40)]) : text(40);
    const v = rnd() < 0.05 ? text(3000) : text(130);
    const h = Buffer.alloc(8);
    h.writeUInt32LE(k.length, 0);
    h.writeUInt32LE(v.length, 4);
    parts.push(h, k, v);
  }
  return Buffer.concat(parts);
}

/** What entry-hash.ts computes for the same records: key lane-A hashes, offsets, lane sums, OR of bytes. */
function reference(b: Buffer, base: number): { hashes: number[]; offsets: number[]; sumA: number; sumB: number; high: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const hashes: number[] = [];
  const offsets: number[] = [];
  let sumA = 0;
  let sumB = 0;
  let high = 0;
  for (let o = 0; o < b.length; ) {
    const kAt = o + 8;
    const keyEnd = kAt + v.getUint32(o, true);
    const valueEnd = keyEnd + v.getUint32(o + 4, true);
    for (let i = kAt; i < valueEnd; i++) high |= b[i]!;
    hashBytes(v, kAt, keyEnd, SEED_A, SEED_B);
    const k1 = laneA;
    const k2 = laneB;
    hashBytes(v, keyEnd, valueEnd, VALUE_SEED_A, VALUE_SEED_B);
    combine(k1, k2);
    hashes.push(k1 | 0);
    offsets.push(base + o);
    sumA = (sumA + laneA) | 0;
    sumB = (sumB + laneB) | 0;
    o = valueEnd;
  }
  return { hashes, offsets, sumA, sumB, high };
}

function packedSlices(records: Buffer, perSlice: number): PackedSlice[] {
  const v = new DataView(records.buffer, records.byteOffset, records.length);
  const out: PackedSlice[] = [];
  for (let o = 0; o < records.length; ) {
    let e = o;
    let n = 0;
    while (e < records.length && n < perSlice) {
      e += 8 + v.getUint32(e, true) + v.getUint32(e + 4, true);
      n++;
    }
    const buf = Buffer.alloc(PACKED_SLICE_OVERHEAD + e - o);
    records.copy(buf, PACKED_SLICE_OVERHEAD, o, e);
    const end = framePackedSlice(buf, 0, n, e - o);
    out.push(decodeRecordSlices(buf.subarray(0, end))[0] as PackedSlice);
    o = e;
  }
  return out;
}

afterEach(() => useWasmRecordHash(true));

describe('record hashing in WebAssembly', () => {
  it("gives entry-hash.ts's results bit for bit: key hashes, offsets, digest lanes, high bits", () => {
    const hasher = recordRunHasher();
    expect(hasher, 'WebAssembly is available in Node 20').toBeDefined();
    for (const [seed, raw] of [
      [1, false],
      [2, true],
      [3, false],
    ] as const) {
      const records = randomRecords(seed, 500, raw);
      // At an odd offset of a larger buffer, with a base and running sums carried in.
      const host = Buffer.alloc(records.length + 13);
      records.copy(host, 7);
      const count = hasher!.run(host, 7, 7 + records.length, 1000, 0x7fffffff, -5);
      const ref = reference(records, 1000);
      expect(count).toBe(ref.hashes.length);
      expect(Array.from(hasher!.ints.subarray(hasher!.hashIndex, hasher!.hashIndex + count))).toEqual(ref.hashes);
      expect(Array.from(hasher!.ints.subarray(hasher!.atIndex, hasher!.atIndex + count))).toEqual(ref.offsets);
      expect(hasher!.sumA).toBe((0x7fffffff + ref.sumA) | 0);
      expect(hasher!.sumB).toBe((-5 + ref.sumB) | 0);
      expect((hasher!.high & 0x80808080) !== 0).toBe((ref.high & 0x80) !== 0);
    }
  });

  it('grows its memory for a run larger than it (records of 200 KiB)', () => {
    const hasher = recordRunHasher()!;
    const big = Buffer.alloc(8 + 4 + 200 * 1024, 0x61);
    big.writeUInt32LE(4, 0);
    big.writeUInt32LE(200 * 1024, 4);
    const run = Buffer.concat([big, big.subarray(0, 8 + 4 + 100), randomRecords(9, 50)]);
    run.writeUInt32LE(100, big.length + 4);
    const count = hasher.run(run, 0, run.length, 0, 0, 0);
    const ref = reference(run, 0);
    expect(count).toBe(ref.hashes.length);
    expect(hasher.sumA).toBe(ref.sumA);
    expect(hasher.sumB).toBe(ref.sumB);
  });

  it('returns -1 for bytes that are not whole records (truncated header, overrun, length overflow)', () => {
    const hasher = recordRunHasher()!;
    const good = randomRecords(4, 3);
    expect(hasher.run(good, 0, good.length, 0, 0, 0)).toBe(3);
    expect(hasher.run(good, 0, good.length - 1, 0, 0, 0)).toBe(-1);
    const header = Buffer.concat([good, Buffer.alloc(5)]);
    expect(hasher.run(header, 0, header.length, 0, 0, 0)).toBe(-1);
    const overflow = Buffer.from(good);
    overflow.writeUInt32LE(0xfffffff8, 0);
    expect(hasher.run(overflow, 0, overflow.length, 0, 0, 0)).toBe(-1);
  });

  it('a SlabMap builds the same map with and without it; both refuse bytes that are not UTF-8', () => {
    const records = randomRecords(5, 3000, false, true);
    const slices = packedSlices(records, 97);
    const expected = new SnapshotMap<string>();
    for (const s of slices) {
      const v = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
      for (let o = s.at; o < s.end; ) {
        const kAt = o + 8;
        const keyEnd = kAt + v.getUint32(o, true);
        const valueEnd = keyEnd + v.getUint32(o + 4, true);
        expected.set(
          Buffer.from(s.bytes.subarray(kAt, keyEnd)).toString('utf8'),
          Buffer.from(s.bytes.subarray(keyEnd, valueEnd)).toString('utf8'),
        );
        o = valueEnd;
      }
    }
    const build = (wasm: boolean): SlabMap => {
      useWasmRecordHash(wasm);
      const b = SlabMap.builder({ slabBytes: 64 * 1024 });
      for (const s of slices) b.addPacked(s);
      return b.finish();
    };
    const a = build(true);
    const b = build(false);
    expect(a.digest()).toBe(b.digest());
    expect(a.digest()).toBe(expected.digest());
    expect(new Map(a.entries())).toEqual(new Map(expected.entries()));
    const raw = randomRecords(6, 400, true, true);
    for (const wasm of [true, false]) {
      useWasmRecordHash(wasm);
      expect(() => {
        const bad = SlabMap.builder();
        for (const s of packedSlices(raw, 50)) bad.addPacked(s);
        bad.finish();
      }).toThrow(/not UTF-8/);
    }
  });

  it('the generated module is the compiled record-hash.wat (tools/scripts/gen-wasm.mjs is up to date)', async () => {
    const gen = (await import(pathToFileURL(fileURLToPath(new URL('tools/scripts/gen-wasm.mjs', rootUrl))).href)) as {
      WASM_SOURCES: { wat: string; out: string }[];
      generate(source: { wat: string; out: string }): Promise<string>;
    };
    const source = gen.WASM_SOURCES.find((s) => s.out.endsWith('record-hash-wasm.ts'))!;
    const text = await gen.generate(source);
    expect(readFileSync(new URL(source.out, rootUrl), 'utf8')).toBe(text);
  });
});
