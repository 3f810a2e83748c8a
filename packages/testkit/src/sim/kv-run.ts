/**
 * One deterministic simulation run of the REAL replication stack (createReplica / createClient from
 * @tandem/core, unchanged) serving the simulated key-value service: two replicas on two hosts, a few
 * clients (one co-located with each replica, so a host crash takes a client with it), a workload, and
 * faults one at a time — each followed by recovery (a crashed server restarts and rejoins as backup)
 * before the next. At the end every invariant is checked (kv-checks.ts):
 *   1. the history of operations is linearizable (acknowledged ones must be reflected; unknown outcomes
 *      may or may not be), including final reads of every key;
 *   2. no request was applied twice (per-(clientId, requestId) counts inside the replicated state);
 *   3. the replicas converged at quiescence (equal appliedSeq and state digests), no divergence, lost
 *      entries or protocol error was reported;
 *   4. liveness: every operation completed within the computed bound of its call or the last disruption.
 */
import { createClient, resolveConfig, type ReplicationConfig } from '@tandem/core';
import type { LinearizabilityReport } from '../linearizability/check.js';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import { faultsFor, VARIANTS, type FaultKind, type VariantSpec } from './faults.js';
import { checkKvRun } from './kv-checks.js';
import { KvCluster } from './kv-cluster.js';
import { injectFault } from './kv-faults.js';
import type { NetworkStats } from './network.js';
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
  const faultKinds = options.faultKinds ?? faultsFor(variant, piggyback);
  if (faultKinds.length === 0) throw new RangeError('no fault kinds to draw from');
  const cluster = new KvCluster(sim, {
    variant,
    config,
    clients: options.clients ?? rng.int(2, 4),
    opsPerClient: options.opsPerClient ?? 20,
    keys: options.keys ?? 3,
  });
  // worstCaseFailoverMs counts no transit time; the config assumes a round trip fits in ackTimeoutMs.
  const livenessBoundMs = cluster.bounds.worstCaseFailoverMs + cluster.cfg.ackTimeoutMs;
  const failures = cluster.failures;

  const main = async (): Promise<void> => {
    const [ra, rb] = cluster.replicas;
    cluster.startReplica(ra, 'primary');
    await cluster.sleep(1);
    cluster.startReplica(rb, 'backup');
    if (!(await cluster.waitUntil(() => cluster.healthy(), 5000))) {
      failures.push('startup: no primary + backup pair within 5000 ms');
      return;
    }
    for (const c of cluster.clients) cluster.runClient(c);
    const nFaults = rng.int(1, options.maxFaults ?? 3);
    await cluster.sleep(rng.between(20, 200));
    for (let k = 0; k < nFaults && cluster.activeClients().length > 0; k++) {
      await injectFault(cluster, rng.pick(faultKinds));
      if (!(await cluster.waitUntil(() => cluster.healthy(), 10_000))) {
        failures.push(`recovery: no primary + backup pair within 10000 ms after the fault (roles: ${cluster.describeRoles()})`);
        return;
      }
      // One fault at a time: the next may come only once this one's effects are repaired — everything the
      // primary sequenced so far has reached the backup (a reply lost in a chaos window and not yet
      // re-flushed would otherwise meet the next crash: two faults at once).
      const target = cluster.primary()?.replica?.status().appliedSeq ?? 0;
      if (!(await cluster.waitUntil(() => cluster.healthy() && (cluster.backup()?.replica?.status().appliedSeq ?? -1) >= target, 10_000))) {
        failures.push(`recovery: the backup did not catch up to seq ${target} within 10000 ms after the fault (roles: ${cluster.describeRoles()})`);
        return;
      }
      await cluster.sleep(rng.between(20, 300));
    }
    if (!(await cluster.waitUntil(() => cluster.clients.every((c) => c.finished || c.node.state === 'down'), 60_000, 20))) {
      failures.push(`liveness: the workload did not finish (${cluster.clients.filter((c) => !c.finished).map((c) => c.name).join(', ')} still busy)`);
      return;
    }
    // Final reads of every key through a fresh client: an acknowledged write that was lost shows here.
    const reader = createClient({ service: cluster.service, env: sim.node('reader').env(), servers: cluster.servers, config });
    for (let k = 0; k < cluster.keys; k++) await cluster.finalRead(`k${k}`, reader);
    // Quiescence: the backup catches up through flushes.
    const converged = await cluster.waitUntil(() => {
      const p = cluster.primary();
      const b = cluster.backup();
      if (!p || !b) return false;
      const ps = p.replica!.status();
      const bs = b.replica!.status();
      return ps.appliedSeq === bs.appliedSeq && ps.stateDigest === bs.stateDigest;
    }, 3000, 10);
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
    await sim.run({ stopWhen: () => finished, until: maxVirtualMs, maxEvents: options.maxEvents ?? 400_000 });
  } catch (err) {
    failures.push(`${(err as Error).message} at virtual ${sched.now.toFixed(3)}ms; last events:\n    ${sched.recent.slice(-20).join('\n    ')}`);
    finished = true;
  }
  if (!finished) failures.push(`the run did not finish within ${maxVirtualMs} virtual ms`);
  for (const e of sched.errors) failures.push(`exception in ${e.label} at ${e.time.toFixed(1)}ms: ${String(e.error)}`);
  const checks = checkKvRun(cluster, livenessBoundMs);
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
    network: { ...sim.network.stats },
    replicaEvents: cluster.replicaEvents.reduce<Record<string, number>>((acc, r) => {
      const k = r.event.type === 'role' ? `role:${r.event.role}` : r.event.type;
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {}),
    logs: sim.logs,
    errorLogs: sim.errorLogs,
  };
}
