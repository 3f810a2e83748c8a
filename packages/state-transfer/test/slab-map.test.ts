import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@tandem/core/internal';
import { createMemoryNetwork } from '@tandem/transport';
import {
  ServiceHost,
  SlabMap,
  slabMapSupport,
  SnapshotMap,
  StateTransferClient,
  StateTransferServer,
  decodeMessage,
  encodeMessage,
  type HostedService,
  type PackedSnapshotCursor,
} from '../src/index.js';
import {
  decodeRecordSlices,
  framePackedSlice,
  isPackedSlice,
  PACKED_SLICE_OVERHEAD,
  sliceItems,
  type PackedSlice,
} from '../src/maps/record-codec.js';
import { SlabRunCursor } from '../src/maps/slab-cursor.js';
import { randomWrites, testEnv } from './helpers.js';

/** Everything a cursor yields as packed slices (framed, then decoded as a joiner would). */
function drainPacked(cursor: PackedSnapshotCursor, room = 4096, between?: () => void): PackedSlice[] {
  const slices: PackedSlice[] = [];
  for (;;) {
    between?.();
    const buf = Buffer.alloc(PACKED_SLICE_OVERHEAD + Math.max(room, 1 << 20));
    const r = cursor.nextPacked(buf, PACKED_SLICE_OVERHEAD, room);
    if (!r) return slices;
    if (r.records === 0) {
      room = r.needBytes!;
      continue;
    }
    const end = framePackedSlice(buf, 0, r.records, r.bytes);
    const [s] = decodeRecordSlices(buf.subarray(0, end));
    if (!s || !isPackedSlice(s)) throw new Error('not a packed slice');
    slices.push(s);
  }
}

function pairs(items: unknown[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < items.length; i += 2) {
    expect(m.has(items[i] as string)).toBe(false);
    m.set(items[i] as string, items[i + 1] as string);
  }
  return m;
}

