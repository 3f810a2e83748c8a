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
import { FAST, kv, type KvState } from './helpers/setup.js';

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
async function rig(config: Partial<ReplicationConfig> = {}): Promise<Rig> {
  const cluster = new TestCluster();
  const n = ++rigNo;
  const addrA = `mem://rj-a${n}`;
  const addrB = `mem://rj-b${n}`;
  cluster.nameAddress(addrA, 'A');
  cluster.nameAddress(addrB, 'B');
  const cfg = { ...FAST, ...config };
  const nodeB = cluster.node('B');
  const a = createReplica({ service: kv, env: cluster.node('A').env, listen: addrA, peer: addrB, roleHint: 'primary', nodeId: 'A', config: cfg });
  const b = createReplica({ service: kv, env: nodeB.env, listen: addrB, peer: addrA, roleHint: 'backup', nodeId: 'B', config: cfg });
  const events = { a: [] as ReplicaEvent[], b: [] as ReplicaEvent[] };
  a.on((e) => events.a.push(e));
  b.on((e) => events.b.push(e));
  stoppers.push(() => a.stop(), () => b.stop());
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

/** Writes unique keys until stopped; returns the keys whose put was acknowledged. */
function writer(c: ReturnType<Rig['client']>): { stop(): Promise<string[]> } {
  const acked: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 20_000; i++) {
      if (i % 4 === 0) await sleep(1);
      const key = `k${i}`;
      try {
        await c.call({ op: 'put', key, value: 'v' });
        acked.push(key);
      } catch {
        /* unavailable: not acknowledged */
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return acked;
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
    await until(() => [r.a, r.b].some((x) => x.status().role === 'primary') && [r.a, r.b].some((x) => x.status().role === 'backup'), 'pair settled');
    const p = serving(r);
    const state = p.state;
    const missing = acked.filter((k) => !state.has(k));
    expect({ missing, takeovers: r.events.b.filter((e) => e.type === 'takeover').length }).toEqual({ missing: [], takeovers: 0 });
    expect(r.events.a.some((e) => e.type === 'peer-faulty')).toBe(false);
    expect(r.a.status().epoch).toBe(1);
  });
});
