/**
 * Replicated services calling replicated services (@tandem/causal/replication on @tandem/core's hooks),
 * in process over the memory transport: FIG. 4b with a slow Pro2 → Pro3 link (Pro3 holds Pro1's use until
 * the initialisation arrived; without the causal context it does not), FIG. 4a (the reply waits for Pro3),
 * a takeover of Pro2 after it replied and before its outbound message left (the new primary re-issues it,
 * Pro3 applies it once), and the service-level exactly-once and FIFO rules.
 */
import type { Client, ReplicationConfig } from '@tandem/core';
import { createClient, nodeEnv } from '@tandem/core';
import { type Connection, createMemoryNetwork, type Transport } from '@tandem/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type CausalReply,
  type CausalRequest,
  CausalSession,
  causalService,
  createCausalReplica,
  type CausalState,
} from '../src/replication/index.js';

const FAST: Partial<ReplicationConfig> = {
  flushIntervalMs: 10,
  flushMaxEntries: 8,
  heartbeatTimeoutMs: 80,
  ackTimeoutMs: 20,
  maxRetransmits: 2,
  requestTimeoutMs: 60,
  callDeadlineMs: 5000,
  forwardDelayMs: 1,
};

const MEMBERS = ['handler', 'resource'] as const;

const resourceDef = causalService(
  {
    name: 'resource',
    request: z.discriminatedUnion('op', [
      z.object({ op: z.literal('init'), id: z.string() }),
      z.object({ op: z.literal('use'), id: z.string() }),
    ]),
    reply: z.object({ ok: z.boolean(), uses: z.number() }),
    initialState: () => ({ inits: new Map<string, number>(), uses: new Map<string, number>(), order: [] as string[] }),
    apply(state, req) {
      state.order.push(`${req.op}:${req.id}`);
      if (req.op === 'init') {
        state.inits.set(req.id, (state.inits.get(req.id) ?? 0) + 1);
        return { ok: true, uses: 0 };
      }
      if (!state.inits.has(req.id)) throw new Error(`resource ${req.id} used before its initialisation`);
      const uses = (state.uses.get(req.id) ?? 0) + 1;
      state.uses.set(req.id, uses);
      return { ok: true, uses };
    },
    snapshot: (s) => ({ inits: [...s.inits], uses: [...s.uses], order: s.order }),
    restore: (v) => {
      const s = v as { inits: [string, number][]; uses: [string, number][]; order: string[] };
      return { inits: new Map(s.inits), uses: new Map(s.uses), order: [...s.order] };
    },
  },
  { members: MEMBERS },
);

const handlerDef = causalService(
  {
    name: 'handler',
    request: z.object({ op: z.literal('alloc'), id: z.string(), flow: z.enum(['4a', '4b']) }),
    reply: z.object({ available: z.boolean(), id: z.string() }),
    initialState: () => ({ allocated: [] as string[] }),
    apply(state, req, ctx) {
      state.allocated.push(req.id);
      ctx.send('resource', { op: 'init', id: req.id }, { awaitReply: req.flow === '4a' });
      return { available: true, id: req.id };
    },
    snapshot: (s) => ({ allocated: s.allocated }),
    restore: (v) => ({ allocated: [...(v as { allocated: string[] }).allocated] }),
  },
  { members: MEMBERS },
);

type ResourceState = CausalState<{ inits: Map<string, number>; uses: Map<string, number>; order: string[] }>;

/** A network whose connections to `slowTo` deliver every message `delayMs` late (in order). */
function slowNetwork(net: Transport, slowTo: readonly string[], delay: { ms: number }): Transport {
  return {
    name: net.name,
    schemes: net.schemes,
    listen: (a, o) => net.listen(a, o),
    async dial(address, options) {
      const conn = await net.dial(address, options);
      if (!slowTo.includes(address)) return conn;
      let chain = Promise.resolve();
      const wrapped: Connection = {
        id: conn.id,
        localAddress: conn.localAddress,
        remoteAddress: conn.remoteAddress,
        maxMessageSize: conn.maxMessageSize,
        get isClosed() {
          return conn.isClosed;
        },
        closed: conn.closed,
        send(m) {
          const ms = delay.ms;
          chain = chain.then(() => new Promise<void>((r) => setTimeout(r, ms))).then(() => conn.send(m).catch(() => undefined));
          return Promise.resolve();
        },
        close: (r) => conn.close(r),
        abort: (e) => conn.abort(e),
        [Symbol.asyncIterator]: () => conn[Symbol.asyncIterator](),
      };
      return wrapped;
    },
  };
}

