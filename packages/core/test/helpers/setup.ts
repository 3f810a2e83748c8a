/** Builds a primary/backup pair and clients on a TestCluster. */
import { z } from 'zod';
import type {
  Client,
  ClientCredentials,
  ReplicationConfig,
  Replica,
  ReplicaEvent,
  ReplicaHooks,
  ReplicaSecurity,
  Witness,
} from '../../src/api.js';
import { installFaultHooks, type BrokenVariant } from '../../src/fault-hooks.js';
import { createClient, type ClientDiagnostics } from '../../src/client.js';
import { createReplica } from '../../src/replica.js';
import { defineService } from '../../src/service.js';
import { TestCluster, sleep, until, type TestNode } from './fault-net.js';

/** Fast timings for in-process tests (all derived bounds stay consistent). */
export const FAST: Partial<ReplicationConfig> = {
  flushIntervalMs: 10,
  flushMaxEntries: 8,
  heartbeatTimeoutMs: 60,
  ackTimeoutMs: 15,
  maxRetransmits: 2,
  requestTimeoutMs: 40,
  callDeadlineMs: 4000,
  forwardDelayMs: 1,
};

/** A small key-value service: put returns the previous value; incr counts applications. */
export const kv = defineService({
  name: 'kv',
  request: z.discriminatedUnion('op', [
    z.object({ op: z.literal('put'), key: z.string(), value: z.string() }),
    z.object({ op: z.literal('get'), key: z.string() }),
    z.object({ op: z.literal('incr'), key: z.string() }),
    z.object({ op: z.literal('fail'), message: z.string() }),
  ]),
  reply: z.object({ value: z.string().nullable(), seq: z.number() }),
  initialState: () => new Map<string, string>(),
  apply(state, req, ctx) {
    if (req.op === 'fail') throw new TypeError(req.message);
    const prev = state.get(req.key) ?? null;
    if (req.op === 'put') state.set(req.key, req.value);
    if (req.op === 'incr') state.set(req.key, String(Number(prev ?? '0') + 1));
    return { value: req.op === 'incr' ? state.get(req.key)! : prev, seq: ctx.seq };
  },
  snapshot: (state) => [...state],
  restore: (snap) => new Map(snap as [string, string][]),
});
export type KvReq = z.infer<typeof kv.request>;
export type KvRep = z.infer<typeof kv.reply>;
export type KvState = Map<string, string>;

let pairNo = 0;

export interface Pair {
  cluster: TestCluster;
  a: Replica<KvState>;
  b: Replica<KvState>;
  nodeA: TestNode;
  nodeB: TestNode;
  events: { a: ReplicaEvent[]; b: ReplicaEvent[] };
  addrA: string;
  addrB: string;
  client(node: string, extra?: Partial<ReplicationConfig>, credentials?: ClientCredentials): Client<KvReq, KvRep> & ClientDiagnostics;
  stop(): Promise<void>;
}

export interface PairOptions {
  /** Both replicas' security settings (or one each). */
  security?: ReplicaSecurity | { a: ReplicaSecurity; b: ReplicaSecurity };
  /** Wait until A is primary with B as its backup (default true). */
  waitForPair?: boolean;
  /** ReplicaHooks for both replicas (replica-hooks.test.ts). */
  hooks?: ReplicaHooks;
  /** Each replica's witness (witness.test.ts). */
  witness?: { a?: Witness; b?: Witness };
}

export async function startPair(
  config: Partial<ReplicationConfig> = {},
  service = kv,
  broken?: BrokenVariant,
  options: PairOptions = {},
): Promise<Pair> {
  const cluster = new TestCluster();
  const n = ++pairNo;
  const addrA = `mem://a${n}`;
  const addrB = `mem://b${n}`;
  cluster.nameAddress(addrA, 'A');
  cluster.nameAddress(addrB, 'B');
  const nodeA = cluster.node('A');
  const nodeB = cluster.node('B');
  const cfg = { ...FAST, ...config };
  const sec = options.security;
  const secA = sec === undefined ? undefined : 'a' in sec && 'b' in sec ? sec.a : (sec as ReplicaSecurity);
  const secB = sec === undefined ? undefined : 'a' in sec && 'b' in sec ? sec.b : (sec as ReplicaSecurity);
  const a = createReplica({
    service,
    env: nodeA.env,
    listen: addrA,
    peer: addrB,
    roleHint: 'primary',
    nodeId: 'A',
    config: cfg,
    ...(secA ? { security: secA } : {}),
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.witness?.a ? { witness: options.witness.a } : {}),
  });
  if (broken) installFaultHooks(a, broken);
  const b = createReplica({
    service,
    env: nodeB.env,
    listen: addrB,
    peer: addrA,
    roleHint: 'backup',
    nodeId: 'B',
    config: cfg,
    ...(secB ? { security: secB } : {}),
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.witness?.b ? { witness: options.witness.b } : {}),
  });
  const events = { a: [] as ReplicaEvent[], b: [] as ReplicaEvent[] };
  a.on((e) => events.a.push(e));
  b.on((e) => events.b.push(e));
  await a.start();
  if (options.waitForPair !== false) await b.start();
  else void b.start().catch(() => undefined);
  if (options.waitForPair !== false) await until(() => a.status().role === 'primary', 'A primary with backup');
  const clients: Client<KvReq, KvRep>[] = [];
  return {
    cluster,
    a,
    b,
    nodeA,
    nodeB,
    events,
    addrA,
    addrB,
    client(node, extra = {}, credentials) {
      const c = createClient({
        service,
        env: cluster.node(node).env,
        servers: [addrA, addrB],
        config: { ...cfg, ...extra },
        ...(credentials ? { credentials } : {}),
      });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await Promise.all([a.stop(), b.stop()]);
    },
  };
}

/** Writes unique keys (`${prefix}${i}`) until stopped; returns the keys whose put was acknowledged. */
export function writer(c: Client<KvReq, KvRep>, prefix = 'k'): { stop(): Promise<string[]> } {
  const acked: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 20_000; i++) {
      if (i % 4 === 0) await sleep(1);
      const key = `${prefix}${i}`;
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
