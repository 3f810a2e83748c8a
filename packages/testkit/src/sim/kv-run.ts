/**
 * One deterministic simulation run of the REAL replication stack (createReplica / createClient from
 * @tandem/core, unchanged) serving the simulated key-value service: two replicas on two hosts, a few
 * clients (one co-located with each replica, so a host crash takes a client with it), a workload, and
 * faults one at a time — each followed by recovery (a crashed server restarts and rejoins as backup)
 * before the next. At the end every invariant is checked:
 *   1. the history of operations is linearizable (acknowledged ones must be reflected; unknown outcomes
 *      may or may not be), including final reads of every key;
 *   2. no request was applied twice (per-(clientId, requestId) counts inside the replicated state);
 *   3. the replicas converged at quiescence (equal appliedSeq and state digests), no divergence reported;
 *   4. liveness: after the last fault action, every operation completed within the computed bound.
 */
import {
  codec,
  computeTimingBounds,
  createClient,
  createReplica,
  errorName,
  resolveConfig,
  type Replica,
  type ReplicaEvent,
  type ReplicaOptions,
  type ReplicationConfig,
  type Role,
} from '@tandem/core';
import { checkKvHistory, type LinearizabilityReport } from '../linearizability/check.js';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import { faultsFor, VARIANTS, type FaultKind, type VariantSpec } from './faults.js';
import { createSimKvService, duplicateApplications, type SimKvReply, type SimKvRequest, type SimKvState } from './kv-service.js';
import type { NetworkStats } from './network.js';
import type { SimHost, SimNode } from './node.js';
import { Simulation, type LogLine } from './simulation.js';

export interface KvSimulationOptions {
  seed: number;
  /** A key of VARIANTS (default 'correct'). */
  variant?: string;
  /** Client processes (≥ 2: c0 lives on the first replica's host, c1 on the second's). Default: the seed picks 2–4. */
  clients?: number;
  /** Operations per client (default 20). */
  opsPerClient?: number;
  keys?: number;
  /** Faults per run: the seed picks 1..maxFaults (default 3). */
  maxFaults?: number;
  /** Draw faults from these kinds instead of the variant's. */
  faultKinds?: readonly FaultKind[];
  /** Overrides of the replication config (default: the core defaults with the seed's piggyback mode). */
  config?: Partial<ReplicationConfig>;
  recordTrace?: boolean;
  /** Give up (failure) when the run has not finished by this virtual time. Default 120 000 ms. */
  maxVirtualMs?: number;
  /** Give up (failure) after this many events (a livelock in zero virtual time). Default 400 000. */
  maxEvents?: number;
}

export interface KvSimulationResult {
  seed: number;
  variant: string;
  ok: boolean;
  failures: string[];
  piggyback: 'seq-digest' | 'entries';
  /** What was injected, with virtual times. */
  faults: string[];
  history: KvHistoryOp[];
  linearizability: LinearizabilityReport;
  /** Hash of every executed event (equal for equal runs). */
  traceHash: string;
  trace: readonly string[];
  events: number;
  virtualMs: number;
  /** Worst latency of an operation, measured from the later of its call and the last disruption before
   * its return (completions inside message-chaos windows excluded), and the bound it must meet. */
  maxLatencyAfterFaultMs: number;
  livenessBoundMs: number;
  network: NetworkStats;
  /** How often each replica event happened (coverage: did takeovers, step-downs, rejoins occur?). */
  replicaEvents: Record<string, number>;
  /** The last log lines and every error line (for failure reports). */
  logs: LogLine[];
  errorLogs: LogLine[];
}

const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);

interface ReplicaSlot {
  name: string;
  node: SimNode;
  address: string;
  peer: string;
  replica: Replica<SimKvState> | undefined;
}

interface ClientSlot {
  name: string;
  node: SimNode;
  remaining: number;
  finished: boolean;
  incarnation: number;
}

function isForward(bytes: Uint8Array): boolean {
  try {
    return codec.decode(bytes).t === 'fwd';
  } catch {
    return false;
  }
}

