import { describe, expect, it } from 'vitest';
import { kvRequestSchema, MAX_SCAN_LIMIT } from '../src/schema.js';
import { applyKv, initialKvState, kvService, type KvState } from '../src/service.js';
import type { KvRequest } from '../src/schema.js';

const A = 'client-a';
const B = 'client-b';
function run(state: KvState, req: KvRequest, time = 1000, clientId = A) {
  return applyKv(state, kvRequestSchema.parse(req), { time, clientId });
}
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('kv: key-value operations', () => {
  it('get of an absent key is null; set then get returns the value', () => {
    const s = initialKvState();
    expect(run(s, { op: 'get', key: 'k' })).toEqual({ kind: 'value', key: 'k', value: null });
    expect(run(s, { op: 'set', key: 'k', value: 'v1' })).toEqual({ kind: 'value', key: 'k', value: 'v1' });
    expect(run(s, { op: 'get', key: 'k' })).toEqual({ kind: 'value', key: 'k', value: 'v1' });
  });

  it('delete reports whether the key existed', () => {
    const s = initialKvState();
    run(s, { op: 'set', key: 'k', value: 'v' });
    expect(run(s, { op: 'delete', key: 'k' })).toEqual({ kind: 'deleted', key: 'k', existed: true });
    expect(run(s, { op: 'delete', key: 'k' })).toEqual({ kind: 'deleted', key: 'k', existed: false });
    expect(run(s, { op: 'get', key: 'k' })).toMatchObject({ value: null });
  });

  it('compare-and-set writes only when the current value matches (null = absent)', () => {
    const s = initialKvState();
    expect(run(s, { op: 'cas', key: 'k', expected: 'x', value: 'a' })).toEqual({ kind: 'cas', key: 'k', ok: false, value: null });
    expect(run(s, { op: 'cas', key: 'k', expected: null, value: 'a' })).toEqual({ kind: 'cas', key: 'k', ok: true, value: 'a' });
    expect(run(s, { op: 'cas', key: 'k', expected: null, value: 'b' })).toEqual({ kind: 'cas', key: 'k', ok: false, value: 'a' });
    expect(run(s, { op: 'cas', key: 'k', expected: 'a', value: 'b' })).toEqual({ kind: 'cas', key: 'k', ok: true, value: 'b' });
  });

  it('append concatenates; incr counts and refuses non-integers', () => {
    const s = initialKvState();
    run(s, { op: 'append', key: 'l', value: 'a' });
    expect(run(s, { op: 'append', key: 'l', value: 'b' })).toMatchObject({ value: 'ab' });
    expect(run(s, { op: 'incr', key: 'n' })).toMatchObject({ value: '1' });
    expect(run(s, { op: 'incr', key: 'n', by: 41 })).toMatchObject({ value: '42' });
    expect(run(s, { op: 'incr', key: 'n', by: -50 })).toMatchObject({ value: '-8' });
    expect(thrown(() => run(s, { op: 'incr', key: 'l' })).name).toBe('NotAnIntegerError');
  });

  it('scan returns keys with the prefix in order, bounded, with paging', () => {
    const s = initialKvState();
    for (const k of ['b/3', 'a/1', 'b/1', 'b/2', 'c/1']) run(s, { op: 'set', key: k, value: k.toUpperCase() });
    expect(run(s, { op: 'scan', prefix: 'b/' })).toEqual({
      kind: 'scan',
      entries: [
        ['b/1', 'B/1'],
        ['b/2', 'B/2'],
        ['b/3', 'B/3'],
      ],
      more: false,
    });
    expect(run(s, { op: 'scan', prefix: 'b/', limit: 2 })).toEqual({
      kind: 'scan',
      entries: [
        ['b/1', 'B/1'],
        ['b/2', 'B/2'],
      ],
      more: true,
    });
    expect(run(s, { op: 'scan', prefix: 'b/', after: 'b/2' })).toEqual({ kind: 'scan', entries: [['b/3', 'B/3']], more: false });
    expect(kvRequestSchema.safeParse({ op: 'scan', prefix: '', limit: MAX_SCAN_LIMIT + 1 }).success).toBe(false);
  });

  it('the request schema refuses unknown ops, missing fields and extra fields', () => {
    expect(kvRequestSchema.safeParse({ op: 'drop-table' }).success).toBe(false);
    expect(kvRequestSchema.safeParse({ op: 'set', key: 'k' }).success).toBe(false);
    expect(kvRequestSchema.safeParse({ op: 'get', key: 'k', extra: 1 }).success).toBe(false);
    expect(kvRequestSchema.safeParse({ op: 'get', key: '' }).success).toBe(false);
    expect(kvRequestSchema.safeParse({ op: 'acquire', name: 'x', ttlMs: 0 }).success).toBe(false);
  });
});

