/**
 * A @tandem/core replica rejoins THROUGH the streaming engine (streamingStateSync): the joiner streams
 * a snapshot fixed at S plus the log after it from the primary's backlog while a client keeps writing,
 * verifies equal digests, and the primary adds it as backup from that seq with a delta — no whole-state
 * stateSnap on the wire. The exactly-once window comes with the state: a retransmission after a
 * takeover by the rejoined replica is answered from its record, not applied again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createClient,
  createReplica,
  defineService,
  wholeStateSync,
  type Client,
  type Env,
  type Message,
  type Replica,
  type ReplicaEvent,
  type StateSync,
} from '@tandem/core';
import { codec } from '@tandem/core/internal';
import { createMemoryNetwork, type Connection, type Transport } from '@tandem/transport';
import { streamingStateSync, type SnapshotMap, type StreamingStateSync, type TransferProgress } from '../src/index.js';
import { FAST_CONFIG, kvServiceV1, sleep, testEnv, waitRole, type KvRequest } from './helpers.js';
import type { ServiceDefinition } from '@tandem/core';

const kv = defineService({
  name: 'kv-stream',
  request: z.union([
    z.object({ op: z.literal('put'), key: z.string(), value: z.string() }),
    z.object({ op: z.literal('incr'), key: z.string() }),
  ]),
  reply: z.object({ value: z.string().nullable(), seq: z.number() }),
  initialState: () => new Map<string, string>(),
  apply(state, req, ctx) {
    const prev = state.get(req.key) ?? null;
    if (req.op === 'put') state.set(req.key, req.value);
    else state.set(req.key, String(Number(prev ?? '0') + 1));
    return { value: req.op === 'incr' ? state.get(req.key)! : prev, seq: ctx.seq };
  },
  snapshot: (state) => [...state],
  restore: (snap) => new Map(snap as [string, string][]),
});
type Req = z.infer<typeof kv.request>;
type Rep = z.infer<typeof kv.reply>;

/** Every core protocol message a replica sends on its accepted connections, decoded (transfer frames are not core messages). */
function recordingNetwork(inner: Transport, sent: Message[]): Transport {
  const watch = (conn: Connection): Connection => {
    const send = conn.send.bind(conn);
    (conn as { send: Connection['send'] }).send = (bytes: Uint8Array) => {
      try {
        sent.push(codec.decode(bytes));
      } catch {
        // a state-transfer frame
      }
      return send(bytes);
    };
    return conn;
  };
  return {
    name: inner.name,
    schemes: inner.schemes,
    dial: inner.dial.bind(inner),
    async listen(address, options) {
      const l = await inner.listen(address, options);
      return {
        get address() {
          return l.address;
        },
        close: () => l.close(),
        async *[Symbol.asyncIterator]() {
          for await (const c of l) yield watch(c);
        },
      };
    },
  };
}

