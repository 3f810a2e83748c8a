/**
 * The causal scenario (issue #18): two replicated services that call each other — a resource handler pair
 * (Pro2: ha/hb) whose `alloc` sends an initialisation to a resource pair (Pro3: ra/rb) — and 2–3 clients
 * (Pro1) that allocate a resource and then use it, under seeded message delays, delay spikes, reordering,
 * losses and duplicates, and SIGKILLs of primaries (at a random time, or right after the handler's primary
 * replied, before its outbound message left). Checks, at quiescence:
 *   1. causal order: no use applied before its resource's initialisation (no client saw NotInitialised
 *      after its alloc was acknowledged; at Pro3 every used resource's init seq precedes its first use);
 *   2. exactly once: no initialisation (an outbound message) applied twice;
 *   3. nothing acknowledged lost: every acknowledged alloc is in the handler's state and initialised at
 *      Pro3; every acknowledged use is counted there; the serving replicas of each pair agree with their
 *      backups (equal state digests when both are up);
 *   4. the outboxes drain: every outbound message confirmed.
 * Variant 'no-causal-wait' admits every request at once (no hold for causal predecessors): caught by 1.
 * Variant 'no-outbound-dedup' applies a re-issued outbound message again: caught by 2.
 */
import { CausalSession, type CausalState, causalService, createCausalReplica } from '@tandem/causal/replication';
import { createClient, type Replica, type ReplicationConfig } from '@tandem/core';
import { codec } from '@tandem/core/internal';
import { z } from 'zod';
import { Simulation } from './simulation.js';
import type { SimNode } from './node.js';

/** The causal scenario's variants: the designed protocol, and a broken one the checks must catch. */
export const CAUSAL_VARIANTS = {
  correct: 'the designed protocol: a request is sequenced only after its causal predecessors',
  'no-causal-wait': 'BROKEN: the callee sequences every request at once, without waiting for causal predecessors',
  'no-outbound-dedup': 'BROKEN: the callee applies a re-issued outbound message again instead of answering it as applied',
} as const;
/** A key of CAUSAL_VARIANTS: the designed protocol or a deliberately broken one. */
export type CausalVariant = keyof typeof CAUSAL_VARIANTS;

/** One run of the causal scenario. */
export interface CausalSimulationOptions {
  /** Everything random in the run derives from it. */
  seed: number;
  /** Default 'correct'. */
  variant?: CausalVariant;
  /** Flows (alloc + use) per client. Default 8. */
  flowsPerClient?: number;
  /** Stop (and fail) after this much virtual time. Default 60 000. */
  maxVirtualMs?: number;
}

/** What a run did and found: `failures` is empty when every check passed. */
export interface CausalSimulationResult {
  seed: number;
  variant: CausalVariant;
  ok: boolean;
  failures: string[];
  faults: string[];
  events: number;
  virtualMs: number;
  traceHash: string;
  flows: { acknowledged: number; failed: number };
  held: number;
  /** Outbound messages re-issued by a new primary, and re-issues the callee answered as already applied. */
  reissued: number;
  duplicates: number;
}

const MEMBERS = ['handler', 'resource'] as const;

interface Rec {
  inits: number;
  uses: number;
  initSeq: number;
  firstUseSeq: number;
}

const handler = causalService(
  {
    name: 'handler',
    request: z.object({ id: z.string() }),
    reply: z.object({ ok: z.boolean() }),
    initialState: () => ({ allocated: new Set<string>() }),
    apply(state, req, ctx) {
      if (state.allocated.has(req.id)) throw new Error(`already allocated: ${req.id}`);
      state.allocated.add(req.id);
      ctx.send('resource', { op: 'init', id: req.id });
      return { ok: true };
    },
    snapshot: (s) => [...s.allocated].sort(),
    restore: (v) => ({ allocated: new Set(v as string[]) }),
  },
  { members: MEMBERS },
);

