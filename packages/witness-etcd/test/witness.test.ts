// EtcdWitness against a real etcd: two witnesses stand for the two replicas of a pair (each its own client).
import type { WitnessRequest } from '@tandem/core';
import { type EtcdServer, freePort, startEtcd } from '@tandem/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdWitness, type EtcdWitnessOptions } from '../src/index.js';
import { memoryLogger, requireEtcd, sleep, until } from './etcd-harness.js';

const haveEtcd = requireEtcd('witness-etcd');

const ask = (nodeId: string, epoch: number, reason: WitnessRequest['reason'] = 'takeover'): WitnessRequest => ({ nodeId, epoch, reason });

describe.skipIf(!haveEtcd)('EtcdWitness on a real etcd', () => {
  let etcd: EtcdServer;
  let raw: Etcd3;
  const open: EtcdWitness[] = [];
  let n = 0;
  /** Two witnesses on a fresh prefix (one per replica), with logs. */
  const pair = (options: Partial<EtcdWitnessOptions> = {}) => {
    const prefix = `/tandem/test/pair-${++n}`;
    const logA = memoryLogger();
    const logB = memoryLogger();
    const a = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS: 2, log: logA, ...options });
    const b = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS: 2, log: logB, ...options });
    open.push(a, b);
    return { a, b, prefix, logA, logB };
  };
  const owner = async (prefix: string) => {
    const v = await raw.get(`${prefix}/owner`).string();
    return v === null ? null : (JSON.parse(v) as { nodeId: string; epoch: number });
  };
  const epochKey = async (prefix: string) => (JSON.parse((await raw.get(`${prefix}/epoch`).string()) ?? '{}') as { epoch: number }).epoch;

  beforeAll(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoint });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((w) => w.close()));
  });
  afterAll(async () => {
    raw?.close();
    await etcd?.stop();
  });

  it('holds(marginMs) ends the grant marginMs before holds() does (the core passes its forward window)', async () => {
    const { a } = pair();
    expect(await a.mayServeAlone(ask('a', 1))).toBe(true);
    const windowMs = a.status().holdsUntil - performance.now();
    expect(windowMs).toBeGreaterThan(0);
    expect(a.holds(0)).toBe(true);
    // A margin longer than what is left of the window: not held, although the lease is alive.
    expect(a.holds(windowMs + 1000)).toBe(false);
    expect(a.holds()).toBe(true);
  });

  it('two replicas racing at the same epoch: exactly one wins, every time', async () => {
    let fenced = 0;
    for (let i = 0; i < 40; i++) {
      const { a, b, prefix, logA, logB } = pair();
      const [wa, wb] = await Promise.all([a.mayServeAlone(ask('a', 1)), b.mayServeAlone(ask('b', 1))]);
      expect([wa, wb].filter(Boolean)).toHaveLength(1);
      expect(a.holds()).toBe(wa);
      expect(b.holds()).toBe(wb);
      expect(await owner(prefix)).toEqual({ nodeId: wa ? 'a' : 'b', epoch: 1 });
      fenced += [...logA.lines, ...logB.lines].filter((l) => l.includes('witness.raced')).length;
      await Promise.all([a.close(), b.close()]);
    }
    // The transaction's fence was exercised: in some rounds both read an empty key before either wrote.
    console.log(`same-epoch race: the fence turned a second grant away in ${fenced} of 40 rounds`);
    expect(fenced).toBeGreaterThan(0);
  });

  it('two replicas racing at different epochs: exactly one wins, and the epoch key never goes down', async () => {
    for (let i = 0; i < 30; i++) {
      const { a, b, prefix } = pair();
      const ea = 1 + (i % 3);
      const eb = 1 + ((i + 1) % 3);
      const [wa, wb] = await Promise.all([a.mayServeAlone(ask('a', ea)), b.mayServeAlone(ask('b', eb))]);
      expect([wa, wb].filter(Boolean)).toHaveLength(1);
      const winnerEpoch = wa ? ea : eb;
      expect(await owner(prefix)).toEqual({ nodeId: wa ? 'a' : 'b', epoch: winnerEpoch });
      expect(await epochKey(prefix)).toBe(winnerEpoch);
      // The winner hands over; the loser may take it at an epoch not below the winner's, never below.
      await (wa ? a : b).release({ nodeId: wa ? 'a' : 'b', epoch: winnerEpoch });
      const loser = wa ? b : a;
      const loserId = wa ? 'b' : 'a';
      if (winnerEpoch > 1) expect(await loser.mayServeAlone(ask(loserId, winnerEpoch - 1))).toBe(false);
      expect(await loser.mayServeAlone(ask(loserId, winnerEpoch + 1))).toBe(true);
      expect(await epochKey(prefix)).toBe(winnerEpoch + 1);
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('refuses an epoch below one already granted, to anyone', async () => {
    const { a, b, prefix } = pair();
    expect(await a.mayServeAlone(ask('a', 5, 'startup'))).toBe(true);
    expect(await a.mayServeAlone(ask('a', 4, 'renew'))).toBe(false); // even to the holder
    await a.release({ nodeId: 'a', epoch: 5 });
    expect(await owner(prefix)).toBeNull();
    expect(await b.mayServeAlone(ask('b', 4))).toBe(false);
    expect(b.describe()).toContain('below the granted epoch 5');
    // An epoch belongs to the replica it was granted to: never to another (two histories, one epoch).
    expect(await b.mayServeAlone(ask('b', 5))).toBe(false);
    expect(b.describe()).toContain('epoch 5 was granted to a');
    expect(await b.mayServeAlone(ask('b', 6))).toBe(true);
    expect(await a.mayServeAlone(ask('a', 7))).toBe(false); // b owns it now, whatever the epoch
    expect(await epochKey(prefix)).toBe(6);
  });

  it('the holder of an epoch may ask for it again after releasing it (a solo primary whose backup left again)', async () => {
    const { a, b } = pair();
    expect(await a.mayServeAlone(ask('a', 3, 'peer-faulty'))).toBe(true);
    await a.release({ nodeId: 'a', epoch: 3 });
    expect(await a.mayServeAlone(ask('a', 3, 'peer-faulty'))).toBe(true);
    await a.release({ nodeId: 'a', epoch: 3 });
    expect(await b.mayServeAlone(ask('b', 4))).toBe(true);
  });

  it('release lets the other side win at once (no lease wait)', async () => {
    const { a, b, prefix } = pair({ leaseTtlS: 30 });
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    expect(await b.mayServeAlone(ask('b', 2))).toBe(false);
    await a.release({ nodeId: 'a', epoch: 1 });
    expect(a.holds()).toBe(false);
    expect(await b.mayServeAlone(ask('b', 2))).toBe(true);
    expect(await owner(prefix)).toEqual({ nodeId: 'b', epoch: 2 });
    // A release by a replica that holds nothing (or another node id) changes nothing.
    await a.release({ nodeId: 'a', epoch: 2 });
    await b.release({ nodeId: 'a', epoch: 2 });
    expect(b.holds()).toBe(true);
    expect(await owner(prefix)).toEqual({ nodeId: 'b', epoch: 2 });
  });

  it('renew keeps a live lease, re-acquires a lost key, and is refused once the other side owns it', async () => {
    const { a, b, prefix } = pair({ leaseTtlS: 30 });
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    const lease = a.status().grant?.leaseId;
    expect(await a.mayServeAlone(ask('a', 1, 'renew'))).toBe(true);
    expect(a.status().grant?.leaseId).toBe(lease);
    // The owner key vanishes (an operator deleted it): renew takes it again, with a new lease.
    await raw.delete().key(`${prefix}/owner`);
    expect(await a.mayServeAlone(ask('a', 1, 'renew'))).toBe(true);
    expect(a.status().grant?.leaseId).not.toBe(lease);
    expect(await owner(prefix)).toEqual({ nodeId: 'a', epoch: 1 });
    // The other side owns it: renew is refused and the grant is dropped.
    await a.release({ nodeId: 'a', epoch: 1 });
    expect(await b.mayServeAlone(ask('b', 2))).toBe(true);
    expect(await a.mayServeAlone(ask('a', 1, 'renew'))).toBe(false);
    expect(a.holds()).toBe(false);
    expect(a.status().grant).toBeUndefined();
  });

  it('keeps its grant alive with keepalives for several TTLs', async () => {
    const { a } = pair({ leaseTtlS: 1 });
    expect(a.holds()).toBe(false);
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    const first = a.status().lastRenewalSentAt!;
    await sleep(3000);
    // Renewed well past the first TTL (a stalled event loop may leave holds() false for a moment: wait for it).
    await until('a keepalive confirmed', () => a.holds());
    expect(a.status().lastRenewalSentAt!).toBeGreaterThan(first + 2000);
    expect(a.describe()).toMatch(/a owns .* at epoch 1/);
  });

  it('a crashed holder (no release): the other side wins only after the lease expired', async () => {
    const { a, b } = pair({ leaseTtlS: 2 });
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    await sleep(700); // at least one keepalive
    const { lastRenewalSentAt, leaseMs, holdsUntil } = a.status();
    expect(holdsUntil).toBeLessThanOrEqual(lastRenewalSentAt! + leaseMs);
    await a.close(); // stops the keepalive, leaves the lease to expire
    let tries = 0;
    for (;;) {
      tries++;
      if (await b.mayServeAlone(ask('b', 2))) break;
      await sleep(50);
    }
    const wonAt = performance.now();
    // etcd expires the lease no earlier than (its receipt of a's last keepalive) + TTL.
    expect(wonAt).toBeGreaterThanOrEqual(lastRenewalSentAt! + leaseMs);
    expect(tries).toBeGreaterThan(1);
  });

  it('holds() is false before any grant, after release and after close', async () => {
    const { a } = pair();
    expect(a.holds()).toBe(false);
    expect(a.describe()).toContain('no grant');
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    expect(a.holds()).toBe(true);
    expect(a.leaseMs).toBe(2000);
    await a.release({ nodeId: 'a', epoch: 1 });
    expect(a.holds()).toBe(false);
    expect(await a.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    await a.close();
    expect(a.holds()).toBe(false);
    await expect(a.mayServeAlone(ask('a', 1, 'renew'))).rejects.toThrow(/closed/);
  });

  it('with several endpoints, a dead one is skipped', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const prefix = `/tandem/test/pair-${++n}`;
    const a = new EtcdWitness({ endpoints: [dead, etcd.hostPort], prefix, dialTimeoutMs: 500 });
    const b = new EtcdWitness({ endpoints: [dead, etcd.hostPort], prefix, dialTimeoutMs: 500 });
    open.push(a, b);
    for (let epoch = 1; epoch <= 6; epoch += 2) {
      expect(await a.mayServeAlone(ask('a', epoch, 'startup'))).toBe(true);
      expect(await b.mayServeAlone(ask('b', epoch + 1))).toBe(false);
      await a.release({ nodeId: 'a', epoch });
    }
    expect(await owner(prefix)).toBeNull();
    const onlyDead = new EtcdWitness({ endpoints: [dead], prefix, dialTimeoutMs: 500 });
    open.push(onlyDead);
    await expect(onlyDead.mayServeAlone(ask('c', 9))).rejects.toThrow(/etcd unreachable/);
  });

  it('a grant is over as soon as a read shows the owner key on another lease (the same node id elsewhere)', async () => {
    const prefix = `/tandem/test/pair-${++n}`;
    const first = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS: 30 });
    const second = new EtcdWitness({ endpoints: [etcd.hostPort], prefix, leaseTtlS: 30 });
    open.push(first, second);
    expect(await first.mayServeAlone(ask('a', 1, 'startup'))).toBe(true);
    // A second incarnation of node a (a restarted replica) takes the key onto its own lease.
    expect(await second.mayServeAlone(ask('a', 2, 'startup'))).toBe(true);
    // The first one learns it at its next request (refused: epoch 1 < 2) and holds nothing any more.
    expect(await first.mayServeAlone(ask('a', 1, 'renew'))).toBe(false);
    expect(first.holds()).toBe(false);
    expect(first.status().grant).toBeUndefined();
    expect(second.holds()).toBe(true);
    expect((await raw.get(`${prefix}/owner`).exec()).kvs[0]?.lease).toBe(second.status().grant?.leaseId);
  });
});