const stoppers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
});

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Writes unique keys one call at a time until stopped; returns the acknowledged ones. */
function writer(c: Client<Req, Rep>, prefix: string): { count(): number; stop(): Promise<string[]> } {
  const acked: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 50_000; i++) {
      const key = `${prefix}${i}`;
      try {
        await c.call({ op: 'put', key, value: 'v' });
        acked.push(key);
      } catch {
        // not acknowledged
      }
      if (i % 8 === 0) await sleep(0);
    }
  })();
  return {
    count: () => acked.length,
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

interface Rig {
  a: Replica<Map<string, string>>;
  b: Replica<Map<string, string>>;
  events: { a: ReplicaEvent[]; b: ReplicaEvent[] };
  sentByA: Message[];
  env: Env;
  addrA: string;
  addrB: string;
}

let rigNo = 0;
async function rig(syncA: StateSync, syncB: StateSync): Promise<Rig> {
  const n = ++rigNo;
  const network = createMemoryNetwork();
  const sentByA: Message[] = [];
  const envA = testEnv(recordingNetwork(network, sentByA));
  const env = testEnv(network);
  const addrA = `mem://stream-a${n}`;
  const addrB = `mem://stream-b${n}`;
  const a = createReplica({
    service: kv,
    env: envA,
    listen: addrA,
    peer: addrB,
    roleHint: 'primary',
    nodeId: 'A',
    config: FAST_CONFIG,
    stateSync: syncA,
  });
  const b = createReplica({
    service: kv,
    env,
    listen: addrB,
    peer: addrA,
    roleHint: 'backup',
    nodeId: 'B',
    config: FAST_CONFIG,
    stateSync: syncB,
  });
  const events = { a: [] as ReplicaEvent[], b: [] as ReplicaEvent[] };
  a.on((e) => events.a.push(e));
  b.on((e) => events.b.push(e));
  stoppers.push(
    () => a.stop(),
    () => b.stop(),
  );
  await a.start();
  return { a, b, events, sentByA, env, addrA, addrB };
}

function client(r: Rig): Client<Req, Rep> {
  const c = createClient({ service: kv, env: r.env, servers: [r.addrA, r.addrB], config: FAST_CONFIG });
  stoppers.push(() => c.close());
  return c;
}

describe('streamingStateSync: a core replica rejoins through the streaming engine', () => {
  it('streams while a client writes, joins with a delta (no whole-state stateSnap), equal digests, data and dedup survive a takeover', async () => {
    const progress: TransferProgress[] = [];
    const syncA = streamingStateSync({ service: kv, server: { chunkBytes: 4096 } });
    const syncB = streamingStateSync({ service: kv, onProgress: (p) => progress.push(p) });
    const r = await rig(syncA, syncB);
    const c = client(r);
    // A counter incremented once before B exists: its dedup record must reach B inside the snapshot.
    const first = await c.callWithInfo({ op: 'incr', key: 'counter' });
    for (let i = 0; i < 3000; i++) await c.call({ op: 'put', key: `pre${i}`, value: 'x'.repeat(32) });
    const w = writer(c, 'live');
    await until('writes under way', () => w.count() > 50);
    const before = w.count();
    await r.b.start();
    await waitRole(r.b, ['backup']);
    await until('more writes after the join', () => w.count() > before + 200);
    const acked = await w.stop();
    await c.drain();
    await until('equal digests', () => {
      const sa = r.a.status();
      const sb = r.b.status();
      return sa.appliedSeq === sb.appliedSeq && sa.stateDigest === sb.stateDigest;
    });

    // Streamed and verified, joined with a delta; the primary never sent a whole-state copy.
    expect((syncB as StreamingStateSync).stats).toMatchObject({ fetched: 1, fetchFailures: 0 });
    expect((syncA as StreamingStateSync).stats.served).toBe(1);
    const joins = r.events.a.filter((e) => e.type === 'peer-joined');
    expect(joins.map((e) => (e as { mode?: string }).mode)).toEqual(['delta']);
    const snaps = r.sentByA.filter((m) => m.t === 'stateSnap');
    expect(snaps.length).toBe(1);
    expect(snaps.every((m) => m.t === 'stateSnap' && m.delta === true && m.snapshot === null && m.dedup.length === 0)).toBe(true);
    expect(r.events.b.filter((e) => e.type === 'divergence')).toEqual([]);
    expect(progress.some((p) => p.phase === 'snapshot' || p.phase === 'catch-up')).toBe(true);
    expect(progress.at(-1)?.phase).toBe('verified');

    // The primary dies; B takes over with everything acknowledged and the dedup window.
    await r.a.stop();
    await waitRole(r.b, ['solo-primary'], 10_000);
    const state = r.b.state;
    for (const k of acked) expect(state.get(k)).toBe('v');
    expect(state.get('pre2999')).toBe('x'.repeat(32));
    expect(state.get('counter')).toBe('1');

    // A retransmission of the very first request (recorded before B streamed the state) is answered
    // from B's dedup record: same seq, counter not incremented again.
    const conn = await r.env.network.dial(r.addrB);
    stoppers.push(() => conn.close());
    await conn.send(codec.encode({ t: 'hello', kind: 'client', service: kv.name, nodeId: c.clientId, epoch: 0 }));
    await conn.send(codec.encode({ t: 'req', clientId: c.clientId, requestId: 1, body: { op: 'incr', key: 'counter' } }));
    let reply: Message | undefined;
    for await (const bytes of conn) {
      reply = codec.decode(bytes);
      if (reply.t === 'rep') break;
    }
    expect(reply).toMatchObject({ t: 'rep', requestId: 1, seq: first.seq, body: { value: '1', seq: first.seq } });
    expect(r.b.state.get('counter')).toBe('1');
  });

  it('falls back to the whole-state copy when the primary does not stream', async () => {
    const syncB = streamingStateSync({ service: kv, client: { maxReconnects: 1, reconnectDelayMs: 10 } });
    const r = await rig(wholeStateSync, syncB);
    const c = client(r);
    for (let i = 0; i < 200; i++) await c.call({ op: 'put', key: `k${i}`, value: 'v' });
    await r.b.start();
    await waitRole(r.b, ['backup']);
    expect((syncB as StreamingStateSync).stats).toMatchObject({ fetched: 0, fetchFailures: 1 });
    expect(r.events.a.filter((e) => e.type === 'peer-joined').map((e) => (e as { mode?: string }).mode)).toEqual(['copy']);
    await c.call({ op: 'put', key: 'after', value: 'v' });
    await c.drain();
    await until(
      'equal digests',
      () => r.a.status().stateDigest === r.b.status().stateDigest && r.a.status().appliedSeq === r.b.status().appliedSeq,
    );
    expect(r.b.state.get('k199')).toBe('v');
  });

  it('a joiner that never verified gets the whole-state copy, not a delta (a forged haveSeq is refused)', async () => {
    const syncA = streamingStateSync({ service: kv, verifyWaitMs: 50 });
    // A joiner that claims a verified state without streaming one.
    const liar: StateSync = { ...wholeStateSync, fetch: async (ctx) => ({ seq: ctx.target.appliedSeq, digest: ctx.target.digest() }) };
    const r = await rig(syncA, liar);
    const c = client(r);
    for (let i = 0; i < 100; i++) await c.call({ op: 'put', key: `k${i}`, value: 'v' });
    await r.b.start();
    await waitRole(r.b, ['backup']);
    expect(r.events.a.filter((e) => e.type === 'peer-joined').map((e) => (e as { mode?: string }).mode)).toEqual(['copy']);
    await until('B has the data', () => r.b.state.get('k99') === 'v');
  });

  it('streams a copy-on-write SnapshotMap state as records — snapshot() is never called on the primary — while a client writes', async () => {
    const base = { ...kvServiceV1(), reply: z.union([z.string(), z.null()]) } as ServiceDefinition<
      SnapshotMap<string>,
      KvRequest,
      string | null
    >;
    let snapshotCalls = 0;
    const svcA = { ...base, snapshot: (st: SnapshotMap<string>) => (snapshotCalls++, base.snapshot(st)) };
    const formats: string[] = [];
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const n = ++rigNo;
    const [addrA, addrB] = [`mem://rec-a${n}`, `mem://rec-b${n}`];
    const a = createReplica({
      service: svcA,
      env,
      listen: addrA,
      peer: addrB,
      roleHint: 'primary',
      nodeId: 'A',
      config: FAST_CONFIG,
      stateSync: streamingStateSync({ service: svcA, server: { chunkBytes: 16 * 1024 } }),
    });
    const syncB = streamingStateSync({ service: base, onEvent: (e) => e.side === 'joiner' && e.type === 'meta' && formats.push(e.format) });
    const b = createReplica({
      service: base,
      env,
      listen: addrB,
      peer: addrA,
      roleHint: 'backup',
      nodeId: 'B',
      config: FAST_CONFIG,
      stateSync: syncB,
    });
    const joins: ReplicaEvent[] = [];
    a.on((e) => e.type === 'peer-joined' && joins.push(e));
    stoppers.push(
      () => a.stop(),
      () => b.stop(),
    );
    await a.start();
    const c = createClient({ service: base, env, servers: [addrA, addrB], config: FAST_CONFIG });
    stoppers.push(() => c.close());
    for (let i = 0; i < 4000; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, k) => c.call({ op: 'set', key: `k${i + k}`, value: 'v'.repeat(40) })));
    let running = true;
    let written = 0;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        await c.call({ op: 'set', key: `live${i}`, value: 'x' });
        written = i + 1;
        if (i % 8 === 0) await sleep(0); // the memory network delivers in microtasks: let timers run
      }
    })();
    await b.start();
    await waitRole(b, ['backup']);
    const atJoin = written;
    await until('writes after the join', () => written > atJoin + 50);
    running = false;
    await loop;
    await c.drain();
    await until(
      'equal digests',
      () => a.status().appliedSeq === b.status().appliedSeq && a.status().stateDigest === b.status().stateDigest,
    );
    expect(formats).toEqual(['records']);
    expect(joins.map((e) => (e as { mode?: string }).mode)).toEqual(['delta']);
    expect(snapshotCalls).toBe(0);
    expect((syncB as StreamingStateSync).stats.fetched).toBe(1);
    expect(b.state.get('k3999')).toBe('v'.repeat(40));
    expect(b.state.get(`live${written - 1}`)).toBe('x');
  });
});
