/**
 * Target `core`: a live replica pair of @tandem/core (createReplica × 2, primary `a`, backup `b`) on the
 * in-memory transport, on virtual time, with an honest client (createClient) calling between attacker
 * inputs; attackers dial the replicas' listen address raw (unauthenticated) and send:
 * - structure-aware messages of EVERY type in packages/core/src/messages.ts (generated from its zod
 *   schemas, so new types are covered without touching this file) with hostile values: epochs at and
 *   above the pair's (resolved when sent), sequence numbers around the applied one, the right service
 *   name, the replicas' own node ids, forged entries and packed entry lists, random nonces and MACs;
 * - the same with fields deleted, retyped or added;
 * - random bytes, as framed messages and as a raw byte stream (framing level).
 * Every input ends with an honest call; then the pair is given time to settle and checked against a
 * model of the honest writes: the honest call must succeed with the right answer (honest failure
 * otherwise), and roles, epochs, the honest part of the state, the backup's copy of the primary's state
 * and the divergence counters must be as before (state changed otherwise — so are role, step-down,
 * takeover, peer-faulty, peer-joined, divergence and lost-entries events). Exceptions escaping timers or
 * deliveries, unhandled rejections and "handler-failed" logs (a handler threw) are crashes; an input whose
 * handling keeps the scheduler busy without end, or an honest call that never settles, is a hang.
 *
 * One live pair serves many inputs; it is rebuilt only after an input broke it (counted as `restarts`).
 * With `--core-security on` (auto: when ReplicaOptions has `security.clusterKeys`) the pair shares a
 * cluster key: the attacker does not know it. Without, forged peer messages are expected to disrupt the
 * pair (the report says so).
 */
import fc from 'fast-check';
import { z } from 'zod';
import {
  createClient,
  createReplica,
  defineService,
  type Client,
  type ClientDiagnostics,
  type Replica,
  type ReplicaEvent,
  type ReplicationConfig,
} from '@tandem/core';
import { codec, encodeValue, entrySchema, helloSchema, messageSchema } from '@tandem/core/internal';
import type { Connection } from '@tandem/transport';
import { crashFinding, normalise } from '../lib/async-errors.js';
import type { Finding, FuzzTarget, InputOutcome, TargetOptions } from '../lib/types.js';
import { VirtualWorld } from '../lib/vtime.js';
import { anyValue, mutateValue, valueMutation, zodArbitrary, type Hints, type ValueMutation } from '../lib/zod-arb.js';

export const SERVICE_NAME = 'fuzz-counter';
const HONEST_KEYS = 4;

