/**
 * Rejoining under load: a joiner whose state install is slow must not be declared faulty by its ack
 * clock before it installed, a backup the primary dropped must never take over from a live primary, and
 * a join always completes or retries.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Replica, ReplicaEvent, ReplicationConfig } from '../src/api.js';
import { createClient } from '../src/client.js';
import { createReplica } from '../src/replica.js';
import { TestCluster, sleep, until, type TestNode } from './helpers/fault-net.js';
import { FAST, kv, writer, type KvState } from './helpers/setup.js';

const stoppers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stoppers.splice(0).map((s) => s().catch(() => undefined)));
});

interface Rig {
  cluster: TestCluster;
  a: Replica<KvState>;
  b: Replica<KvState>;
  nodeB: TestNode;
  events: { a: ReplicaEvent[]; b: ReplicaEvent[] };
  startB(): Promise<void>;
  client(): ReturnType<typeof createClient<Parameters<typeof kv.apply>[1], ReturnType<typeof kv.apply>>>;
}

let rigNo = 0;
/** A serving alone; B is created but not started (it joins when startB() is called). */
async function rig(config: Partial<ReplicationConfig> = {}, hintB: 'backup' | 'auto' = 'backup'): Promise<Rig> {
  const cluster = new TestCluster();
  const n = ++rigNo;
  const addrA = `mem://rj-a${n}`;
  const addrB = `mem://rj-b${n}`;
  cluster.nameAddress(addrA, 'A');
  cluster.nameAddress(addrB, 'B');
  const cfg = { ...FAST, ...config };
  const nodeB = cluster.node('B');
  const a = createReplica({
    service: kv,
    env: cluster.node('A').env,
    listen: addrA,
    peer: addrB,
    roleHint: 'primary',
    nodeId: 'A',
    config: cfg,
  });
  const b = createReplica({ service: kv, env: nodeB.env, listen: addrB, peer: addrA, roleHint: hintB, nodeId: 'B', config: cfg });
  const events = { a: [] as ReplicaEvent[], b: [] as ReplicaEvent[] };
  a.on((e) => events.a.push(e));
  b.on((e) => events.b.push(e));
  stoppers.push(
    () => a.stop(),
    () => b.stop(),
  );
  await a.start();
  return {
    cluster,
    a,
    b,
    nodeB,
    events,
    startB: () => b.start(),
    client() {
      const c = createClient({ service: kv, env: cluster.node('C').env, servers: [addrA, addrB], config: cfg });
      stoppers.push(() => c.close());
      return c;
    },
  };
}

function serving(r: Rig): Replica<KvState> {
  const s = [r.a, r.b].filter((x) => x.status().role === 'primary' || x.status().role === 'solo-primary');
  if (s.length !== 1) throw new Error(`expected one serving replica, got ${s.length}`);
  return s[0]!;
}

describe('rejoin under load with a slow state install', () => {
  it('a joiner stalled while installing the state copy is not dropped for missing acks, and nothing acknowledged is lost', async () => {
    const r = await rig();
    const w = writer(r.client());
    await sleep(50);
    // B stalls (like a process busy installing a large state) from the moment the snapshot is sent.
    // The solo primary's probe (its hello) is lost, so only the protocol's own rules protect the pair.
    let paused = false;
    r.cluster.dropRule = ({ from, msg }) => {
      if (from === 'A' && msg.t === 'stateSnap' && !paused) {
        paused = true;
        r.nodeB.pause();
        setTimeout(() => r.nodeB.resume(), 300);
      }
      return from === 'A' && msg.t === 'hello' && msg.role === 'solo-primary';
    };
    await r.startB();
    await sleep(700); // the stall, then several takeover periods
    const acked = await w.stop();
    await until(
      () => [r.a, r.b].some((x) => x.status().role === 'primary') && [r.a, r.b].some((x) => x.status().role === 'backup'),
      'pair settled',
    );
    const p = serving(r);
    const state = p.state;
    const missing = acked.filter((k) => !state.has(k));
    expect({ missing, takeovers: r.events.b.filter((e) => e.type === 'takeover').length }).toEqual({ missing: [], takeovers: 0 });
    expect(r.events.a.some((e) => e.type === 'peer-faulty')).toBe(false);
    expect(r.a.status().epoch).toBe(1);
  });
});

