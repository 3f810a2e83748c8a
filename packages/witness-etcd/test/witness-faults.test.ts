// EtcdWitness when etcd is unreachable: paused (SIGSTOP: connections hang) or stopped (SIGKILL: refused).
import type { WitnessRequest } from '@tandem/core';
import { type EtcdServer, startEtcd } from '@tandem/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdWitness, isWitnessEtcdError, WitnessUnavailableError } from '../src/index.js';
import { startDelayProxy } from './delay-proxy.js';
import { memoryLogger, requireEtcd, sleep, until } from './etcd-harness.js';

const haveEtcd = requireEtcd('witness-etcd faults');

const ask = (nodeId: string, epoch: number, reason: WitnessRequest['reason'] = 'takeover'): WitnessRequest => ({ nodeId, epoch, reason });

/** Samples both witnesses every few ms: they must never both hold a grant at the same instant. */
function exclusionMonitor(a: EtcdWitness, b: EtcdWitness): { stop(): { samples: number; both: number } } {
  let samples = 0;
  let both = 0;
  const timer = setInterval(() => {
    samples++;
    if (a.holds() && b.holds()) both++;
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return { samples, both };
    },
  };
}

describe.skipIf(!haveEtcd)('EtcdWitness with etcd unreachable', () => {
  let etcd: EtcdServer;
  const open: EtcdWitness[] = [];
  let n = 0;
  const pair = (leaseTtlS = 2) => {
    const prefix = `/tandem/test/faults-${++n}`;
    const logA = memoryLogger();
    const a = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS, dialTimeoutMs: 300, log: logA });
    const b = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS, dialTimeoutMs: 300, log: memoryLogger() });
    open.push(a, b);
    return { a, b, logA };
  };

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async () => {
    try {
      etcd.resume();
    } catch {
      /* not running */
    }
    await Promise.all(open.splice(0).map((w) => w.close()));
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('etcd paused: the holder stops holding before etcd could expire its lease; the other side wins only after it expired', async () => {
    const { a, b, logA } = pair(2);
    const monitor = exclusionMonitor(a, b);
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    await sleep(600); // a keepalive or two
    expect(a.holds()).toBe(true);

    etcd.pause();
    await until('a to stop holding', () => !a.holds(), 10_000, 5);
    const { lastRenewalSentAt, leaseMs, holdsUntil } = a.status();
    // etcd cannot expire the lease before (its receipt of the last confirmed keepalive) + TTL >= sent + TTL.
    expect(holdsUntil).toBeLessThan(lastRenewalSentAt! + leaseMs);
    expect(a.describe()).toContain('lapsed');

    // While etcd is paused nobody can be granted anything: the request is rejected with the typed error.
    const err = await b.mayServeAlone(ask('b', 2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WitnessUnavailableError);
    expect(isWitnessEtcdError(err, 'WitnessUnavailableError')).toBe(true);
    expect(b.describe()).toContain('etcd unreachable');

    // Keep etcd away until the lease has certainly expired, then let b try until it wins.
    await sleep(Math.max(0, lastRenewalSentAt! + leaseMs + 500 - performance.now()));
    etcd.resume();
    for (;;) {
      const won = await b.mayServeAlone(ask('b', 2)).catch(() => false);
      if (won) break;
      await sleep(20);
    }
    expect(performance.now()).toBeGreaterThanOrEqual(lastRenewalSentAt! + leaseMs);
    expect(b.holds()).toBe(true);
    // a learns its lease is gone (its keepalive is answered "no such lease") and never holds again.
    await until(
      'a to see its lease lost',
      () => logA.lines.some((l) => l.includes('witness.lease-lost')) || a.status().grant === undefined,
      10_000,
    );
    expect(a.holds()).toBe(false);
    expect(await a.mayServeAlone(ask('a', 1, 'renew'))).toBe(false);
    const { samples, both } = monitor.stop();
    expect(samples).toBeGreaterThan(100);
    expect(both).toBe(0);
  });

  it('a short etcd pause (shorter than the lease): the holder keeps its grant and the other side is refused', async () => {
    const { a, b } = pair(2);
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    await sleep(300);
    etcd.pause();
    await sleep(400);
    etcd.resume();
    await until('a keepalive after the pause', () => a.status().unreachable === undefined && a.holds(), 5000);
    expect(await b.mayServeAlone(ask('b', 2))).toBe(false);
    expect(b.describe()).toContain('a owns it at epoch 1');
  });

  it('etcd stopped: requests reject with WitnessUnavailableError, nothing crashes; after a restart the survivor wins once the lease expired', async () => {
    const { a, b } = pair(1);
    const monitor = exclusionMonitor(a, b);
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    await etcd.kill();
    await until('a to stop holding', () => !a.holds(), 10_000, 5);
    for (const w of [b, a]) {
      const err = await w.mayServeAlone(ask(w === a ? 'a' : 'b', 2)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWitnessEtcdError(err, 'WitnessUnavailableError')).toBe(true);
      expect(w.describe()).toMatch(/etcd unreachable/);
    }
    await a.release({ nodeId: 'a', epoch: 1 }); // never throws, even with etcd down
    await a.close(); // a is gone; its lease outlives it at etcd until its TTL after the restart
    await etcd.restart();
    await until('b to win after the restart', () => b.mayServeAlone(ask('b', 2)).catch(() => false), 15_000, 50);
    expect(b.holds()).toBe(true);
    const { both } = monitor.stop();
    expect(both).toBe(0);
  });

  it('slow answers: holds() counts from when a keepalive was sent, not from when its answer came', async () => {
    // Answers from etcd take 1.2 s; requests are quick. Then requests stop reaching etcd at `cutAt`:
    // the lease expires no later than (the last request that reached etcd) + TTL, while answers still in
    // flight keep arriving for 1.2 s. Counting from the answer would hold up to 1.2 s too long.
    const delayMs = 1200;
    const proxy = await startDelayProxy(etcd.hostPort, delayMs);
    const a = new EtcdWitness({
      endpoints: [proxy.hostPort],
      prefix: `/tandem/test/slow-${++n}`,
      leaseTtlS: 4,
      keepaliveIntervalMs: 250,
      dialTimeoutMs: 4000,
      log: memoryLogger(),
    });
    open.push(a);
    try {
      expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
      await sleep(1500); // keepalives under way, answers arriving 1.2 s late
      proxy.cut();
      const cutAt = performance.now();
      await sleep(delayMs + 300); // every answer that will ever come has come
      const { holdsUntil, leaseMs } = a.status();
      expect(holdsUntil).toBeGreaterThan(cutAt - leaseMs); // it was renewed through the slow link
      expect(holdsUntil).toBeLessThanOrEqual(Math.max(cutAt, proxy.lastForwardedAt()) + leaseMs);
      await until('a to stop holding', () => !a.holds(), 5000, 5);
    } finally {
      await a.close();
      await proxy.close();
    }
  });

  it('refuses a grant whose lease may have expired before etcd confirmed it (answers slower than the lease)', async () => {
    // Answers take 1 s: the lease is granted at ~1 s (after the read), its answer comes at ~2 s, the owner
    // transaction's at ~3 s: past the 0.9 × 2 s after the grant request that holds() counts on.
    const proxy = await startDelayProxy(etcd.hostPort, 1000);
    const a = new EtcdWitness({ endpoints: [proxy.hostPort], prefix: `/tandem/test/too-slow-${++n}`, leaseTtlS: 2, dialTimeoutMs: 4000 });
    open.push(a);
    try {
      expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(false);
      expect(a.holds()).toBe(false);
      expect(a.describe()).toContain('too slowly');
    } finally {
      await a.close();
      await proxy.close();
    }
  });
});
