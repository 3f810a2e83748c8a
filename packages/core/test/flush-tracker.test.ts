import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { FlushTracker } from '../src/flush-tracker.js';
import type { Entry } from '../src/messages.js';

const cfg = resolveConfig({ flushMaxEntries: 3, ackTimeoutMs: 10, maxRetransmits: 2, flushIntervalMs: 5, heartbeatTimeoutMs: 40 });
const entry = (seq: number): Entry => ({ seq, epoch: 1, clientId: 'c', requestId: seq, body: null, time: 0, seed: 0, digest: 'd' });

describe('FlushTracker', () => {
  it('flushes unflushed entries, re-sends all unacknowledged after ackTimeoutMs, trims on ack, renews the lease', () => {
    const t = new FlushTracker(cfg, 36);
    t.reset(0, 0);
    expect(t.leaseValid(35)).toBe(true);
    expect(t.leaseValid(36)).toBe(false);
    t.append(entry(1));
    t.append(entry(2));
    expect(t.countFlushDue).toBe(false);
    t.append(entry(3));
    expect(t.countFlushDue).toBe(true);
    const p1 = t.plan(1);
    expect(p1).toMatchObject({ kind: 'flush', retransmit: false });
    if (p1.kind !== 'flush') throw new Error();
    expect(p1.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    t.sent(p1.flushId, 1);
    t.append(entry(4));
    const p2 = t.plan(5); // not yet timed out: only the new entry
    if (p2.kind !== 'flush') throw new Error();
    expect(p2.entries.map((e) => e.seq)).toEqual([4]);
    t.sent(p2.flushId, 5);
    const p3 = t.plan(11); // the first flush waited ackTimeoutMs: re-send everything unacknowledged
    expect(p3).toMatchObject({ kind: 'flush', retransmit: true });
    if (p3.kind !== 'flush') throw new Error();
    expect(p3.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    t.sent(p3.flushId, 11);
    t.acked({ t: 'flushAck', epoch: 1, flushId: p2.flushId, upToSeq: 4, role: 'backup' }, 0);
    expect(t.log.size).toBe(0);
    expect(t.leaseValid(5 + 35)).toBe(true); // lease from the acknowledged flush's send time
    expect(t.leaseValid(5 + 36)).toBe(false);
    expect(t.retransmits).toBe(0);
  });

  it('declares the peer faulty after maxRetransmits re-sends, counting re-sends made (not elapsed time)', () => {
    const t = new FlushTracker(cfg, 36);
    t.reset(0, 0);
    t.append(entry(1));
    const p = t.plan(0);
    if (p.kind !== 'flush') throw new Error();
    t.sent(p.flushId, 0);
    // a long pause: one re-send, not "faulty" at once
    expect(t.plan(1000)).toMatchObject({ kind: 'flush', retransmit: true });
    expect(t.plan(1005)).toMatchObject({ kind: 'flush', retransmit: false }); // within ackTimeoutMs of the re-send
    expect(t.plan(1010)).toMatchObject({ kind: 'flush', retransmit: true });
    expect(t.plan(1020)).toEqual({ kind: 'faulty' });
  });
});

describe('FlushTracker gap recovery', () => {
  it('re-sends from the acknowledged seq when an ack shows an earlier flush was lost', () => {
    const t = new FlushTracker(cfg, 36);
    t.reset(0, 0);
    t.append(entry(1));
    t.append(entry(2));
    const lost = t.plan(0);
    if (lost.kind !== 'flush') throw new Error();
    t.sent(lost.flushId, 0); // carries 1, 2 — and never arrives
    t.append(entry(3));
    const second = t.plan(1);
    if (second.kind !== 'flush') throw new Error();
    expect(second.entries.map((e) => e.seq)).toEqual([3]);
    t.sent(second.flushId, 1);
    // the backup got only seq 3, cannot apply it, acknowledges upToSeq 0
    t.acked({ t: 'flushAck', epoch: 1, flushId: second.flushId, upToSeq: 0, role: 'backup' }, 0);
    const again = t.plan(2);
    if (again.kind !== 'flush') throw new Error();
    expect(again.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
  });
});

describe('FlushTracker failure detector (silence, not retransmissions alone)', () => {
  const flushAt = (t: FlushTracker, now: number): ReturnType<FlushTracker['plan']> => {
    const p = t.plan(now);
    if (p.kind === 'flush') t.sent(p.flushId, now);
    return p;
  };
  it('a backup that acknowledges late — after maxRetransmits re-sends but within faultyAfterMs — is slow, not faulty', () => {
    const t = new FlushTracker(cfg, 36, Number.POSITIVE_INFINITY, 100);
    t.reset(0, 0);
    t.append(entry(1));
    flushAt(t, 0);
    for (const now of [10, 20, 30, 40, 50, 60, 70, 80, 90]) expect(flushAt(t, now)).toMatchObject({ kind: 'flush' });
    expect(t.retransmits).toBeGreaterThan(cfg.maxRetransmits); // the old rule would have said "faulty" at 30
    t.acked({ t: 'flushAck', epoch: 1, flushId: 1, upToSeq: 1, role: 'backup' }, 95);
    expect(t.silentTooLong(150)).toBe(false);
    expect(flushAt(t, 150)).toMatchObject({ kind: 'flush' });
  });

  it('a backup silent for faultyAfterMs with the re-sends made is faulty', () => {
    const t = new FlushTracker(cfg, 36, Number.POSITIVE_INFINITY, 100);
    t.reset(0, 0);
    t.append(entry(1));
    flushAt(t, 0);
    let verdict: ReturnType<FlushTracker['plan']> | undefined;
    for (let now = 10; now <= 200 && verdict?.kind !== 'faulty'; now += 10) verdict = flushAt(t, now);
    expect(verdict).toEqual({ kind: 'faulty' });
    expect(t.silentTooLong(100)).toBe(true);
  });

  it('a primary paused longer than faultyAfterMs still makes its re-sends before blaming the backup', () => {
    const t = new FlushTracker(cfg, 36, Number.POSITIVE_INFINITY, 100);
    t.reset(0, 0);
    t.append(entry(1));
    flushAt(t, 0);
    expect(flushAt(t, 5000)).toMatchObject({ kind: 'flush', retransmit: true });
    expect(flushAt(t, 5005)).toMatchObject({ kind: 'flush', retransmit: false });
    expect(flushAt(t, 5010)).toMatchObject({ kind: 'flush', retransmit: true });
    expect(flushAt(t, 5020)).toEqual({ kind: 'faulty' });
  });

  it('flow control: new requests wait once half of maxUnackedEntries are unacknowledged', () => {
    const small = resolveConfig({ ...cfg, maxUnackedEntries: 10 });
    const t = new FlushTracker(small, 36);
    t.reset(0, 0);
    for (let s = 1; s <= 4; s++) t.append(entry(s));
    expect(t.flowControlled).toBe(false);
    t.append(entry(5));
    expect(t.flowControlled).toBe(true);
    t.acked({ t: 'flushAck', epoch: 1, flushId: 0, upToSeq: 3, role: 'backup' }, 1);
    expect(t.flowControlled).toBe(false);
  });
});