describe('a backup the primary declared faulty cannot take over', () => {
  it('the primary tells a reachable backup it is dropped (drop → dropAck) before serving alone; the backup re-joins', async () => {
    const r = await rig();
    await r.startB();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    const w = writer(r.client());
    // B's acks are lost for a while: A declares B faulty although B is alive and reachable.
    // The solo primary's probing hello is lost too, so only the drop can tell B.
    let acksLost = true;
    r.cluster.dropRule = ({ from, msg }) =>
      (acksLost && from === 'B' && msg.t === 'flushAck') || (from === 'A' && msg.t === 'hello' && msg.role === 'solo-primary');
    await until(() => r.events.a.some((e) => e.type === 'peer-faulty'), 'A declared B faulty');
    acksLost = false;
    await sleep(500);
    const acked = await w.stop();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B re-joined');
    const drops = r.cluster.find((x) => x.from === 'A' && x.msg.t === 'drop').length;
    const dropAcks = r.cluster.find((x) => x.from === 'B' && x.msg.t === 'dropAck').length;
    expect(drops).toBeGreaterThan(0);
    expect(dropAcks).toBeGreaterThan(0);
    expect(r.events.b.filter((e) => e.type === 'takeover')).toEqual([]);
    expect(acked.filter((k) => !r.a.state.has(k))).toEqual([]);
    expect(r.a.status().epoch).toBe(1);
  });

  it('a backup hearing no flushes asks the primary before taking over, and re-joins when it answers', async () => {
    const r = await rig();
    await r.startB();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    const w = writer(r.client());
    // Everything A says to B over the flush connection is lost (flushes, drops, probing hellos); A itself is alive.
    r.cluster.dropRule = ({ from, msg }) =>
      from === 'A' && (msg.t === 'flush' || msg.t === 'drop' || (msg.t === 'hello' && msg.role === 'solo-primary'));
    await sleep(600); // several takeover periods
    const acked = await w.stop();
    r.cluster.dropRule = undefined;
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'pair settled');
    expect(r.events.b.filter((e) => e.type === 'takeover')).toEqual([]);
    expect(r.cluster.find((x) => x.from === 'B' && x.msg.t === 'status').length).toBeGreaterThan(0);
    expect(acked.filter((k) => !r.a.state.has(k))).toEqual([]);
    expect(r.a.status().epoch).toBe(1);
  });
});

describe("restart with roleHint 'auto'", () => {
  it('does not serve while its peer is reachable and serving, even if the first status probes go unanswered', async () => {
    const r = await rig({}, 'auto');
    const c = r.client();
    for (let i = 0; i < 5; i++) await c.call({ op: 'incr', key: 'n' });
    // A is busy: its first answers to B's status probes are late (lost here).
    let late = 0;
    r.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'statusReply' && late++ < 2;
    await r.startB();
    await until(() => r.b.status().role === 'backup', 'B joined');
    expect(r.events.b.filter((e) => e.type === 'role').map((e) => (e as { role: string }).role)).toEqual(['backup']);
    expect(r.b.state.get('n')).toBe('5');
    expect(r.a.status()).toMatchObject({ role: 'primary', epoch: 1 });
  });
});

describe('a join always completes or retries', () => {
  it('with a tight ack clock (15 ms, 1 re-send) and a slow install under load, the joiner ends up a backup', async () => {
    const r = await rig({ ackTimeoutMs: 15, maxRetransmits: 1 });
    const w = writer(r.client());
    await sleep(30);
    // Every state copy takes B 150 ms to install (10 × the ack timeout).
    r.cluster.dropRule = ({ from, msg }) => {
      if (from === 'A' && msg.t === 'stateSnap') {
        r.nodeB.pause();
        setTimeout(() => r.nodeB.resume(), 150);
      }
      return false;
    };
    await r.startB();
    await sleep(600);
    const acked = await w.stop();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B is a backup', 5000);
    await until(() => r.b.status().appliedSeq === r.a.status().appliedSeq, 'B caught up');
    expect(acked.filter((k) => !r.a.state.has(k))).toEqual([]);
    expect(r.b.status().stateDigest).toBe(r.a.status().stateDigest);
    expect(r.events.b.some((e) => e.type === 'takeover')).toBe(false);
  });
});
