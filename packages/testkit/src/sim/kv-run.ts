/**
 * One deterministic simulation run of the REAL replication stack (createReplica / createClient from
 * @tandem/core, unchanged) serving the simulated key-value service: two replicas on two hosts, a few
 * clients (one co-located with each replica, so a host crash takes a client with it), a workload, and
 * faults — each followed by recovery (a crashed server restarts and rejoins as backup) before the next;
 * the recovery kinds strike again while the pair is still repairing (faults.ts), and the seed may make
 * the replicas slow (a CPU cost per message, GC-like stalls). At the end every invariant is checked
 * (kv-checks.ts):
 *   1. the history of operations is linearizable (acknowledged ones must be reflected; unknown outcomes
 *      may or may not be), including final reads of every key;
 *   2. no request was applied twice (per-(clientId, requestId) counts inside the replicated state);
 *   3. the replicas converged at quiescence (equal appliedSeq and state digests), no divergence, lost
 *      entries or protocol error was reported;
 *   4. liveness: every operation completed within the computed bound of its call or the last fault
 *      action, and the pair never left every client unanswered longer than that (livenessBounds below);
 *      a run whose pair stops serving is cut short as soon as the bound is certainly broken.
 * False failure alarms (peer-faulty while the peer was up, not paused, not stalled) are counted.
 */
import { computeTimingBounds, createClient, resolveConfig, type ReplicationConfig } from '@tandem/core';
import type { LinearizabilityReport } from '../linearizability/check.js';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import { faultsFor, VARIANTS, type FaultKind, type LoadProfile, type VariantSpec } from './faults.js';
import { checkKvRun, type AlarmSummary, type LivenessBounds } from './kv-checks.js';
import { KvCluster } from './kv-cluster.js';
import type { BlockedReport, KvClusterHooks, KvWorkload, OperatorAction } from './kv-cluster-types.js';
import { injectFault } from './kv-faults.js';
import type { NetworkStats } from './network.js';
import { Simulation, type LogLine } from './simulation.js';

/** Options of runKvSimulation: seed, variant, clients, operations, keys, faults, load, workload, hooks. */
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
  /** CPU load of the replicas: a profile, false for none; default: drawn by the seed when the variant has `load`. */
  load?: LoadProfile | false;
  /** TEST SEAMS (for proving the checks can fail, and for emulating core features): `onStart` runs once
   * the pair is up, before the workload; `wrapReplica` may wrap each replica object the cluster creates. */
  hooks?: KvClusterHooks;
  /** The clients' workload shape (default: 40 % get, 20 % put, 40 % append, 0–15 ms think time). */
  workload?: KvWorkload;
  /** The liveness bounds for this run's config (default: livenessBounds below); e.g. a witness's lease
   * lengthens them (partition-run.ts). */
  livenessBounds?: (config: Partial<ReplicationConfig>) => LivenessBounds;
  /** Overrides of the replication config (default: the core defaults with the seed's piggyback mode). */
  config?: Partial<ReplicationConfig>;
  recordTrace?: boolean;
  /** Give up (failure) when the run has not finished by this virtual time. Default 120 000 ms. */
  maxVirtualMs?: number;
  /** Give up (failure) after this many events (a livelock in zero virtual time). Default 400 000. */
  maxEvents?: number;
}

/**
 * The outcome of a simulated key-value run: ok or the failures, the faults injected, the history and its linearizability, the trace
 * hash.
 */
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
  /** Worst latency of an operation, measured from the later of its call and the last fault action before
   * its return (completions inside message-chaos windows excluded), and the bound it must meet. */
  maxLatencyAfterFaultMs: number;
  livenessBoundMs: number;
  /** Longest time clients waited with no replica answering anyone (from the later of a call and the last
   * fault action), and the bound. */
  maxServiceGapMs: number;
  serveBoundMs: number;
  /** peer-faulty events and the false alarms among them. */
  alarms: AlarmSummary;
  /** `blocked` reports (cannot prove nothing acknowledged was lost) and the operator's promotes. */
  blocked: BlockedReport[];
  operatorActions: OperatorAction[];
  /** The CPU load the replicas ran with (undefined: none). */
  load: LoadProfile | undefined;
  network: NetworkStats;
  /** How often each replica event happened (coverage: did takeovers, step-downs, rejoins occur?). */
  replicaEvents: Record<string, number>;
  /** The last log lines and every error line (for failure reports). */
  logs: LogLine[];
  errorLogs: LogLine[];
}