const addRequest = z.object({ op: z.literal('add'), k: z.string().max(16), n: z.number().int().min(-1000).max(1000) });
const service = defineService({
  name: SERVICE_NAME,
  request: addRequest,
  reply: z.object({ v: z.number() }),
  initialState: () => new Map<string, number>(),
  apply(state: Map<string, number>, req) {
    const v = (state.get(req.k) ?? 0) + req.n;
    state.set(req.k, v);
    return { v };
  },
  snapshot: (state) => [...state.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
  restore: (snap) => new Map(snap as [string, number][]),
});

/** Default timings (docs/PROTOCOL.md) with a short call deadline and a small dedup window (cheap digests). */
const CONFIG: Partial<ReplicationConfig> = { callDeadlineMs: 1500, dedupWindow: 16 };

// ---------------------------------------------------------------- inputs

/** A value resolved when sent: the pair's epoch or applied seq plus `d`. */
type Sym = { $sym: 'epoch' | 'seq'; d: number };
/** Entries msgpack-packed when sent (a forged `fwd.packed[].bytes`). */
type Pack = { $pack: unknown[] };

type Payload = { m: unknown; mut: ValueMutation[] } | { raw: Uint8Array };
type Step =
  | { s: 'attack'; to: 'a' | 'b'; conn: number; hello: unknown | null; msgs: Payload[] }
  | { s: 'raw'; to: 'a' | 'b'; preamble: boolean; bytes: Uint8Array }
  | { s: 'honest'; k: number; n: number }
  | { s: 'wait'; ms: number };
export interface CoreInput {
  steps: Step[];
  /** The honest call every input ends with. */
  k: number;
  n: number;
}

const sym = (kind: Sym['$sym'], ds: number[]): fc.Arbitrary<Sym> => fc.constantFrom(...ds).map((d) => ({ $sym: kind, d }));

function hints(): Hints {
  const epoch = fc.oneof(
    { weight: 6, arbitrary: sym('epoch', [-1, 0, 0, 1, 1, 2, 1000]) },
    { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 31, Number.MAX_SAFE_INTEGER) },
  );
  const seq = fc.oneof(
    { weight: 6, arbitrary: sym('seq', [-1, 0, 1, 1, 2, 50]) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, 2 ** 31, Number.MAX_SAFE_INTEGER) },
  );
  const attackerBody = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ op: fc.constant('add'), k: fc.constantFrom('x0', 'x1', 'x2'), n: fc.integer({ min: -9, max: 9 }) }),
    },
    { weight: 1, arbitrary: anyValue },
  );
  const h: Hints = {
    epoch,
    entryEpoch: epoch,
    seq,
    upToSeq: seq,
    haveSeq: seq,
    appliedSeq: seq,
    service: fc.oneof({ weight: 8, arbitrary: fc.constant(SERVICE_NAME) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
    nodeId: fc.constantFrom('a', 'b', 'mem://a', 'mem://b', 'evil', 'c'),
    clientId: fc.constantFrom('evil-client', '0123456789abcdef0123456789abcdef', 'x'),
    body: attackerBody,
    digest: fc.oneof(fc.constantFrom('', '0000000000000000'), fc.stringMatching(/^[0-9a-f]{16}$/)),
    snapshot: fc.oneof(fc.constant([['x0', 5]]), fc.constant([['h0', 1000]]), anyValue),
  };
  const entry = zodArbitrary(entrySchema, h);
  h['bytes'] = fc.oneof(
    { weight: 3, arbitrary: fc.array(entry, { maxLength: 3 }).map((e): Pack => ({ $pack: e })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }) },
  );
  return h;
}

function arbitrary(): fc.Arbitrary<CoreInput> {
  const h = hints();
  const message = zodArbitrary(messageSchema, h);
  const hello = zodArbitrary(helloSchema, h);
  const payload: fc.Arbitrary<Payload> = fc.oneof(
    { weight: 12, arbitrary: fc.record({ m: message, mut: fc.constant([] as ValueMutation[]) }) },
    { weight: 4, arbitrary: fc.record({ m: message, mut: fc.array(valueMutation, { minLength: 1, maxLength: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ raw: fc.uint8Array({ maxLength: 64 }) }) },
  );
  const to = fc.constantFrom('a' as const, 'b' as const);
  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        s: fc.constant('attack' as const),
        to,
        conn: fc.nat(2),
        hello: fc.option(hello, { freq: 5 }),
        msgs: fc.array(payload, { minLength: 1, maxLength: 4 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ s: fc.constant('raw' as const), to, preamble: fc.boolean(), bytes: fc.uint8Array({ maxLength: 200 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ s: fc.constant('honest' as const), k: fc.nat(HONEST_KEYS - 1), n: fc.integer({ min: -50, max: 50 }) }),
    },
    { weight: 2, arbitrary: fc.record({ s: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 160 }) }) },
  );
  return fc.record({
    steps: fc.array(step, { minLength: 1, maxLength: 5 }),
    k: fc.nat(HONEST_KEYS - 1),
    n: fc.integer({ min: -50, max: 50 }),
  });
}

/** Replace symbols by values of the live pair; pack forged entry lists. */
function resolveSyms(v: unknown, ctx: { epoch: number; seq: number }): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x) => resolveSyms(x, ctx));
  const o = v as Record<string, unknown>;
  if (typeof o['$sym'] === 'string')
    return Math.max(0, (o['$sym'] === 'epoch' ? ctx.epoch : ctx.seq) + (typeof o['d'] === 'number' ? o['d'] : 0));
  if (Array.isArray(o['$pack'])) return encodeValue(resolveSyms(o['$pack'], ctx));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k] = resolveSyms(o[k], ctx);
  return out;
}

// ---------------------------------------------------------------- the world

interface NodeWatch {
  events: ReplicaEvent[];
}