const resource = causalService(
  {
    name: 'resource',
    request: z.object({ op: z.enum(['init', 'use']), id: z.string() }),
    reply: z.object({ uses: z.number() }),
    initialState: () => ({ r: new Map<string, Rec>() }),
    apply(state, req, ctx) {
      let r = state.r.get(req.id);
      if (r === undefined) state.r.set(req.id, (r = { inits: 0, uses: 0, initSeq: 0, firstUseSeq: 0 }));
      if (req.op === 'init') {
        r.inits++;
        if (r.initSeq === 0) r.initSeq = ctx.seq;
        return { uses: r.uses };
      }
      if (r.firstUseSeq === 0) r.firstUseSeq = ctx.seq;
      if (r.inits === 0) throw new Error(`NotInitialised: ${req.id}`);
      r.uses++;
      return { uses: r.uses };
    },
    snapshot: (s) => [...s.r].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    restore: (v) => ({ r: new Map((v as [string, Rec][]).map(([k, r]) => [k, { ...r }])) }),
  },
  { members: MEMBERS },
);

const CONFIG: Partial<ReplicationConfig> = {
  flushIntervalMs: 10,
  flushMaxEntries: 8,
  heartbeatTimeoutMs: 60,
  ackTimeoutMs: 20,
  maxRetransmits: 2,
  requestTimeoutMs: 40,
  callDeadlineMs: 6000,
  forwardDelayMs: 1,
  // The failover paths assume a reply's state information reaches the backup within their windows
  // (docs/PROTOCOL.md: forwardWindowMs, processCrashTransitMs): sized for this scenario's worst delay
  // (20 ms + a 35 ms spike). Beyond them the core reports `lost-entries` (checked below).
  processCrashTransitMs: 60,
} as Partial<ReplicationConfig>;

interface Slot {
  name: string;
  node: SimNode;
  address: string;
  peer: string;
  replica: Replica<CausalState<unknown>> | undefined;
  stats: () => { reissued: number; duplicates: number };
}