describe('SlabMap', () => {
  it('behaves as a Map of strings under random sets, overwrites and deletes (unicode, empty, larger than a slab)', () => {
    const rnd = mulberry32(3);
    const m = new SlabMap({ slabBytes: 64 * 1024 });
    const ref = new Map<string, string>();
    const odd = ['', 'é', 'Ā', '日本', '😀', 'a\u0000b', 'x'.repeat(100_000)];
    for (let i = 0; i < 40_000; i++) {
      const k = rnd() < 0.05 ? odd[Math.floor(rnd() * odd.length)]! + (i % 7) : `k${Math.floor(rnd() * 3000)}`;
      const r = rnd();
      if (r < 0.6) {
        const v = rnd() < 0.02 ? odd[Math.floor(rnd() * odd.length)]! : `v${i}`;
        m.set(k, v);
        ref.set(k, v);
      } else if (r < 0.8) {
        expect(m.delete(k)).toBe(ref.delete(k));
      } else {
        expect(m.get(k)).toBe(ref.get(k));
        expect(m.has(k)).toBe(ref.has(k));
      }
    }
    expect(m.size).toBe(ref.size);
    expect(new Map(m.entries())).toEqual(ref);
    // Same content, same digest as a SnapshotMap (and independent of the order of writes).
    const s = new SnapshotMap<string>();
    for (const [k, v] of [...ref].reverse()) s.set(k, v);
    expect(m.digest()).toBe(s.digest());
    expect(() => m.set(1 as unknown as string, 'x')).toThrow(TypeError);
    expect(() => m.set('k', {} as unknown as string)).toThrow(TypeError);
    expect(() => new SlabMap({ slabBytes: 100 })).toThrow(RangeError);
  });

  it('grows its index a few slots per write (no whole rehash): every key stays reachable while it moves', () => {
    const rnd = mulberry32(17);
    const m = new SlabMap({ slabBytes: 64 * 1024 });
    const ref = new Map<string, string>();
    let growths = 0;
    let checkedWhileGrowing = 0;
    for (let i = 0; i < 30_000; i++) {
      const k = `k${Math.floor(rnd() * 20_000)}`;
      const was = m.indexGrowing;
      if (rnd() < 0.8) {
        m.set(k, `v${i}`);
        ref.set(k, `v${i}`);
      } else expect(m.delete(k)).toBe(ref.delete(k));
      if (!was && m.indexGrowing) growths++;
      if (m.indexGrowing && i % 7 === 0) {
        // While the old table is being emptied: reads, the size and a full iteration see every key once.
        const probe = `k${Math.floor(rnd() * 20_000)}`;
        expect(m.get(probe)).toBe(ref.get(probe));
        expect(m.size).toBe(ref.size);
        if (checkedWhileGrowing++ % 50 === 0) expect(new Map(m.entries())).toEqual(ref);
      }
    }
    // 1024 slots at first, 60 % load: growth to 2048, 4096, 8192, 16 384, 32 768 slots.
    expect(growths).toBeGreaterThanOrEqual(4);
    expect(checkedWhileGrowing).toBeGreaterThan(50);
    expect(new Map(m.entries())).toEqual(ref);
    const s = new SnapshotMap<string>();
    for (const [k, v] of ref) s.set(k, v);
    expect(m.digest()).toBe(s.digest());
  });

  it('a snapshot yields exactly the contents when it was opened, item by item and packed, while writes continue', () => {
    const rnd = mulberry32(11);
    const m = new SlabMap({ slabBytes: 64 * 1024 });
    for (let i = 0; i < 20_000; i++) m.set(`k${i}`, `v${i}`.repeat(1 + (i % 5)));
    for (let i = 0; i < 3000; i++) m.delete(`k${Math.floor(rnd() * 20_000)}`);
    const expected = new Map(m.entries());
    const digest = m.digest();
    const writes = (): void => randomWrites(m, rnd, 40, 25_000);
    const items = m.snapshot();
    const packed = m.snapshot();
    expect(m.openSnapshots).toBe(2);
    expect(items.totalRecords).toBe(expected.size);
    const seen: unknown[] = [];
    for (let recs = items.next(37); recs; recs = items.next(37)) {
      seen.push(...recs);
      writes();
    }
    expect(pairs(seen)).toEqual(expected);
    const slices = drainPacked(packed, 3000, writes);
    const fromPacked = pairs(slices.flatMap((s) => sliceItems(s)));
    expect(fromPacked).toEqual(expected);
    // A joiner building from those packed slices has the snapshot's content and digest.
    const b = SlabMap.builder();
    for (const s of slices) b.addPacked(s);
    const built = b.finish();
    expect(built.digest()).toBe(digest);
    expect(new Map(built.entries())).toEqual(expected);
    expect(m.openSnapshots).toBe(0);
  });

  it('shared: true keeps slabs in shared memory; a cursor rebuilt from share() elsewhere yields the snapshot', () => {
    const rnd = mulberry32(5);
    const m = new SlabMap({ slabBytes: 64 * 1024, shared: true });
    for (let i = 0; i < 10_000; i++) m.set(`k${i}`, `v${i}`.repeat(1 + (i % 4)));
    for (let i = 0; i < 2000; i++) m.delete(`k${Math.floor(rnd() * 10_000)}`);
    const expected = new Map(m.entries());
    const cursor = m.snapshot();
    const plan = cursor.share();
    expect(plan).toBeDefined();
    expect(plan!.totalRecords).toBe(expected.size);
    expect(plan!.slabs.length).toBeGreaterThan(1);
    for (const s of plan!.slabs) expect(s.buffer).toBeInstanceOf(SharedArrayBuffer);
    // The reading side (a worker): its own Buffers over the same memory, skip lists asked per slab,
    // while the owner keeps overwriting and deleting (records it kills now are still emitted).
    const remote = new SlabRunCursor(
      plan!.slabs.map((s) => ({ buf: Buffer.from(s.buffer, s.byteOffset, s.byteLength), end: s.end })),
      plan!.totalRecords,
      (i) => cursor.skipsOf(i),
      () => cursor.close(),
    );
    const slices = drainPacked(remote, 2500, () => randomWrites(m, rnd, 30, 12_000));
    expect(pairs(slices.flatMap((x) => sliceItems(x)))).toEqual(expected);
    expect(m.openSnapshots).toBe(0);
    // Not shared memory: nothing to share.
    const plain = new SlabMap();
    plain.set('a', 'b');
    const c = plain.snapshot();
    expect(c.share()).toBeUndefined();
    c.close();
  });

  it('a cursor over shared slabs writes the same bytes as over plain ones, at every alignment of the target', () => {
    // (From shared memory V8 copies byte by byte unless source and target are aligned alike, so the
    // cursor stages misaligned runs; the bytes must not change.)
    const rnd = mulberry32(21);
    const shared = new SlabMap({ slabBytes: 64 * 1024, shared: true });
    const plain = new SlabMap({ slabBytes: 64 * 1024 });
    for (let i = 0; i < 6000; i++) {
      const k = `k${Math.floor(rnd() * 5000)}`;
      const v = 'x'.repeat(Math.floor(rnd() * 300)) + String(i);
      shared.set(k, v);
      plain.set(k, v);
    }
    const drain = (m: SlabMap): Buffer => {
      const cursor = m.snapshot();
      const out: Buffer[] = [];
      const target = Buffer.alloc(40_000);
      for (let i = 0; ; i++) {
        const at = 1 + (i % 8);
        const r = cursor.nextPacked(target, at, 300 + ((i * 997) % 20_000));
        if (!r) break;
        out.push(Buffer.from(target.subarray(at, at + r.bytes)));
      }
      return Buffer.concat(out);
    };
    const a = drain(shared);
    expect(a.length).toBe(shared.liveBytes);
    expect(a.equals(drain(plain))).toBe(true);
  });

  it('compacts half-dead slabs a little per write: memory stays bounded under churn, contents intact', () => {
    const rnd = mulberry32(5);
    const m = new SlabMap({ slabBytes: 64 * 1024 });
    const ref = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      m.set(`k${i}`, `value-${i}`);
      ref.set(`k${i}`, `value-${i}`);
    }
    let maxSlab = 0;
    for (let i = 0; i < 300_000; i++) {
      const k = `k${Math.floor(rnd() * 2000)}`;
      const v = `value-${i}`;
      m.set(k, v);
      ref.set(k, v);
      maxSlab = Math.max(maxSlab, m.slabBytes);
    }
    // ~300 000 × 20 B written in all (≈ 6 MB); live data ≈ 40 KB.
    expect(m.liveBytes).toBeLessThan(64 * 1024);
    expect(maxSlab).toBeLessThanOrEqual(8 * 64 * 1024);
    expect(new Map(m.entries())).toEqual(ref);
    const s = new SnapshotMap<string>();
    for (const [k, v] of ref) s.set(k, v);
    expect(m.digest()).toBe(s.digest());
  });

  it('a snapshot opened in the middle of a compaction sees each record once; compaction resumes after it closes', () => {
    const m = new SlabMap({ slabBytes: 64 * 1024 });
    for (let i = 0; i < 6000; i++) m.set(`k${i}`, `v${i}`);
    // Kill most of the first slabs, then write a little: compaction starts moving their live records.
    for (let i = 0; i < 6000; i++) if (i % 4 !== 0) m.delete(`k${i}`);
    for (let i = 0; i < 30; i++) m.set(`x${i}`, 'y');
    const expected = new Map(m.entries());
    const before = m.slabBytes;
    const cursor = m.snapshot();
    for (let i = 0; i < 3000; i++) m.set(`during${i}`, 'z'); // no compaction while open
    expect(m.slabBytes).toBeGreaterThanOrEqual(before);
    expect(pairs(drainPacked(cursor).flatMap((s) => sliceItems(s)))).toEqual(expected);
    m.compact();
    expect(m.slabBytes).toBeLessThan(before + 3000 * 30);
    expect(m.size).toBe(expected.size + 3000);
    for (const [k, v] of expected) expect(m.get(k)).toBe(v);
  });

  it('refuses a packed snapshot with a repeated key or bytes that are not UTF-8 (typed errors)', () => {
    const rec = (k: Buffer, v: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(k.length, 0);
      h.writeUInt32LE(v.length, 4);
      return Buffer.concat([h, k, v]);
    };
    const slice = (...recs: Buffer[]): PackedSlice => {
      const body = Buffer.concat(recs);
      const buf = Buffer.alloc(PACKED_SLICE_OVERHEAD + body.length);
      body.copy(buf, PACKED_SLICE_OVERHEAD);
      const end = framePackedSlice(buf, 0, recs.length, body.length);
      const [s] = decodeRecordSlices(buf.subarray(0, end));
      return s as PackedSlice;
    };
    const dup = slice(rec(Buffer.from('a'), Buffer.from('1')), rec(Buffer.from('a'), Buffer.from('2')));
    // Found when the queued records enter the index (at the latest when the builder finishes).
    expect(() => {
      const b = SlabMap.builder();
      b.addPacked(dup);
      b.finish();
    }).toThrow(/repeat the key/);
    const bad = slice(rec(Buffer.from('k'), Buffer.from([0x61, 0xff, 0xfe, 0x62])));
    expect(() => SlabMap.builder().addPacked(bad)).toThrow(/not UTF-8/);
    expect(() => sliceItems(bad)).toThrow(RangeError);
    // Framing: a record overrunning the slice, or lengths that do not add up to the frame.
    const good = Buffer.alloc(PACKED_SLICE_OVERHEAD + 12);
    const r = rec(Buffer.from('ab'), Buffer.from('cd'));
    r.copy(good, PACKED_SLICE_OVERHEAD);
    framePackedSlice(good, 0, 1, r.length);
    expect(decodeRecordSlices(good)).toHaveLength(1);
    const long = Buffer.from(good);
    long.writeUInt32LE(500, PACKED_SLICE_OVERHEAD + 4);
    expect(() => decodeRecordSlices(long)).toThrow(RangeError);
    const count = Buffer.from(good);
    count.writeUInt32LE(2, 6);
    expect(() => decodeRecordSlices(count)).toThrow(RangeError);
  });

  it('streams over a connection as packed slices while the primary keeps writing; digests equal', async () => {
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const service = (): HostedService<SlabMap, { key: string; value: string }, string> => ({
      name: 'slab-kv',
      initialState: () => new SlabMap({ slabBytes: 256 * 1024 }),
      apply: (state, req) => {
        state.set(req.key, req.value);
        return 'OK';
      },
      ...slabMapSupport({ slabBytes: 256 * 1024 }),
    });
    const primary = new ServiceHost({ service: service(), env });
    for (let i = 0; i < 50_000; i++) primary.execute({ key: `key:${i}`, value: `value-${i}-`.padEnd(60, 'x') });
    const server = new StateTransferServer({ env, source: primary, chunkBytes: 128 * 1024, sliceBytes: 16 * 1024, follow: true });
    const address = await server.listen('mem://slab');
    // What travels: a raw joiner announcing packed records gets kind-2 slices.
    const raw = await network.dial(address);
    await raw.send(
      encodeMessage({
        t: 'open',
        service: 'slab-kv',
        nodeId: 'raw',
        version: 1,
        formats: [{ format: 'records', minVersion: 1 }],
        window: 2,
        encodings: ['text-slices', 'packed-records'],
      }),
    );
    for await (const bytes of raw) {
      const m = decodeMessage(bytes);
      if (m.t !== 'chunk') continue;
      expect(decodeRecordSlices(m.data).every(isPackedSlice)).toBe(true);
      break;
    }
    raw.abort();
    let stop = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        for (let i = 0; i < 100; i++, n++) primary.execute({ key: `key:${(n * 7919) % 60_000}`, value: `w${n}` });
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    const joiner = new ServiceHost({ service: service(), env });
    const client = new StateTransferClient({ env, service: service(), sink: joiner, nodeId: 'joiner', address, follow: true });
    const result = await client.run();
    expect(result.records).toBeGreaterThanOrEqual(50_000);
    expect(n).toBeGreaterThan(0);
    stop = true;
    await load;
    const t0 = Date.now();
    while (joiner.seq !== primary.seq && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
    expect(joiner.digest()).toBe(primary.digest());
    expect(new Map(joiner.state.entries())).toEqual(new Map(primary.state.entries()));
    await client.close();
    await server.close();
    expect(primary.state.openSnapshots).toBe(0);
  });
});