export interface CoreWorld {
  vw: VirtualWorld;
  a: Replica<Map<string, number>>;
  b: Replica<Map<string, number>>;
  client: Client<z.infer<typeof addRequest>, { v: number }> & ClientDiagnostics;
  model: Map<string, number>;
  epoch: number;
  watch: Record<'a' | 'b', NodeWatch>;
  security: boolean;
  baseline: { aDivergences: number; bDivergences: number };
}

let worldNo = 0;

function securityOptions(options: TargetOptions, vw: VirtualWorld): Record<string, unknown> {
  if (options.coreSecurity !== 'on') return {};
  const key = new Uint8Array(32);
  for (let i = 0; i < key.length; i++) key[i] = Math.floor(vw.random() * 256);
  return { security: { clusterKeys: [key] } };
}

async function setup(options: TargetOptions): Promise<CoreWorld> {
  const vw = new VirtualWorld((options.seed ^ Math.imul(++worldNo, 0x9e3779b1)) >>> 0);
  const sec = securityOptions(options, vw);
  const make = (name: 'a' | 'b', roleHint: 'primary' | 'backup') =>
    createReplica({
      service,
      env: vw.env(name, vw.net.host(name)),
      listen: `mem://${name}`,
      peer: `mem://${name === 'a' ? 'b' : 'a'}`,
      roleHint,
      nodeId: name,
      config: CONFIG,
      ...sec,
    } as Parameters<typeof createReplica<Map<string, number>, z.infer<typeof addRequest>, { v: number }>>[0]);
  const a = make('a', 'primary');
  const b = make('b', 'backup');
  const watch = { a: { events: [] as ReplicaEvent[] }, b: { events: [] as ReplicaEvent[] } };
  a.on((e) => watch.a.events.push(e));
  b.on((e) => watch.b.events.push(e));
  void a.start().catch(() => undefined);
  void b.start().catch(() => undefined);
  const paired = (): boolean => a.status().role === 'primary' && b.status().role === 'backup';
  const r = await vw.run(5000, paired, 100_000);
  if (!paired()) throw new Error(`the pair did not form (${a.status().role}/${b.status().role}, ${r})`);
  const client = createClient({ service, env: vw.env('c', vw.net.host('c')), servers: ['mem://a', 'mem://b'], config: CONFIG });
  const world: CoreWorld = {
    vw,
    a,
    b,
    client,
    model: new Map(),
    epoch: a.status().epoch,
    watch,
    security: options.coreSecurity === 'on',
    baseline: { aDivergences: 0, bDivergences: 0 },
  };
  const first = await honestCall(world, 0, 0);
  if (!first.ok) throw new Error(`the first honest call failed: ${first.message}`);
  await vw.run(60);
  vw.logs.length = 0;
  vw.takeCallbackErrors();
  watch.a.events.length = 0;
  watch.b.events.length = 0;
  world.baseline = { aDivergences: a.status().divergences, bDivergences: b.status().divergences };
  return world;
}

async function teardown(w: CoreWorld): Promise<void> {
  void w.client.close().catch(() => undefined);
  void w.a.stop().catch(() => undefined);
  void w.b.stop().catch(() => undefined);
  await w.vw.run(50, undefined, 50_000).catch(() => undefined);
}

type CallResult = { ok: true } | { ok: false; kind: 'honest-failure' | 'hang'; signature: string; message: string };

/** One honest call, checked against the model (which it updates on success). */
async function honestCall(w: CoreWorld, k: number, n: number): Promise<CallResult> {
  const key = `h${k}`;
  let settled: { v?: number; err?: Error } | undefined;
  w.client.callWithInfo({ op: 'add', k: key, n }).then(
    (r) => (settled = { v: r.reply.v }),
    (err: Error) => (settled = { err }),
  );
  const r = await w.vw.run(3000, () => settled !== undefined);
  if (r === 'budget')
    return {
      ok: false,
      kind: 'hang',
      signature: 'event budget exceeded during an honest call',
      message: 'more than 20 000 events while an honest call was pending (livelock)',
    };
  if (settled === undefined)
    return {
      ok: false,
      kind: 'hang',
      signature: 'honest call never settled',
      message: 'an honest call neither resolved nor rejected within 3 s (virtual) — past its 1.5 s deadline',
    };
  if (settled.err)
    return {
      ok: false,
      kind: 'honest-failure',
      signature: `honest call failed: ${settled.err.name}`,
      message: `honest call add(${key}, ${n}) failed: ${settled.err.name}: ${settled.err.message}`,
    };
  const expected = (w.model.get(key) ?? 0) + n;
  w.model.set(key, expected);
  if (settled.v !== expected) {
    return {
      ok: false,
      kind: 'honest-failure',
      signature: 'honest call got a wrong answer',
      message: `add(${key}, ${n}) answered ${settled.v}, the model says ${expected}`,
    };
  }
  return { ok: true };
}