/** Run one seed of the causal scenario (see the top of this file for what it checks). */
export async function runCausalSimulation(options: CausalSimulationOptions): Promise<CausalSimulationResult> {
  const variant = options.variant ?? 'correct';
  if (!(variant in CAUSAL_VARIANTS)) throw new RangeError(`unknown causal variant "${variant}"`);
  const sim = new Simulation({ seed: options.seed });
  const rng = sim.random;
  const sched = sim.scheduler;
  const failures: string[] = [];
  const faults: string[] = [];
  const f = sim.network.faults;
  f.minDelayMs = 0.2;
  f.maxDelayMs = rng.pick([1, 5, 20]);
  f.spikeRate = rng.pick([0, 0.02, 0.1]);
  f.spikeMs = rng.between(5, 35);
  f.lossRate = rng.pick([0, 0, 0.01]);
  f.duplicateRate = rng.pick([0, 0.01]);
  f.reorderRate = rng.pick([0, 0.05]);

  const pairs = {
    handler: ['sim://ha', 'sim://hb'] as const,
    resource: ['sim://ra', 'sim://rb'] as const,
  };
  const slots: Slot[] = [];
  let held = 0;
  const makeSlot = (
    name: string,
    service: typeof handler | typeof resource,
    address: string,
    peer: string,
    hint: 'primary' | 'backup',
  ): Slot => {
    const node = sim.node(name);
    const slot: Slot = { name, node, address, peer, replica: undefined, stats: () => ({ reissued: 0, duplicates: 0 }) };
    const { replica, runtime } = createCausalReplica({
      service: service as typeof handler,
      env: node.env(),
      listen: address,
      peer,
      roleHint: hint,
      nodeId: name,
      config: CONFIG,
      clientConfig: CONFIG,
      members: pairs,
      holdTimeoutMs: 30_000,
      wrapHooks: (hooks) => ({
        ...hooks,
        admit(request, state) {
          const ok = hooks.admit!(request, state);
          if (!ok) held++;
          return variant === 'no-causal-wait' ? true : ok;
        },
      }),
    });
    replica.on((e) => {
      if (e.type === 'lost-entries') failures.push(`lost: ${name} reported lost entries ${e.seqs.join(', ')} (epoch ${e.epoch})`);
      if (e.type === 'divergence') failures.push(`divergence at ${name}, seq ${e.seq}`);
    });
    slot.replica = replica;
    slot.stats = () => runtime.stats();
    slots.push(slot);
    return slot;
  };
  // The broken dedup: a re-issue (n ≤ delivered) is applied as if new (on both replicas alike).
  const resourceService =
    variant === 'no-outbound-dedup'
      ? {
          ...resource,
          apply(
            state: Parameters<typeof resource.apply>[0],
            req: Parameters<typeof resource.apply>[1],
            ctx: Parameters<typeof resource.apply>[2],
          ) {
            if (req.o !== undefined && req.o[1] <= (state.delivered[req.o[0]] ?? 0)) state.delivered[req.o[0]] = req.o[1] - 1;
            return resource.apply(state, req, ctx);
          },
        }
      : resource;
  const ha = makeSlot('ha', handler, pairs.handler[0], pairs.handler[1], 'primary');
  const hb = makeSlot('hb', handler, pairs.handler[1], pairs.handler[0], 'backup');
  const ra = makeSlot('ra', resourceService, pairs.resource[0], pairs.resource[1], 'primary');
  const rb = makeSlot('rb', resourceService, pairs.resource[1], pairs.resource[0], 'backup');

  const crash = (slot: Slot, why: string): void => {
    if (slot.node.state === 'down') return;
    faults.push(`${sched.now.toFixed(1)}ms SIGKILL ${slot.name} (${why})`);
    slot.node.crash();
  };
  const primaryOf = (a: Slot, b: Slot): Slot | undefined =>
    [a, b].find((s) => s.node.state !== 'down' && (s.replica!.status().role === 'primary' || s.replica!.status().role === 'solo-primary'));

  // Faults: at most one SIGKILL per pair (no restarts).
  const handlerFault = rng.pick(['none', 'timed', 'after-reply'] as const);
  const resourceFault = rng.pick(['none', 'timed'] as const);
  const handlerKillAt = rng.between(20, 400);
  const resourceKillAt = rng.between(20, 400);
  const afterReplyNo = rng.int(1, 6);
  let repliesSeen = 0;
  if (handlerFault === 'after-reply') {
    sim.network.onTransmit = (from, to, bytes) => {
      if (from !== ha.node || !to.name.startsWith('c')) return;
      let m: ReturnType<typeof codec.decode>;
      try {
        m = codec.decode(bytes);
      } catch {
        return;
      }
      if (m.t !== 'rep' || m.seq === 0) return;
      if (++repliesSeen === afterReplyNo) crash(ha, `after its reply no. ${afterReplyNo}, before its outbound message left`);
    };
  }

  const flowsPerClient = options.flowsPerClient ?? 8;
  const clientCount = rng.int(2, 3);
  const acked = { allocs: [] as string[], uses: [] as string[] };
  let failedFlows = 0;

  const sleep = (env: ReturnType<SimNode['env']>, ms: number): Promise<void> => new Promise((res) => env.setTimer(ms, res));

  const main = async (): Promise<void> => {
    await Promise.all(slots.filter((s) => s.name.endsWith('a')).map((s) => s.replica!.start()));
    await Promise.all(slots.filter((s) => s.name.endsWith('b')).map((s) => s.replica!.start()));
    const timed: Promise<void>[] = [];
    const envF = sim.node('faults').env();
    if (handlerFault === 'timed')
      timed.push(sleep(envF, handlerKillAt).then(() => void crashPrimary(ha, hb, 'handler primary, at a random time')));
    if (resourceFault === 'timed')
      timed.push(sleep(envF, resourceKillAt).then(() => void crashPrimary(ra, rb, 'resource primary, at a random time')));
    const clients = Array.from({ length: clientCount }, (_, c) => runClient(`c${c + 1}`));
    await Promise.all([...clients, ...timed]);
    // Quiescence: re-issues, confirmations and flushes settle.
    await sleep(envF, 2000);
  };
  const crashPrimary = (a: Slot, b: Slot, why: string): void => {
    const p = primaryOf(a, b);
    if (p) crash(p, why);
  };
  const runClient = async (name: string): Promise<void> => {
    const node = sim.node(name);
    const env = node.env();
    const session = new CausalSession(MEMBERS);
    const h = session.client(createClient({ service: handler, env, servers: pairs.handler, config: CONFIG }), 'handler');
    const r = session.client(createClient({ service: resource, env, servers: pairs.resource, config: CONFIG }), 'resource');
    for (let i = 0; i < flowsPerClient; i++) {
      const id = `${name}-${i}`;
      try {
        await h.call({ id });
      } catch {
        failedFlows++;
        continue; // outcome unknown
      }
      acked.allocs.push(id);
      try {
        await r.call({ op: 'use', id });
        acked.uses.push(id);
      } catch (err) {
        const msg = (err as Error).message;
        if (/NotInitialised/.test(msg))
          failures.push(`causal order: ${name}'s use of ${id} was applied before its initialisation (the alloc was acknowledged first)`);
        else failedFlows++;
      }
      await sleep(env, rng.between(0, 10));
    }
    await h.close();
    await r.close();
  };

  let finished = false;
  void main().then(
    () => (finished = true),
    (err: unknown) => {
      failures.push(`harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      finished = true;
    },
  );
  const maxVirtualMs = options.maxVirtualMs ?? 60_000;
  try {
    await sim.run({ stopWhen: () => finished, until: maxVirtualMs, maxEvents: 2_000_000 });
  } catch (err) {
    failures.push(`${(err as Error).message} at virtual ${sched.now.toFixed(3)}ms`);
  }
  if (!finished) failures.push(`the run did not finish within ${maxVirtualMs} virtual ms`);
  for (const e of sched.errors) failures.push(`exception in ${e.label} at ${e.time.toFixed(1)}ms: ${String(e.error)}`);

  // ---- checks at quiescence
  const serving = (a: Slot, b: Slot): Slot | undefined => primaryOf(a, b);
  const hp = serving(ha, hb);
  const rp = serving(ra, rb);
  if (!hp) failures.push('no serving handler replica at quiescence');
  if (!rp) failures.push('no serving resource replica at quiescence');
  if (hp && rp) {
    const hs = hp.replica!.state as unknown as CausalState<{ allocated: Set<string> }>;
    const rs = rp.replica!.state as unknown as CausalState<{ r: Map<string, Rec> }>;
    for (const [id, rec] of rs.inner.r) {
      if (rec.inits > 1) failures.push(`exactly once: the initialisation of ${id} was applied ${rec.inits} times`);
      if (rec.firstUseSeq !== 0 && (rec.initSeq === 0 || rec.initSeq > rec.firstUseSeq))
        failures.push(`causal order: ${id} was used at seq ${rec.firstUseSeq} before its initialisation (seq ${rec.initSeq || 'never'})`);
    }
    for (const id of acked.allocs) {
      if (!hs.inner.allocated.has(id)) failures.push(`lost: the acknowledged allocation of ${id} is not in the handler's state`);
      if ((rs.inner.r.get(id)?.inits ?? 0) !== 1)
        failures.push(`lost: the acknowledged allocation of ${id} was never initialised at the resource`);
    }
    for (const id of acked.uses)
      if ((rs.inner.r.get(id)?.uses ?? 0) < 1) failures.push(`lost: the acknowledged use of ${id} is not counted`);
    if (hs.outbox.length > 0) failures.push(`the handler's outbox still holds ${hs.outbox.length} unconfirmed messages at quiescence`);
    for (const [a, b] of [
      [ha, hb],
      [ra, rb],
    ] as const) {
      if (a.node.state === 'down' || b.node.state === 'down') continue;
      const sa = a.replica!.status();
      const sb = b.replica!.status();
      if (sa.appliedSeq === sb.appliedSeq && sa.stateDigest !== sb.stateDigest)
        failures.push(`convergence: ${a.name} and ${b.name} differ at seq ${sa.appliedSeq}`);
    }
  }
  for (const s of slots) if (s.node.state !== 'down') void s.replica!.stop().catch(() => undefined);

  return {
    seed: options.seed,
    variant,
    ok: failures.length === 0,
    failures,
    faults: [
      `net delay 0.2–${f.maxDelayMs}ms, spikes ${f.spikeRate}×${f.spikeMs.toFixed(0)}ms, loss ${f.lossRate}, dup ${f.duplicateRate}, reorder ${f.reorderRate}`,
      ...faults,
    ],
    events: sched.eventCount,
    virtualMs: sched.now,
    traceHash: sched.traceHash,
    flows: { acknowledged: acked.allocs.length, failed: failedFlows },
    held,
    reissued: slots.reduce((n, s) => n + s.stats().reissued, 0),
    duplicates: slots.reduce((n, s) => n + s.stats().duplicates, 0),
  };
}