/**
 * The liveness bounds, from computeTimingBounds(config) (docs/PROTOCOL.md "Timing bounds"):
 *
 *   opBoundMs = serveBoundMs = worstCaseFailoverMs + ackTimeoutMs
 *             = heartbeatTimeoutMs + forwardWindowMs + takeoverProbeMs + requestTimeoutMs + ackTimeoutMs
 *
 * counted from the later of the call and the LAST FAULT ACTION before the answer (a crash, the start of a
 * pause or stall, a severing, a chaos window's start or end, a client's resumption, an operator's promote;
 * the resumption of the only replica able to serve). Why: every fault the pair must survive by itself
 * costs at most one failure detection + takeover (takeoverMs: silence detection, the forward window, the
 * probe of the old primary) or one drop of the backup (held requests end at most takeoverMs after its last
 * acknowledged flush); a waiting client re-sends to both replicas every requestTimeoutMs, so its next
 * attempt after that reaches the serving replica; worstCaseFailoverMs counts no transit time, and the
 * configuration assumes a round trip fits in ackTimeoutMs. Faults during recovery restart the count (the
 * bound holds from the last one); a replica that reports `blocked` has answered (it says why not).
 */
export function livenessBounds(config: Partial<ReplicationConfig>): LivenessBounds {
  const b = computeTimingBounds(config);
  const c = resolveConfig(config);
  const bound = b.worstCaseFailoverMs + c.ackTimeoutMs;
  return { opBoundMs: bound, serveBoundMs: bound };
}

/** The seed's CPU load: none (half the runs), else each replica (70 %) gets a CPU cost per message
 * (0.05–1 ms + 0–0.5 ms/KiB) and, half the time, background GC-like stalls (1–40 ms every 100–400 ms):
 * acks late by up to tens of ms, a replica busy up to about half the time — never saturated (a saturated
 * replica's queue grows without bound and no latency bound holds). */
export function drawLoadProfile(rng: { chance(p: number): boolean; between(a: number, b: number): number }): LoadProfile | undefined {
  if (rng.chance(0.5)) return undefined;
  const replica = () =>
    rng.chance(0.7)
      ? {
          perMessageMs: rng.between(0.05, 1),
          perKiBMs: rng.between(0, 0.5),
          gcEveryMs: rng.chance(0.5) ? rng.between(100, 400) : 0,
          gcMaxMs: rng.between(1, 40),
        }
      : { perMessageMs: 0, perKiBMs: 0, gcEveryMs: 0, gcMaxMs: 0 };
  return { replicas: [replica(), replica()] };
}