const stoppers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
});

let run = 0;

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function threeParty(opts: { delayMs?: number; suppressOutboundOnA?: boolean } = {}) {
  const net = createMemoryNetwork();
  const k = ++run;
  const h = [`mem://h-a${k}`, `mem://h-b${k}`] as const;
  const r = [`mem://r-a${k}`, `mem://r-b${k}`] as const;
  const delay = { ms: opts.delayMs ?? 0 };
  const handlerEnv = nodeEnv({ network: slowNetwork(net, r, delay) });
  const env = nodeEnv({ network: net });
  const members = { handler: h, resource: r };
  const start = (
    service: typeof handlerDef | typeof resourceDef,
    pair: readonly [string, string],
    hint: 'primary' | 'backup',
    envFor: typeof env,
    suppress = false,
  ) => {
    const { replica, runtime } = createCausalReplica({
      service: service as typeof handlerDef,
      env: envFor,
      listen: hint === 'primary' ? pair[0] : pair[1],
      peer: hint === 'primary' ? pair[1] : pair[0],
      roleHint: hint,
      nodeId: `${service.name}-${hint}`,
      config: FAST,
      clientConfig: FAST,
      members,
      ...(suppress ? { wrapHooks: (hooks) => ({ ...hooks, afterApply: () => undefined }) } : {}),
    });
    stoppers.push(
      () => runtime.close(),
      () => replica.stop(),
    );
    return { replica, runtime };
  };
  const rp = start(resourceDef, r, 'primary', env);
  const rb = start(resourceDef, r, 'backup', env);
  const hp = start(handlerDef, h, 'primary', handlerEnv, opts.suppressOutboundOnA === true);
  const hb = start(handlerDef, h, 'backup', handlerEnv);
  await rp.replica.start();
  await rb.replica.start();
  await hp.replica.start();
  await hb.replica.start();
  await until(() => rp.replica.status().role === 'primary' && hp.replica.status().role === 'primary', 'both pairs');
  const session = new CausalSession(MEMBERS);
  const clientEnv = nodeEnv({ network: net });
  const hc = createClient({ service: handlerDef, env: clientEnv, servers: h, config: FAST });
  const rc = createClient({ service: resourceDef, env: clientEnv, servers: r, config: FAST });
  stoppers.push(
    () => hc.close(),
    () => rc.close(),
  );
  return {
    delay,
    session,
    handler: session.client(hc, 'handler'),
    resource: session.client(rc, 'resource'),
    /** The same calls without the causal context (the broken variant). */
    plainResource: rc as unknown as Client<CausalRequest<{ op: 'use'; id: string }>, CausalReply<{ ok: boolean; uses: number }>>,
    rp,
    rb,
    hp,
    hb,
    resourceState: () => rp.replica.state as unknown as ResourceState,
  };
}

