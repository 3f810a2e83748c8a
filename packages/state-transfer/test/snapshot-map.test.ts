import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@tandem/core/internal';
import { SnapshotMap } from '../src/index.js';
import { randomWrites } from './helpers.js';

describe('SnapshotMap', () => {
  it('a snapshot yields exactly the contents at snapshot time while writes continue', () => {
    const rnd = mulberry32(7);
    const m = new SnapshotMap<string>({ buckets: 64 });
    for (let i = 0; i < 5000; i++) m.set(`k${i}`, `v${i}`);
    const expected = new Map(m.entries());
    const cursor = m.snapshot();
    expect(cursor.totalRecords).toBe(5000);
    const seen = new Map<string, string>();
    for (;;) {
      // Interleave writes, overwrites and deletes with reading the snapshot.
      randomWrites(m, rnd, 50, 7000);
      const recs = cursor.next(37);
      if (!recs) break;
      expect(recs.length % 2).toBe(0);
      for (let i = 0; i < recs.length; i += 2) {
        const k = recs[i] as string;
        expect(seen.has(k)).toBe(false);
        seen.set(k, recs[i + 1] as string);
      }
    }
    expect(seen.size).toBe(expected.size);
    for (const [k, v] of expected) expect(seen.get(k)).toBe(v);
    expect(m.openSnapshots).toBe(0);
  });

  it('two snapshots open at once each see their own instant', () => {
    const m = new SnapshotMap<number>({ buckets: 8 });
    m.set('a', 1);
    const s1 = m.snapshot();
    m.set('a', 2);
    m.set('b', 2);
    const s2 = m.snapshot();
    m.set('a', 3);
    m.delete('b');
    const all = (c: ReturnType<typeof m.snapshot>) => {
      const out: unknown[] = [];
      for (let r = c.next(1); r; r = c.next(1)) out.push([r[0], r[1]]);
      return Object.fromEntries(out as [string, number][]);
    };
    expect(all(s1)).toEqual({ a: 1 });
    expect(all(s2)).toEqual({ a: 2, b: 2 });
    expect(Object.fromEntries(m.entries())).toEqual({ a: 3 });
  });

  it('close() releases the copy-on-write bookkeeping', () => {
    const m = new SnapshotMap<number>();
    m.set('x', 1);
    const c = m.snapshot();
    expect(m.openSnapshots).toBe(1);
    c.close();
    expect(m.openSnapshots).toBe(0);
    expect(c.next(10)).toBeUndefined();
  });

  it('the digest depends on contents only, not on write order', () => {
    const a = new SnapshotMap<string>();
    const b = new SnapshotMap<string>({ buckets: 16 });
    for (let i = 0; i < 1000; i++) a.set(`k${i}`, `v${i}`);
    for (let i = 999; i >= 0; i--) b.set(`k${i}`, 'tmp');
    for (let i = 999; i >= 0; i--) b.set(`k${i}`, `v${i}`);
    b.set('extra', 'e');
    expect(b.digest()).not.toBe(a.digest());
    b.delete('extra');
    expect(b.digest()).toBe(a.digest());
    b.set('k5', 'changed');
    expect(b.digest()).not.toBe(a.digest());
  });

  it('the builder rejects malformed records', () => {
    const b = SnapshotMap.builder<string>();
    expect(() => b.add(['ok', 'v', 42, 'x'])).toThrow(TypeError);
    expect(() => b.add(['odd'])).toThrow(TypeError);
  });

  it('the builder (bulk insert) gives the same contents and digest as set(), and rejects a repeated key', () => {
    const rnd = mulberry32(7);
    const direct = new SnapshotMap<string | { n: number }>();
    const flat: unknown[] = [];
    for (let i = 0; i < 5000; i++) {
      const v = rnd() < 0.2 ? { n: i } : `value-${Math.floor(rnd() * 1e9)}`;
      direct.set(`k${i}`, v);
      flat.push(`k${i}`, v);
    }
    const b = SnapshotMap.builder<string | { n: number }>();
    b.add(flat.slice(0, 3000));
    b.add(flat.slice(3000));
    const built = b.finish();
    expect(built.size).toBe(direct.size);
    expect(built.digest()).toBe(direct.digest());
    expect(built.get('k4999')).toEqual(direct.get('k4999'));
    built.set('k1', 'changed');
    expect(built.digest()).not.toBe(direct.digest());
    const dup = SnapshotMap.builder<string>();
    expect(() => dup.add(['a', '1', 'b', '2', 'a', '3'])).toThrow(/repeat the key "a"/);
  });
});
