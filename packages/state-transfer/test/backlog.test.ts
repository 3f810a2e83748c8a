import { describe, expect, it } from 'vitest';
import { ReplicationBacklog, isStateTransferError } from '../src/index.js';
import { unpack } from '../src/codec.js';

describe('ReplicationBacklog', () => {
  it('keeps the newest maxEntries entries and reads ranges', () => {
    const b = new ReplicationBacklog({ maxEntries: 100 });
    for (let s = 1; s <= 250; s++) b.append({ seq: s });
    expect(b.size).toBe(100);
    expect(b.firstSeq).toBe(151);
    expect(b.lastSeq).toBe(250);
    expect(b.read(200, 3).map((e) => e.seq)).toEqual([200, 201, 202]);
    expect(b.read(251, 10)).toEqual([]);
    expect(b.covers(150)).toBe(false);
  });

  it('an evicted seq is a BacklogOverrunError', () => {
    const b = new ReplicationBacklog({ maxEntries: 10 });
    for (let s = 1; s <= 30; s++) b.append({ seq: s });
    let err: unknown;
    try {
      b.read(5, 1);
    } catch (e) {
      err = e;
    }
    expect(isStateTransferError(err, 'BacklogOverrunError')).toBe(true);
  });

  it('bounds by bytes too', () => {
    const b = new ReplicationBacklog<{ seq: number; p: string }>({ maxEntries: 1000, maxBytes: 100, sizeOf: (e) => e.p.length });
    for (let s = 1; s <= 20; s++) b.append({ seq: s, p: 'x'.repeat(10) });
    expect(b.bytes).toBeLessThanOrEqual(100);
    expect(b.size).toBe(10);
  });

  it('rejects a seq that does not follow', () => {
    const b = new ReplicationBacklog();
    b.append({ seq: 1 });
    expect(() => b.append({ seq: 3 })).toThrow(RangeError);
  });

  it("'encoded' gives back equal entries, decoded afresh; 'objects' (the default) gives the same objects", () => {
    const enc = new ReplicationBacklog<{ seq: number; body: { op: string; key: string; n: number[] } }>({
      maxEntries: 10,
      storage: 'encoded',
    });
    const obj = new ReplicationBacklog<{ seq: number; body: { op: string; key: string; n: number[] } }>({ maxEntries: 10 });
    const entries = Array.from({ length: 5 }, (_, i) => ({ seq: i + 1, body: { op: 'set', key: `k${i}`, n: [i, i * 2] } }));
    for (const e of entries) {
      enc.append(e);
      obj.append(e);
    }
    expect(obj.storage).toBe('objects');
    expect(enc.read(2, 3)).toEqual(entries.slice(1, 4));
    expect(enc.read(2, 1)[0]).not.toBe(entries[1]);
    expect(obj.read(2, 1)[0]).toBe(entries[1]);
    // An entry changed after append is kept as it was (it was encoded on append).
    entries[0]!.body.key = 'changed';
    expect(enc.read(1, 1)[0]!.body.key).toBe('k0');
    // Without sizeOf, an encoded entry counts its encoded bytes toward maxBytes.
    expect(enc.bytes).toBeGreaterThan(5 * 10);
  });

  it('readPacked is read() as one msgpack array: stored bytes behind an array header for every header size', () => {
    for (const storage of ['encoded', 'objects'] as const) {
      const b = new ReplicationBacklog<{ seq: number; v: string }>({ maxEntries: 70_000, storage });
      // Across slabs (1 MiB each): some entries of 20 KiB.
      for (let seq = 1; seq <= 70_000; seq++) b.append({ seq, v: seq % 997 === 0 ? 'x'.repeat(20_000) : `v${seq}` });
      for (const [seq, max] of [
        [1, 1],
        [5, 15],
        [5, 16],
        [100, 65_535],
        [3, 65_536],
        [1, 70_000],
        [69_990, 100],
      ] as const) {
        expect(unpack(b.readPacked(seq, max)), `${storage} ${seq} ${max}`).toEqual(b.read(seq, max));
      }
      expect(unpack(b.readPacked(70_001, 10))).toEqual([]);
      b.append({ seq: 70_001, v: 'y' }); // evicts seq 1
      expect(() => b.readPacked(1, 1)).toThrow(/evicted|overrun|backlog/i);
    }
  });

  it("'encoded' keeps its slab memory bounded: slabs whose entries are all evicted are freed; big entries fit", () => {
    const b = new ReplicationBacklog<{ seq: number; p: string }>({ maxEntries: 1000, storage: 'encoded' });
    const p = 'x'.repeat(10_000); // ~10 KB per entry: ~100 per 1 MiB slab
    for (let s = 1; s <= 20_000; s++) b.append({ seq: s, p });
    expect(b.size).toBe(1000);
    expect(b.read(19_001, 2).map((e) => [e.seq, e.p.length])).toEqual([
      [19_001, 10_000],
      [19_002, 10_000],
    ]);
    // 1000 entries of ~10 KB need ~10 slabs; 20 000 appended would have needed ~200.
    expect(b.slabBytes).toBeLessThanOrEqual(12 * (1 << 20));
    const big = 'y'.repeat(3 << 20); // larger than a slab
    b.append({ seq: 20_001, p: big });
    b.append({ seq: 20_002, p: 'z' });
    expect(b.read(20_001, 2).map((e) => e.p.length)).toEqual([3 << 20, 1]);
    b.reset(50);
    expect(b.slabBytes).toBe(0);
    expect(b.firstSeq).toBe(51);
  });
});
