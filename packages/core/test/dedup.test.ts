import { describe, expect, it } from 'vitest';
import { DedupTable, isExpired, type DedupRecord } from '../src/dedup.js';

const rec = (seq: number, body: unknown): DedupRecord => ({ seq, epoch: 1, digest: `d${seq}`, time: 0, seed: 0, body });

describe('DedupTable', () => {
  it('evicts the oldest records beyond its capacity', () => {
    const t = new DedupTable(3);
    for (let i = 1; i <= 5; i++) t.record('c', i, rec(i, i));
    expect(t.size).toBe(3);
    expect(t.get('c', 1)).toBeUndefined();
    expect(t.get('c', 2)).toBeUndefined();
    expect(t.get('c', 5)?.body).toBe(5);
  });

  it('bounds the bytes of kept reply bodies: old records lose their body but stay recognised', () => {
    const big = 'x'.repeat(1000);
    const t = new DedupTable(1000, 3500);
    for (let i = 1; i <= 10; i++) t.record('c', i, rec(i, big));
    expect(t.size).toBe(10); // every request is still recognised (never applied twice)…
    expect(t.bodyBytes).toBeLessThanOrEqual(3500); // …but only ~3 bodies are kept
    expect(isExpired(t.get('c', 1)!)).toBe(true);
    expect(t.get('c', 1)!.digest).toBe('d1');
    expect(isExpired(t.get('c', 10)!)).toBe(false);
    expect(t.get('c', 10)!.body).toBe(big);
  });

  it('keeps the newest body even when it alone exceeds the bound', () => {
    const t = new DedupTable(10, 10);
    t.record('c', 1, rec(1, 'y'.repeat(100)));
    expect(isExpired(t.get('c', 1)!)).toBe(false);
  });

  it('an imported window (a state copy) strips to the same bound as the exporter', () => {
    const big = 'z'.repeat(1000);
    const a = new DedupTable(1000, 2500);
    for (let i = 1; i <= 6; i++) a.record('c', i, rec(i, big));
    const b = new DedupTable(1000, 2500);
    b.import(structuredClone(a.export()));
    expect(b.export().map(([k, r]) => [k, isExpired(r)])).toEqual(a.export().map(([k, r]) => [k, isExpired(r)]));
    expect(b.bodyBytes).toBe(a.bodyBytes);
  });

  it('error records are never stripped as expired', () => {
    const t = new DedupTable(10, 1);
    t.record('c', 1, { seq: 1, epoch: 1, digest: 'e', time: 0, seed: 0, error: { name: 'E', message: 'm' } });
    t.record('c', 2, rec(2, 'abc'));
    expect(isExpired(t.get('c', 1)!)).toBe(false);
  });
});