describe('kv: lock/lease arbiter', () => {
  it('grants a free lock with a fencing token; another owner sees it held until expiry', () => {
    const s = initialKvState();
    const g = run(s, { op: 'acquire', name: 'printer', ttlMs: 500 }, 1000, A);
    expect(g).toEqual({ kind: 'granted', name: 'printer', token: 1, owner: A, expiresAt: 1500 });
    expect(run(s, { op: 'acquire', name: 'printer', ttlMs: 500 }, 1200, B)).toEqual({
      kind: 'held',
      name: 'printer',
      owner: A,
      until: 1500,
    });
  });

  it('a lease expires at ctx.time ≥ expiresAt and the next grant has a larger token', () => {
    const s = initialKvState();
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1000, A);
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1099, B)).toMatchObject({ kind: 'held' });
    const g2 = run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1100, B);
    expect(g2).toEqual({ kind: 'granted', name: 'x', token: 2, owner: B, expiresAt: 1200 });
  });

  it('re-acquire by the holder keeps the token and extends the lease; renew extends; release frees', () => {
    const s = initialKvState();
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1000, A);
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1050, A)).toMatchObject({ kind: 'granted', token: 1, expiresAt: 1150 });
    expect(run(s, { op: 'renew', name: 'x', token: 1, ttlMs: 300 }, 1140, A)).toEqual({
      kind: 'renewed',
      name: 'x',
      token: 1,
      expiresAt: 1440,
    });
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1400, B)).toMatchObject({ kind: 'held', until: 1440 });
    expect(run(s, { op: 'release', name: 'x', token: 1 }, 1410, A)).toEqual({ kind: 'released', name: 'x', released: true });
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1411, B)).toMatchObject({ kind: 'granted', token: 2, owner: B });
  });

  it('renew after expiry fails with LockLostError; release with a stale token does nothing', () => {
    const s = initialKvState();
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1000, A);
    expect(thrown(() => run(s, { op: 'renew', name: 'x', token: 1, ttlMs: 100 }, 1100, A)).name).toBe('LockLostError');
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1200, B);
    expect(run(s, { op: 'release', name: 'x', token: 1 }, 1210, A)).toEqual({ kind: 'released', name: 'x', released: false });
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1220, A)).toMatchObject({ kind: 'held', owner: B });
  });

  it('fenced writes succeed only with the current holder’s token', () => {
    const s = initialKvState();
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1000, A); // token 1
    expect(run(s, { op: 'set', key: 'k', value: 'by-a', fence: { lock: 'x', token: 1 } }, 1050, A)).toMatchObject({ value: 'by-a' });
    run(s, { op: 'acquire', name: 'x', ttlMs: 100 }, 1200, B); // A expired; token 2
    const err = thrown(() => run(s, { op: 'set', key: 'k', value: 'late-a', fence: { lock: 'x', token: 1 } }, 1210, A));
    expect(err.name).toBe('FencingError');
    expect(run(s, { op: 'get', key: 'k' })).toMatchObject({ value: 'by-a' });
    expect(run(s, { op: 'cas', key: 'k', expected: 'by-a', value: 'by-b', fence: { lock: 'x', token: 2 } }, 1220, B)).toMatchObject({
      ok: true,
    });
  });

  it('an explicit owner lets separate clients share a grant', () => {
    const s = initialKvState();
    run(s, { op: 'acquire', name: 'x', ttlMs: 100, owner: 'job-7' }, 1000, A);
    expect(run(s, { op: 'acquire', name: 'x', ttlMs: 100, owner: 'job-7' }, 1010, B)).toMatchObject({ kind: 'granted', token: 1 });
  });
});

describe('kv: determinism and snapshots', () => {
  const script: [KvRequest, number, string][] = [
    [{ op: 'set', key: 'a', value: '1' }, 10, A],
    [{ op: 'acquire', name: 'l1', ttlMs: 50 }, 20, A],
    [{ op: 'acquire', name: 'l2', ttlMs: 500 }, 30, B],
    [{ op: 'incr', key: 'n' }, 40, B],
    [{ op: 'acquire', name: 'l1', ttlMs: 50 }, 100, B],
    [{ op: 'append', key: 'a', value: '2' }, 110, A],
  ];

  it('the same requests with the same ctx give the same replies and state digest', () => {
    const s1 = kvService.initialState();
    const s2 = kvService.initialState();
    const r1 = script.map(([r, t, c]) => applyKv(s1, r, { time: t, clientId: c }));
    const r2 = script.map(([r, t, c]) => applyKv(s2, r, { time: t, clientId: c }));
    expect(r2).toEqual(r1);
    expect(JSON.stringify(kvService.snapshot(s2))).toBe(JSON.stringify(kvService.snapshot(s1)));
  });

  it('snapshot → restore preserves data, leases and the token counter', () => {
    const s = kvService.initialState();
    for (const [r, t, c] of script) applyKv(s, r, { time: t, clientId: c });
    const restored = kvService.restore(structuredClone(kvService.snapshot(s)));
    expect(kvService.snapshot(restored)).toEqual(kvService.snapshot(s));
    // the restored copy continues identically: the next grant gets the next token
    expect(applyKv(restored, { op: 'acquire', name: 'l3', ttlMs: 10 }, { time: 200, clientId: A })).toMatchObject({ token: 4 });
    expect(() => kvService.restore({ nonsense: true })).toThrow(TypeError);
  });
});