function sameMap(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

const STATE_EVENTS = new Set(['role', 'takeover', 'step-down', 'peer-faulty', 'peer-joined', 'divergence', 'lost-entries']);
/** Error-level logs that mean a component caught its own bug. */
const CRASH_LOGS = new Set([
  'handler-failed',
  'encode-failed',
  'listener-failed',
  'accept-failed',
  'applied-listener-failed',
  'state-sync-attach-failed',
  'state-sync-detach-failed',
  'transfer-accept-failed',
]);

async function run(w: CoreWorld, input: CoreInput): Promise<InputOutcome> {
  const findings: Finding[] = [];
  const conns = new Map<string, Connection>();
  const evilNet = w.vw.net.host('evil');
  let ctxCache: { epoch: number; seq: number } | undefined;
  const ctx = (): { epoch: number; seq: number } => {
    if (ctxCache === undefined) {
      const sa = w.a.status();
      const sb = w.b.status();
      ctxCache = { epoch: Math.max(sa.epoch, sb.epoch), seq: Math.max(sa.appliedSeq, sb.appliedSeq) };
    }
    return ctxCache;
  };
  let hung = false;
  const advance = async (ms: number): Promise<void> => {
    if ((await w.vw.run(ms)) === 'budget') hung = true;
  };
  const honest = async (k: number, n: number): Promise<void> => {
    const r = await honestCall(w, k, n);
    if (!r.ok) findings.push({ kind: r.kind, signature: r.signature, message: r.message });
  };

  for (const step of input.steps) {
    if (hung) break;
    ctxCache = undefined;
    switch (step.s) {
      case 'attack': {
        const slot = `${step.to}${step.conn}`;
        let conn = conns.get(slot);
        if (conn === undefined || conn.isClosed) {
          let dialled: Connection | undefined;
          evilNet.dial(`mem://${step.to}`, { timeoutMs: 100 }).then(
            (c) => (dialled = c),
            () => undefined,
          );
          await advance(1);
          if (dialled === undefined) break;
          conn = dialled;
          conns.set(slot, conn);
          void (async () => {
            try {
              for await (const _ of conn) void _; // the attacker reads (and ignores) what it is sent
            } catch {
              // closed
            }
          })();
          if (step.hello !== null) void conn.send(codec.encode(resolveSyms(step.hello, ctx()) as never)).catch(() => undefined);
        }
        for (const p of step.msgs) {
          let bytes: Uint8Array;
          if ('raw' in p) bytes = p.raw;
          else {
            const value = resolveSyms(p.mut.length > 0 ? mutateValue(p.m, p.mut) : p.m, ctx());
            try {
              bytes = encodeValue(value);
            } catch {
              continue; // not encodable (the attacker's problem)
            }
          }
          void conn.send(bytes).catch(() => undefined);
        }
        await advance(1);
        break;
      }
      case 'raw': {
        try {
          const peer = w.vw.net.dialRaw(`mem://${step.to}`, 'evil');
          if (step.preamble) peer.write(Uint8Array.of(0x54, 0x4e, 0x44, 0x4d, 1, 0, 0, 0));
          peer.write(step.bytes);
          peer.end();
        } catch {
          // not listening
        }
        await advance(1);
        break;
      }
      case 'honest':
        await honest(step.k, step.n);
        break;
      case 'wait':
        await advance(step.ms);
        break;
    }
  }
  for (const c of conns.values()) c.abort();
  if (!hung) await honest(input.k, input.n);
  if (!hung) await advance(30);
  if (!hung && w.b.status().appliedSeq !== w.a.status().appliedSeq) {
    // Slow to catch up (or not at all): give it a few more flush intervals.
    for (let i = 0; i < 8 && !hung && w.b.status().appliedSeq !== w.a.status().appliedSeq; i++) await advance(50);
  }
  if (hung)
    findings.push({
      kind: 'hang',
      signature: 'event budget exceeded (livelock)',
      message: 'more than 20 000 scheduler events in one step of the input',
    });

  // Exceptions that escaped callbacks, and components that caught their own bugs.
  for (const err of w.vw.takeCallbackErrors()) findings.push(crashFinding('exception in a timer or delivery callback', err));
  for (const l of w.vw.logs) {
    if (l.level !== 'error') continue;
    if (CRASH_LOGS.has(l.event)) {
      const e = String(l.fields?.['error'] ?? '');
      findings.push({
        kind: 'crash',
        signature: `${l.event} on ${l.node}: ${normalise(e.split('\n')[0] ?? '')}`,
        message: `${l.node} logged ${l.event}: ${e.split('\n')[0]}`,
        stack: e,
      });
    }
  }
  w.vw.logs.length = 0;

  // Roles, epochs, state, and events that only attacks could have caused.
  const sa = w.a.status();
  const sb = w.b.status();
  const changed = (signature: string, message: string): void => void findings.push({ kind: 'state-changed', signature, message });
  if (sa.role !== 'primary' || sb.role !== 'backup')
    changed(`roles changed to ${sa.role}/${sb.role}`, `a is ${sa.role} (was primary), b is ${sb.role} (was backup)`);
  if (sa.epoch !== w.epoch || sb.epoch !== w.epoch) changed('epoch changed', `epochs a ${sa.epoch}, b ${sb.epoch}; was ${w.epoch}`);
  const honestPart = new Map([...w.a.state].filter(([k]) => k.startsWith('h')));
  if (sa.role === 'primary' && !sameMap(honestPart, w.model)) {
    changed(
      'primary state differs from the honest writes',
      `primary's honest keys ${JSON.stringify([...honestPart])}, model ${JSON.stringify([...w.model])}`,
    );
  }
  if (sa.role === 'primary' && sb.role === 'backup' && (sb.appliedSeq !== sa.appliedSeq || sb.stateDigest !== sa.stateDigest)) {
    changed(
      sb.appliedSeq !== sa.appliedSeq ? 'backup behind the primary after settling' : 'backup state differs from the primary',
      `primary seq ${sa.appliedSeq} ${sa.stateDigest}, backup seq ${sb.appliedSeq} ${sb.stateDigest}`,
    );
  }
  if (sa.divergences !== w.baseline.aDivergences || sb.divergences !== w.baseline.bDivergences) {
    changed(
      'divergence reported',
      `divergences a ${sa.divergences}, b ${sb.divergences} (were ${w.baseline.aDivergences}, ${w.baseline.bDivergences})`,
    );
  }
  for (const node of ['a', 'b'] as const) {
    for (const e of w.watch[node].events)
      if (STATE_EVENTS.has(e.type))
        changed(`${e.type} event on ${node === 'a' ? 'the primary' : 'the backup'}`, `${node}: ${JSON.stringify(e)}`);
    w.watch[node].events.length = 0;
  }
  const broken = hung || findings.some((f) => f.kind !== 'crash');
  return { findings: dedupe(findings), broken };
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => (seen.has(f.signature) ? false : (seen.add(f.signature), true)));
}

export function coreTarget(): FuzzTarget<CoreInput, CoreWorld> {
  return {
    name: 'core',
    description: 'a live replica pair, an honest client and unauthenticated attackers (@tandem/core)',
    honest: true,
    state: true,
    stateful: true,
    arbitrary: () => arbitrary(),
    setup,
    run,
    teardown,
    notes: (_w, options) =>
      options.coreSecurity === 'on'
        ? ['core security on: the pair shares a cluster key the attackers do not know']
        : [
            'core security off (no peer authentication in @tandem/core, or --core-security off): forged peer messages are EXPECTED to disrupt the pair until auth lands',
          ],
  };
}
