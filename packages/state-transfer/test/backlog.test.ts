import { describe, expect, it } from 'vitest';
import { ReplicationBacklog, isStateTransferError } from '../src/index.js';

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
});