describe('replicated services calling replicated services', () => {
  it('FIG. 4b: Pro3 applies the initialisation before Pro1 uses the resource, though Pro2 → Pro3 is slow', async () => {
    const t = await threeParty({ delayMs: 0 });
    await t.handler.call({ op: 'alloc', id: 'warm', flow: '4b' }); // connections up before the delay
    await until(() => t.resourceState().inner.inits.has('warm'), 'warm-up init');
    t.delay.ms = 250;
    const alloc = await t.handler.call({ op: 'alloc', id: 'r1', flow: '4b' });
    expect(alloc.available).toBe(true);
    expect(t.resourceState().inner.inits.has('r1')).toBe(false); // the initialisation is still in flight
    const use = await t.resource.call({ op: 'use', id: 'r1' });
    expect(use).toEqual({ ok: true, uses: 1 });
    const order = t.resourceState().inner.order;
    expect(order.indexOf('init:r1')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('init:r1')).toBeLessThan(order.indexOf('use:r1'));
    // The backup replays the same order.
    await until(() => (t.rb.replica.state as unknown as ResourceState).inner.order.length === order.length, 'backup caught up');
    expect((t.rb.replica.state as unknown as ResourceState).inner.order).toEqual(order);
  });

  it('without the causal context, the use overtakes the slow initialisation (the check can fail)', async () => {
    const t = await threeParty({ delayMs: 0 });
    await t.handler.call({ op: 'alloc', id: 'warm', flow: '4b' });
    await until(() => t.resourceState().inner.inits.has('warm'), 'warm-up init');
    t.delay.ms = 250;
    await t.handler.call({ op: 'alloc', id: 'r2', flow: '4b' });
    const err = await t.plainResource.call({ b: { op: 'use', id: 'r2' } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/used before its initialisation/);
  });

  it('FIG. 4a: the reply waits for Pro3, so the use needs no wait', async () => {
    const t = await threeParty({ delayMs: 0 });
    await t.handler.call({ op: 'alloc', id: 'warm', flow: '4a' });
    t.delay.ms = 150;
    await t.handler.call({ op: 'alloc', id: 'r3', flow: '4a' });
    expect(t.resourceState().inner.inits.get('r3')).toBe(1); // applied before the reply came
    expect(await t.resource.call({ op: 'use', id: 'r3' })).toEqual({ ok: true, uses: 1 });
  });

  it('a new Pro2 primary re-issues an outbound message the old one never sent; Pro3 applies it once', async () => {
    const t = await threeParty({ suppressOutboundOnA: true });
    const alloc = await t.handler.call({ op: 'alloc', id: 'r4', flow: '4b' });
    expect(alloc.available).toBe(true);
    await t.hp.replica.stop(); // the old primary dies with the message unsent
    const use = await t.resource.call({ op: 'use', id: 'r4' }); // held at Pro3 until the takeover re-issues
    expect(use).toEqual({ ok: true, uses: 1 });
    expect(t.resourceState().inner.inits.get('r4')).toBe(1);
    expect(t.hb.runtime.stats().reissued).toBeGreaterThanOrEqual(1);
    // The confirmation empties the replicated outbox.
    await until(() => (t.hb.replica.state as unknown as CausalState<unknown>).outbox.length === 0, 'outbox confirmed');
  });
});

describe('causalService rules', () => {
  const ctx = (seq: number) => ({ seq, epoch: 1, time: 0, clientId: 'c', requestId: seq, random: () => 0 });

  it('applies an outbound message once (a re-issue is answered with what was applied) and FIFO per pair', () => {
    const s = resourceDef.initialState();
    const init = (n: number, id: string): CausalRequest<{ op: 'init'; id: string }> => ({ b: { op: 'init', id }, o: [0, n, n, 0] });
    expect(resourceDef.apply(s, init(1, 'a'), ctx(1)).d).toBeUndefined();
    expect(resourceDef.apply(s, init(1, 'a'), ctx(2)).d).toBe(1);
    expect(s.inner.inits.get('a')).toBe(1);
    expect(() => resourceDef.apply(s, init(3, 'c'), ctx(3))).toThrow(/sequenced after 1/);
  });

  it('a reply carries the sends of its entry; a confirmation removes them from the outbox', () => {
    const s = handlerDef.initialState();
    const rep = handlerDef.apply(s, { b: { op: 'alloc', id: 'x', flow: '4b' } }, ctx(1));
    expect(s.outbox).toHaveLength(1);
    expect(s.outbox[0]).toMatchObject({ to: 1, n: 1, seq: 1, index: 0 });
    const snap = handlerDef.restore(handlerDef.snapshot(s));
    expect(snap.outbox).toEqual(s.outbox);
    handlerDef.apply(s, { k: { to: 1, upTo: 1 } }, ctx(2));
    expect(s.outbox).toHaveLength(0);
    expect(rep.c.length).toBeGreaterThan(1);
  });
});