export async function runKvSimulation(options: KvSimulationOptions): Promise<KvSimulationResult> {
  const variantName = options.variant ?? 'correct';
  const variant: VariantSpec | undefined = VARIANTS[variantName];
  if (!variant) throw new RangeError(`unknown variant "${variantName}" (known: ${Object.keys(VARIANTS).join(', ')})`);
  const sim = new Simulation({ seed: options.seed, recordTrace: options.recordTrace ?? false });
  const rng = sim.random;
  const sched = sim.scheduler;
  const piggyback = options.config?.piggyback ?? variant.piggyback ?? (rng.chance(0.5) ? 'entries' : 'seq-digest');
  // The seed also varies the flush batch size (flush on every entry … the default) unless configured.
  const flushMaxEntries = options.config?.flushMaxEntries ?? rng.pick([1, 4, resolveConfig({}).flushMaxEntries]);
  const config: Partial<ReplicationConfig> = { ...options.config, piggyback, flushMaxEntries };
  const bounds = computeTimingBounds(config);
  const cfg = resolveConfig(config);
  // worstCaseFailoverMs counts no transit time; the config assumes a round trip fits in ackTimeoutMs.
  const livenessBoundMs = bounds.worstCaseFailoverMs + cfg.ackTimeoutMs;
  const faultKinds = options.faultKinds ?? faultsFor(variant, piggyback);
  if (faultKinds.length === 0) throw new RangeError('no fault kinds to draw from');
  const service = createSimKvService();
  const failures: string[] = [];
  const faultLog: string[] = [];
  const history: KvHistoryOp[] = [];
  const replicaEvents: { time: number; node: string; event: ReplicaEvent }[] = [];
  /** Moments the service may be disrupted (crash, pause start, client resume, chaos start/end, sever):
   * an operation must complete within the liveness bound of the later of its call and the last of these
   * before its return. Restarts and the resumption of a paused server are not disruptions. */
  const disruptions: number[] = [];
  /** Chaos windows: loss beyond maxRetransmits is outside the bound's assumptions; completions inside are exempt. */
  const chaosWindows: [number, number][] = [];
  /** Client incarnations that died with the primary's host, and when. */
  const diedWithPrimary: { label: string; at: number }[] = [];
  let unavailable = 0;

  const noteFault = (what: string, disruptive = true) => {
    faultLog.push(`${sched.now.toFixed(1)}ms ${what}`);
    sched.note(`fault ${what}`);
    if (disruptive) disruptions.push(sched.now);
  };
  const sleep = (ms: number) => new Promise<void>((r) => sched.after(ms, 'driver', r));
  const waitUntil = async (pred: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> => {
    const end = sched.now + timeoutMs;
    while (!pred()) {
      if (sched.now >= end) return false;
      await sleep(stepMs);
    }
    return true;
  };

  // ---- topology -----------------------------------------------------------------------------------
  const hostA = sim.host('hostA');
  const hostB = sim.host('hostB');
  const replicas: ReplicaSlot[] = [
    { name: 'ra', node: sim.node('ra', hostA), address: 'sim://ra', peer: 'sim://rb', replica: undefined },
    { name: 'rb', node: sim.node('rb', hostB), address: 'sim://rb', peer: 'sim://ra', replica: undefined },
  ];
  const servers = [replicas[0]!.address, replicas[1]!.address] as const;
  const nClients = options.clients ?? rng.int(2, 4);
  const opsPerClient = options.opsPerClient ?? 20;
  const nKeys = options.keys ?? 3;
  const clientHosts: (SimHost | string)[] = [hostA, hostB];
  const clients: ClientSlot[] = [];
  for (let i = 0; i < nClients; i++) {
    const name = `c${i}`;
    clients.push({ name, node: sim.node(name, clientHosts[i] ?? `host-${name}`), remaining: opsPerClient, finished: false, incarnation: 0 });
  }
  const clientNodes = new Set(clients.map((c) => c.node));

  const startReplica = (slot: ReplicaSlot, roleHint: 'primary' | 'backup'): void => {
    const opts: ReplicaOptions<SimKvState, SimKvRequest, SimKvReply> = {
      service,
      env: slot.node.env(),
      listen: slot.address,
      peer: slot.peer,
      roleHint,
      nodeId: slot.name,
      config,
    };
    if (variant.faultInjection) opts.faultInjection = variant.faultInjection;
    const replica = createReplica(opts);
    slot.replica = replica;
    const inc = slot.node.incarnation;
    replica.on((event) => {
      if (slot.node.incarnation !== inc) return;
      if (event.type === 'role' || event.type === 'takeover' || event.type === 'step-down' || event.type === 'divergence' || event.type === 'lost-entries') {
        sched.note(`${slot.name} ${event.type} ${'role' in event ? event.role : ''} ${'epoch' in event ? event.epoch : ''}`);
      }
      replicaEvents.push({ time: sched.now, node: slot.name, event });
    });
    void replica.start().catch((err: unknown) => {
      if (slot.node.incarnation === inc) failures.push(`${slot.name} failed to start: ${String(err)}`);
    });
  };
  const live = (s: ReplicaSlot) => s.node.state !== 'down' && s.replica !== undefined;
  const role = (s: ReplicaSlot): Role | undefined => (live(s) ? s.replica!.status().role : undefined);
  const primary = (): ReplicaSlot | undefined => {
    const serving = replicas.filter((s) => s.node.state === 'up' && SERVING.has(role(s)!));
    serving.sort((a, b) => b.replica!.status().epoch - a.replica!.status().epoch);
    return serving[0];
  };
  const backup = (): ReplicaSlot | undefined => replicas.find((s) => s.node.state === 'up' && role(s) === 'backup');
  const healthy = (): boolean => {
    const p = primary();
    const b = backup();
    return p !== undefined && b !== undefined && p !== b && role(p) === 'primary' && p.replica!.status().epoch === b.replica!.status().epoch;
  };

  // ---- workload -----------------------------------------------------------------------------------
  const runClient = (slot: ClientSlot): void => {
    const inc = slot.node.incarnation;
    const env = slot.node.env();
    const client = createClient({ service, env, servers, config });
    const label = `${slot.name}#${slot.incarnation}`;
    const pause = (ms: number) => new Promise<void>((r) => env.setTimer(ms, r));
    void (async () => {
      while (slot.remaining > 0) {
        await pause(rng.between(0, 15));
        const i = opsPerClient - slot.remaining;
        slot.remaining--;
        const key = `k${rng.int(0, nKeys - 1)}`;
        const r = rng.next();
        const req: SimKvRequest =
          r < 0.4 ? { op: 'get', key } : r < 0.6 ? { op: 'put', key, value: `${label}.${i};` } : { op: 'append', key, value: `${label}.${i};` };
        const rec: KvHistoryOp = { client: label, op: req.op, key, value: req.op === 'get' ? null : req.value, call: sched.now };
        history.push(rec);
        sched.note(`call ${label} ${req.op} ${key}`);
        try {
          const rep = await client.call(req);
          rec.return = sched.now;
          if (req.op === 'get') rec.value = rep.value;
          sched.note(`return ${label} ${req.op} ${key} ${rep.value ?? '∅'}`);
        } catch (err) {
          if (slot.node.incarnation !== inc) return;
          if (errorName(err) === 'ServiceUnavailableError') {
            unavailable++;
            failures.push(`liveness: ${label} ${req.op} ${key} called at ${rec.call.toFixed(1)}ms failed with ServiceUnavailableError at ${sched.now.toFixed(1)}ms`);
          } else failures.push(`${label} ${req.op} ${key}: unexpected ${errorName(err)}: ${(err as Error).message}`);
        }
      }
      if (slot.node.incarnation === inc) slot.finished = true;
    })();
  };
  const restartClient = (slot: ClientSlot): void => {
    if (slot.node.state !== 'down') return;
    slot.node.restart();
    slot.incarnation++;
    if (slot.remaining > 0) runClient(slot);
    else slot.finished = true;
  };
  const activeClients = () => clients.filter((c) => !c.finished && c.node.state === 'up');

  // ---- faults -------------------------------------------------------------------------------------
  const restartReplica = (slot: ReplicaSlot): void => {
    slot.node.restart();
    noteFault(`restart ${slot.name} (rejoins as backup)`, false);
    startReplica(slot, 'backup');
  };

  const injectFault = async (kind: FaultKind): Promise<void> => {
    const p = primary();
    const b = backup();
    switch (kind) {
      case 'crash-primary': {
        if (!p) return;
        p.node.crash();
        noteFault(`crash-primary ${p.name}`);
        await sleep(rng.between(20, 2 * bounds.takeoverMs));
        restartReplica(p);
        return;
      }
      case 'crash-primary-after-reply': {
        if (!p) return;
        let crashed = false;
        sim.network.onTransmit = (from, to) => {
          if (from === p.node && clientNodes.has(to) && !crashed) {
            crashed = true;
            sim.network.onTransmit = undefined;
            p.node.crash();
            noteFault(`crash-primary-after-reply ${p.name} (right after a send to ${to.name})`);
          }
        };
        await waitUntil(() => crashed, 500);
        sim.network.onTransmit = undefined;
        if (!crashed) {
          p.node.crash();
          noteFault(`crash-primary ${p.name} (no reply seen)`);
        }
        await sleep(rng.between(20, 2 * bounds.takeoverMs));
        restartReplica(p);
        return;
      }
      case 'crash-primary-slow-forward': {
        if (!p || !b) return;
        let victim: SimNode | undefined;
        sim.network.onTransmit = (from, to) => {
          if (from === p.node && clientNodes.has(to) && victim === undefined) {
            victim = to;
            sim.network.onTransmit = undefined;
            p.node.crash();
            noteFault(`crash-primary-slow-forward ${p.name} (right after a send to ${to.name}; its next ${cfg.maxRetransmits} forwards to ${b.name} lost, then one delayed)`);
          }
        };
        let forwards = 0;
        const slowMs = rng.between(0.5, 0.95) * cfg.ackTimeoutMs;
        sim.network.interceptor = (from, to, bytes) => {
          if (victim === undefined || from !== victim || to !== b.node || !isForward(bytes)) return undefined;
          forwards++;
          if (forwards <= cfg.maxRetransmits) return 'drop';
          return forwards === cfg.maxRetransmits + 1 ? slowMs : undefined;
        };
        await waitUntil(() => victim !== undefined, 500);
        sim.network.onTransmit = undefined;
        if (victim === undefined) {
          p.node.crash();
          noteFault(`crash-primary ${p.name} (no reply seen)`);
        }
        await sleep(bounds.takeoverMs + cfg.ackTimeoutMs);
        sim.network.interceptor = undefined;
        restartReplica(p);
        return;
      }
      case 'crash-primary-host': {
        if (!p) return;
        const host = p.node.host;
        sim.crashHost(host);
        noteFault(`crash-primary-host ${host.name} (${host.nodes.map((n) => n.name).join(', ')})`);
        for (const c of clients) if (c.node.host === host) diedWithPrimary.push({ label: `${c.name}#${c.incarnation}`, at: sched.now });
        await sleep(rng.between(20, 2 * bounds.takeoverMs));
        sim.rebootHost(host);
        restartReplica(p);
        for (const c of clients) if (c.node.host === host) restartClient(c);
        return;
      }
      case 'crash-backup': {
        if (!b) return;
        b.node.crash();
        noteFault(`crash-backup ${b.name}`);
        await sleep(rng.between(20, 500));
        restartReplica(b);
        return;
      }
      case 'crash-client': {
        const active = activeClients();
        if (active.length === 0) return;
        const c = rng.pick(active);
        c.node.crash();
        noteFault(`crash-client ${c.name}`);
        await sleep(rng.between(10, 300));
        restartClient(c);
        noteFault(`restart-client ${c.name}`, false);
        return;
      }
      case 'pause-primary':
      case 'pause-backup': {
        const target = kind === 'pause-primary' ? p : b;
        if (!target) return;
        const ms = kind === 'pause-primary' ? rng.between(0.3, 3) * bounds.takeoverMs : rng.between(0.5, 4) * bounds.peerFaultyMs;
        target.node.pause();
        noteFault(`${kind} ${target.name} for ${ms.toFixed(1)}ms`);
        await sleep(ms);
        target.node.resume();
        noteFault(`resume ${target.name}`, false);
        return;
      }
      case 'pause-client': {
        const active = activeClients();
        if (active.length === 0) return;
        const c = rng.pick(active);
        const ms = rng.between(20, 400);
        c.node.pause();
        noteFault(`pause-client ${c.name} for ${ms.toFixed(1)}ms`);
        await sleep(ms);
        c.node.resume();
        noteFault(`resume ${c.name}`);
        return;
      }
      case 'message-chaos': {
        const f = sim.network.faults;
        const saved = { ...f };
        f.lossRate = rng.between(0, 0.15);
        f.duplicateRate = rng.between(0, 0.15);
        f.reorderRate = rng.between(0, 0.3);
        f.spikeRate = rng.between(0, 0.3);
        f.spikeMs = rng.between(2, Math.max(3, cfg.ackTimeoutMs * 0.8));
        const ms = rng.between(100, 600);
        noteFault(
          `message-chaos for ${ms.toFixed(1)}ms (loss ${f.lossRate.toFixed(2)}, dup ${f.duplicateRate.toFixed(2)}, reorder ${f.reorderRate.toFixed(2)}, spikes ${f.spikeRate.toFixed(2)}×${f.spikeMs.toFixed(0)}ms)`,
        );
        const chaosStart = sched.now;
        await sleep(ms);
        Object.assign(f, saved);
        noteFault('message-chaos ends');
        chaosWindows.push([chaosStart, sched.now]);
        return;
      }
      case 'sever-connections': {
        const n = sim.network.sever();
        noteFault(`sever-connections (${n})`);
        return;
      }
    }
  };

  // ---- the run ------------------------------------------------------------------------------------
  let finished = false;
  let maxLatencyAfterFaultMs = 0;
  const main = async (): Promise<void> => {
    startReplica(replicas[0]!, 'primary');
    await sleep(1);
    startReplica(replicas[1]!, 'backup');
    if (!(await waitUntil(healthy, 5000))) {
      failures.push('startup: no primary + backup pair within 5000 ms');
      return;
    }
    for (const c of clients) runClient(c);
    const nFaults = rng.int(1, options.maxFaults ?? 3);
    await sleep(rng.between(20, 200));
    for (let k = 0; k < nFaults && activeClients().length > 0; k++) {
      await injectFault(rng.pick(faultKinds));
      if (!(await waitUntil(healthy, 10_000))) {
        failures.push(`recovery: no primary + backup pair within 10000 ms after the fault (roles: ${replicas.map((r) => `${r.name}=${role(r) ?? 'down'}`).join(', ')})`);
        return;
      }
      await sleep(rng.between(20, 300));
    }
    if (!(await waitUntil(() => clients.every((c) => c.finished || c.node.state === 'down'), 60_000, 20))) {
      failures.push(`liveness: the workload did not finish (${clients.filter((c) => !c.finished).map((c) => c.name).join(', ')} still busy)`);
      return;
    }
    // Final reads of every key through a fresh client: an acknowledged write that was lost shows here.
    const readerNode = sim.node('reader');
    const reader = createClient({ service, env: readerNode.env(), servers, config });
    for (let k = 0; k < nKeys; k++) {
      const key = `k${k}`;
      const rec: KvHistoryOp = { client: 'reader', op: 'get', key, value: null, call: sched.now };
      history.push(rec);
      try {
        rec.value = (await reader.call({ op: 'get', key })).value;
        rec.return = sched.now;
      } catch (err) {
        failures.push(`final read of ${key}: ${errorName(err)}: ${(err as Error).message}`);
      }
    }
    // Quiescence: the backup catches up through flushes.
    const converged = await waitUntil(() => {
      const p = primary();
      const b = backup();
      if (!p || !b) return false;
      const ps = p.replica!.status();
      const bs = b.replica!.status();
      return ps.appliedSeq === bs.appliedSeq && ps.stateDigest === bs.stateDigest;
    }, 3000, 10);
    if (!converged) {
      const st = replicas.map((r) => (live(r) ? r.replica!.status() : undefined));
      failures.push(`convergence: replicas differ at quiescence: ${st.map((s, i) => (s ? `${s.nodeId} ${s.role} epoch ${s.epoch} seq ${s.appliedSeq} digest ${s.stateDigest}` : `${replicas[i]!.name} down`)).join(' | ')}`);
    }
  };

  void main().then(
    () => (finished = true),
    (err: unknown) => {
      failures.push(`harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      finished = true;
    },
  );
  try {
    await sim.run({ stopWhen: () => finished, until: options.maxVirtualMs ?? 120_000, maxEvents: options.maxEvents ?? 400_000 });
  } catch (err) {
    failures.push(`${(err as Error).message} at virtual ${sched.now.toFixed(3)}ms; last events:\n    ${sched.recent.slice(-20).join('\n    ')}`);
    finished = true;
  }
  if (!finished) failures.push(`the run did not finish within ${options.maxVirtualMs ?? 120_000} virtual ms`);

  // ---- invariants ---------------------------------------------------------------------------------
  for (const e of sched.errors) failures.push(`exception in ${e.label} at ${e.time.toFixed(1)}ms: ${String(e.error)}`);
  for (const r of replicaEvents) {
    if (r.event.type === 'divergence') failures.push(`divergence reported by ${r.node} at seq ${r.event.seq}`);
    if (r.event.type === 'lost-entries') failures.push(`${r.node} reported lost entries ${r.event.seqs.join(',')} (epoch ${r.event.epoch})`);
  }
  for (const slot of replicas) {
    if (!live(slot)) continue;
    for (const d of duplicateApplications(slot.replica!.state)) failures.push(`exactly-once: ${slot.name} applied ${d.request} ${d.times} times`);
  }
  // The guarantee covers replies received by SURVIVING clients. A client that dies together with the
  // primary's host may take the only copy of its newest entries with it (its forward had not left yet):
  // its writes acknowledged within forwardWindowMs before the crash count as outcome-unknown.
  const checked = history.map((h) => {
    const died = diedWithPrimary.find((d) => d.label === h.client);
    if (!died || h.op === 'get' || h.return === undefined || h.return < died.at - bounds.forwardWindowMs) return h;
    return { ...h, return: undefined };
  });
  const linearizability = checkKvHistory(checked);
  if (linearizability.verdict !== 'linearizable') failures.push(`linearizability: ${linearizability.verdict}\n${linearizability.failure?.explanation ?? ''}`);
  for (const h of history) {
    if (h.return === undefined) continue;
    const ret = h.return;
    if (chaosWindows.some(([a, b]) => ret >= a && ret <= b)) continue;
    let last = -Infinity;
    for (const d of disruptions) if (d <= ret && d > last) last = d;
    const start = Math.max(h.call, last);
    const latency = ret - start;
    maxLatencyAfterFaultMs = Math.max(maxLatencyAfterFaultMs, latency);
    if (latency > livenessBoundMs) {
      failures.push(
        `liveness: ${h.client} ${h.op} ${h.key} called at ${h.call.toFixed(1)}ms completed at ${ret.toFixed(1)}ms, ${latency.toFixed(1)}ms after ${start === h.call ? 'its call' : `the fault action at ${start.toFixed(1)}ms`} (bound ${livenessBoundMs}ms)`,
      );
    }
  }
  void unavailable;

  return {
    seed: options.seed,
    variant: variantName,
    ok: failures.length === 0,
    failures,
    piggyback,
    faults: faultLog,
    history,
    linearizability,
    traceHash: sched.traceHash,
    trace: sched.trace,
    events: sched.eventCount,
    virtualMs: sched.now,
    maxLatencyAfterFaultMs,
    livenessBoundMs,
    network: { ...sim.network.stats },
    replicaEvents: replicaEvents.reduce<Record<string, number>>((acc, r) => {
      const k = r.event.type === 'role' ? `role:${r.event.role}` : r.event.type;
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {}),
    logs: sim.logs,
    errorLogs: sim.errorLogs,
  };
}
