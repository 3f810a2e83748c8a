/** Startup role decisions, the witness hook and the paused backup. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Replica, ReplicaEvent } from '../src/api.js';
import { createReplica } from '../src/replica.js';
import { TestCluster, sleep, until } from './helpers/fault-net.js';
import { FAST, kv, startPair, type KvState, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
const extra: Replica<KvState>[] = [];
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
  await Promise.all(extra.splice(0).map((r) => r.stop()));
});

describe('startup', () => {
  it("two 'auto' replicas started together settle as one primary and one backup", async () => {
    const cluster = new TestCluster();
    const a = createReplica({
      service: kv,
      env: cluster.node('a').env,
      listen: 'mem://auto-a',
      peer: 'mem://auto-b',
      nodeId: 'auto-a',
      config: FAST,
    });
    const b = createReplica({
      service: kv,
      env: cluster.node('b').env,
      listen: 'mem://auto-b',
      peer: 'mem://auto-a',
      nodeId: 'auto-b',
      config: FAST,
    });
    extra.push(a, b);
    await Promise.all([a.start(), b.start()]);
    await until(
      () => [a, b].some((r) => r.status().role === 'primary') && [a, b].some((r) => r.status().role === 'backup'),
      'primary + backup',
    );
    expect(new Set([a.status().epoch, b.status().epoch])).toEqual(new Set([1]));
  });

  it("a 'backup' replica waits until a primary appears", async () => {
    const cluster = new TestCluster();
    const b = createReplica({
      service: kv,
      env: cluster.node('b').env,
      listen: 'mem://w-b',
      peer: 'mem://w-a',
      roleHint: 'backup',
      config: FAST,
    });
    extra.push(b);
    let started = false;
    void b.start().then(() => (started = true));
    await sleep(100);
    expect(started).toBe(false);
    expect(b.status().role).toBe('starting');
    const a = createReplica({
      service: kv,
      env: cluster.node('a').env,
      listen: 'mem://w-a',
      peer: 'mem://w-b',
      roleHint: 'primary',
      config: FAST,
    });
    extra.push(a);
    await a.start();
    await until(() => started, 'backup started');
    expect(b.status().role).toBe('backup');
  });
});

describe('witness', () => {
  it('a backup does not take over when the witness refuses', async () => {
    const cluster = new TestCluster();
    const asked: string[] = [];
    const a = createReplica({
      service: kv,
      env: cluster.node('A').env,
      listen: 'mem://wa',
      peer: 'mem://wb',
      roleHint: 'primary',
      config: FAST,
    });
    const b = createReplica({
      service: kv,
      env: cluster.node('B').env,
      listen: 'mem://wb',
      peer: 'mem://wa',
      roleHint: 'backup',
      config: FAST,
      witness: { mayServeAlone: ({ reason }) => (asked.push(reason), false) },
    });
    extra.push(a, b);
    await a.start();
    await b.start();
    cluster.node('A').crash();
    await until(() => asked.includes('takeover'), 'witness consulted');
    await sleep(100);
    expect(b.status().role).toBe('backup');
  });
});

describe('paused backup', () => {
  it('the primary drops it and serves alone; when it resumes it rejoins instead of taking over', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await c.call({ op: 'incr', key: 'n' });
    p.nodeB.pause();
    await until(() => p.a.status().role === 'solo-primary', 'A dropped B');
    for (let i = 0; i < 3; i++) await c.call({ op: 'incr', key: 'n' });
    p.nodeB.resume();
    await until(() => p.a.status().role === 'primary' && p.b.status().role === 'backup', 'B rejoined');
    await until(() => p.b.status().appliedSeq === 4, 'B applied the entries A served alone');
    expect(p.events.b.some((e: ReplicaEvent) => e.type === 'takeover')).toBe(false);
    expect(p.b.state.get('n')).toBe('4');
    expect(p.a.status().epoch).toBe(1);
    // It followed: it came back from its own state with the entries after it, no state transfer.
    expect(p.events.a.filter((e: ReplicaEvent) => e.type === 'peer-joined').at(-1)).toMatchObject({ mode: 'resume' });
  });
});