/** Run one seeded simulation of a replicated key-value pair under faults and check its history, liveness and replica agreement. */
export async function runKvSimulation(options: KvSimulationOptions): Promise<KvSimulationResult> {
  const variantName = options.variant ?? 'correct';
  const variant: VariantSpec | undefined = VARIANTS[variantName];
  if (!variant) throw new RangeError(`unknown variant "${variantName}" (known: ${Object.keys(VARIANTS).join(', ')})`);
  const sim = new Simulation({ seed: options.seed, recordTrace: options.recordTrace ?? false });
  const rng = sim.random;
  const sched = sim.scheduler;
  const own = { ...variant.config, ...options.config };
  const piggyback = own.piggyback ?? variant.piggyback ?? (rng.chance(0.5) ? 'entries' : 'seq-digest');
  // The seed also varies the flush batch size (flush on every entry … the default) unless configured.
  const flushMaxEntries = own.flushMaxEntries ?? rng.pick([1, 4, resolveConfig({}).flushMaxEntries]);
  const config: Partial<ReplicationConfig> = { ...own, piggyback, flushMaxEntries };
  const faultKinds = options.faultKinds ?? faultsFor(variant, piggyback);
  if (faultKinds.length === 0) throw new RangeError('no fault kinds to draw from');
  const cluster = new KvCluster(sim, {
    variant,
    config,
    clients: options.clients ?? rng.int(2, 4),
    opsPerClient: options.opsPerClient ?? 20,
    keys: options.keys ?? 3,
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.workload ? { workload: options.workload } : {}),
  });
  const bounds = (options.livenessBounds ?? livenessBounds)(config);
  const livenessBoundMs = bounds.opBoundMs;
  const failures = cluster.failures;
  // The classic generator draws nothing more (its seeds replay the first version's runs).
  const load =
    options.load === false
      ? undefined
      : (options.load ?? (variant.load === true && variant.classic !== true ? drawLoadProfile(rng) : undefined));
  if (load) cluster.applyLoad(load);

  /** Stop waiting: an operation has certainly broken the bound, or nobody served for longer than it (only
   * checked while no fault action can come: between faults, and after the last one). */
  const overdue = () =>
    !cluster.awaitingOperator && (cluster.overdue(bounds.opBoundMs) !== undefined || cluster.unservedTooLong(bounds.serveBoundMs));
  let monitoring = false;
  let stoppedEarly = false;
  /**
   * A replica reports `blocked`: the operator answers with promote({ acceptLoss: true }) on the one holding
   * the most, after a reaction time (only when the replica object has `promote`; otherwise the run stops).
   */
  let operatorBusy = false;
  let unanswerable = false;
  let lastPromote: { node: string; inc: number; at: number } | undefined;
  const operator = (): void => {
    if (operatorBusy) return;
    const blocked = cluster.blockedNow();
    if (blocked.length === 0) return;
    const target = blocked.sort((a, b) => b.replica!.status().appliedSeq - a.replica!.status().appliedSeq)[0]!;
    // One promote per replica incarnation and takeover period (the core may take a moment to act on it).
    if (
      lastPromote &&
      lastPromote.node === target.name &&
      lastPromote.inc === target.node.incarnation &&
      sim.now - lastPromote.at < cluster.bounds.takeoverMs
    )
      return;
    if (!cluster.canPromote(target)) {
      if (!unanswerable)
        failures.push(`recovery: ${target.name} is blocked (${cluster.describeRoles()}) and offers no operator action (promote)`);
      unanswerable = true;
      return;
    }
    operatorBusy = true;
    void cluster.sleep(rng.between(10, 100)).then(() => {
      operatorBusy = false;
      if (cluster.live(target) && cluster.blockedNow().includes(target)) {
        lastPromote = { node: target.name, inc: target.node.incarnation, at: sim.now };
        cluster.operatorPromote(target);
      }
    });
  };
  // The operator is paged by every `blocked` event (and looks at the replicas' status while waiting).
  cluster.onBlocked = () => void cluster.soon(operator);
  /** Wait for `pred`, answering `blocked` like an operator; false when it timed out or the run must stop. */
  const recoverUntil = async (pred: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean | 'stop'> => {
    let stop = false;
    const ok = await cluster.waitUntil(
      () => {
        if (pred()) return true;
        operator();
        stop = unanswerable || overdue();
        return stop;
      },
      timeoutMs,
      stepMs,
    );
    return stop ? 'stop' : ok;
  };

  const main = async (): Promise<void> => {
    const [ra, rb] = cluster.replicas;
    cluster.startReplica(ra, 'primary');
    await cluster.sleep(1);
    cluster.startReplica(rb, 'backup');
    if (!(await cluster.waitUntil(() => cluster.healthy(), 5000))) {
      failures.push('startup: no primary + backup pair within 5000 ms');
      return;
    }
    options.hooks?.onStart?.(cluster);
    for (const c of cluster.clients) cluster.runClient(c);
    const nFaults = rng.int(1, options.maxFaults ?? 3);
    await cluster.sleep(rng.between(20, 200));
    for (let k = 0; k < nFaults && cluster.activeClients().length > 0; k++) {
      monitoring = false;
      await injectFault(cluster, rng.pick(faultKinds));
      monitoring = true;
      const paired = await recoverUntil(() => cluster.healthy(), 10_000);
      if (paired === 'stop') return; // the liveness check says why
      if (!paired) {
        failures.push(`recovery: no primary + backup pair within 10000 ms after the fault (roles: ${cluster.describeRoles()})`);
        return;
      }
      // The next fault may come only once this one's effects are repaired — everything the primary
      // sequenced so far has reached the backup (a reply lost in a chaos window and not yet re-flushed
      // would otherwise meet the next crash: two faults at once). The recovery kinds strike earlier on
      // purpose, inside injectFault.
      const target = cluster.primary()?.replica?.status().appliedSeq ?? 0;
      const caughtUp = await recoverUntil(
        () => cluster.healthy() && (cluster.backup()?.replica?.status().appliedSeq ?? -1) >= target,
        10_000,
      );
      if (caughtUp === 'stop') return;
      if (!caughtUp) {
        failures.push(
          `recovery: the backup did not catch up to seq ${target} within 10000 ms after the fault (roles: ${cluster.describeRoles()})`,
        );
        return;
      }
      await cluster.sleep(rng.between(20, 300));
    }
    monitoring = true;
    const done = await recoverUntil(() => cluster.clients.every((c) => c.finished || c.node.state === 'down'), 60_000, 20);
    if (done === 'stop') return;
    if (!done) {
      failures.push(
        `liveness: the workload did not finish (${cluster.clients
          .filter((c) => !c.finished)
          .map((c) => c.name)
          .join(', ')} still busy)`,
      );
      return;
    }
    // Final reads of every key through a fresh client: an acknowledged write that was lost shows here.
    const reader = createClient({ service: cluster.service, env: sim.node('reader').env(), servers: cluster.servers, config });
    for (let k = 0; k < cluster.keys; k++) await cluster.finalRead(`k${k}`, reader);
    // Quiescence: the backup catches up through flushes.
    const converged = await cluster.waitUntil(
      () => {
        const p = cluster.primary();
        const b = cluster.backup();
        if (!p || !b) return false;
        const ps = p.replica!.status();
        const bs = b.replica!.status();
        return ps.appliedSeq === bs.appliedSeq && ps.stateDigest === bs.stateDigest;
      },
      3000,
      10,
    );
    if (!converged) {
      const st = cluster.replicas.map((r) => (cluster.live(r) ? r.replica!.status() : undefined));
      failures.push(
        `convergence: replicas differ at quiescence: ${st.map((s, i) => (s ? `${s.nodeId} ${s.role} epoch ${s.epoch} seq ${s.appliedSeq} digest ${s.stateDigest}` : `${cluster.replicas[i]!.name} down`)).join(' | ')}`,
      );
    }
  };

  let finished = false;
  void main().then(
    () => (finished = true),
    (err: unknown) => {
      failures.push(`harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      finished = true;
    },
  );
  const maxVirtualMs = options.maxVirtualMs ?? 120_000;
  try {
    // Also stop as soon as the liveness bound is certainly broken (the checks below say how).
    await sim.run({
      stopWhen: () => finished || (monitoring && (stoppedEarly ||= overdue())),
      until: maxVirtualMs,
      maxEvents: options.maxEvents ?? 400_000,
    });
  } catch (err) {
    failures.push(
      `${(err as Error).message} at virtual ${sched.now.toFixed(3)}ms; last events:\n    ${sched.recent.slice(-20).join('\n    ')}`,
    );
    finished = true;
  }
  if (!finished && !stoppedEarly) failures.push(`the run did not finish within ${maxVirtualMs} virtual ms`);
  for (const e of sched.errors) failures.push(`exception in ${e.label} at ${e.time.toFixed(1)}ms: ${String(e.error)}`);
  const checks = checkKvRun(cluster, bounds);
  failures.push(...checks.failures);

  return {
    seed: options.seed,
    variant: variantName,
    ok: failures.length === 0,
    failures,
    piggyback,
    faults: cluster.faultLog,
    history: cluster.history,
    linearizability: checks.linearizability,
    traceHash: sched.traceHash,
    trace: sched.trace,
    events: sched.eventCount,
    virtualMs: sched.now,
    maxLatencyAfterFaultMs: checks.maxLatencyMs,
    livenessBoundMs,
    maxServiceGapMs: checks.maxServiceGapMs,
    serveBoundMs: bounds.serveBoundMs,
    alarms: checks.alarms,
    blocked: cluster.blockedReports,
    operatorActions: cluster.operatorActions,
    load,
    network: { ...sim.network.stats },
    replicaEvents: cluster.replicaEvents.reduce<Record<string, number>>((acc, r) => {
      const e = r.event as { type: string; role?: string; follower?: boolean; mode?: string };
      const k =
        e.type === 'role'
          ? `role:${e.role}`
          : e.type === 'takeover' && e.follower
            ? 'takeover:follower'
            : e.type === 'peer-joined' && e.mode === 'resume'
              ? 'peer-joined:resume'
              : e.type;
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {}),
    logs: sim.logs,
    errorLogs: sim.errorLogs,
  };
}
