/**
 * The partition scenario: the key-value simulation (kv-run.ts, the REAL replication stack) under the
 * partition nemesis (partition-faults.ts) — the primary–backup link cut while clients reach both replicas —
 * with or without a simulated witness (witness.ts, a model of @tandem/witness-etcd).
 *
 * Clients append (70 %) and read (30 %) for the whole run, so every acknowledged write must show in the
 * final read of its key exactly once. Beside kv-run's checks (linearizability, exactly-once, convergence,
 * liveness), a run checks:
 *   - lost and duplicated acknowledged writes, counted from the final reads;
 *   - never two replicas acknowledging at the same time: once a client got an answer from epoch E, no
 *     client gets one from an older epoch later (beyond one message transit) — the split brain's signature;
 *   - the witness model's own rule (a replica that says `holds()` is the witness's live owner).
 *
 * Without a witness the split brain is the documented behaviour (docs/PROTOCOL.md "Remaining limits"): the
 * run FAILS, and the checker must see the loss (`lostWrites`, a non-linearizable history). With the witness
 * every run must pass, within liveness bounds that include the lease (witnessLivenessBounds).
 */
import { computeTimingBounds, type ReplicationConfig } from '@tandem/core';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { LivenessBounds } from './kv-checks.js';
import type { KvCluster } from './kv-cluster.js';
import type { KvWorkload } from './kv-cluster-types.js';
import { livenessBounds, runKvSimulation, type KvSimulationResult } from './kv-run.js';
import { PARTITION_FAULT_KINDS, type FaultKind } from './faults.js';
import { partitionWindows, type PartitionWindow } from './partition-faults.js';
import { SeededRandom } from './random.js';
import { SimWitness, type WitnessRecord, type WitnessStats } from './witness.js';

/** Options of runPartitionSimulation: seed, whether the replicas have a witness and its lease, faults, operations, settings. */
export interface PartitionSimulationOptions {
  seed: number;
  /** Give the replicas a simulated witness. */
  witness: boolean;
  /** Faults to draw from (default: with a witness 'partition-pair' and 'isolate-witness'; without, 'partition-pair'). */
  faultKinds?: readonly FaultKind[];
  /** The witness's lease (default: drawn by the seed, 2–4 × takeoverMs). */
  leaseMs?: number;
  /** Operations per client (default 80: the clients keep writing through the partitions). */
  opsPerClient?: number;
  /** Partitions per run: the seed picks 1..maxFaults (default 2). */
  maxFaults?: number;
  config?: Partial<ReplicationConfig>;
  /** false: no CPU load (default: drawn by the seed, as in the default scenario). */
  load?: false;
  recordTrace?: boolean;
}

/** An acknowledged append missing from the final read of its key. */
export interface LostWrite {
  client: string;
  key: string;
  value: string;
  /** When it was acknowledged, and at which epoch. */
  acknowledgedAt: number;
  epoch: number | undefined;
}

/** The outcome of a partition run: the key-value result plus the witness's records and stats and the lost writes. */
export interface PartitionSimulationResult extends KvSimulationResult {
  witness: boolean;
  leaseMs: number | undefined;
  /** Acknowledged appends missing from the final read of their key. */
  lostWrites: LostWrite[];
  /** Acknowledged appends found more than once in the final read. */
  duplicatedWrites: string[];
  /** Acknowledgements from an older epoch after a newer epoch had answered: two replicas serving at once. */
  overlaps: string[];
  witnessStats: WitnessStats | undefined;
  witnessRecords: WitnessRecord[];
  /** Operator promotes the witness refused (during a partition: the other replica serves). */
  promotesRefused: number;
  /** `blocked` reports by a replica cut off from its peer (not failures in this scenario). */
  blockedInPartition: number;
  /** Takeovers, step-downs and failure alarms while the witness was cut off from a healthy pair. */
  changesWhileWitnessCut: number;
  /** The primary–backup partitions and the witness-only cuts. */
  partitions: readonly PartitionWindow[];
}

/** The witness's lease when not given: 2–4 × takeoverMs, drawn from the seed (by a PRNG of its own, so
 * the bounds are known before the run starts). */
export function drawLeaseMs(seed: number, config: Partial<ReplicationConfig> = {}): number {
  const rng = new SeededRandom((seed ^ 0x5eed1ea5) >>> 0);
  return Math.round(rng.between(2, 4) * computeTimingBounds(config).takeoverMs);
}

/** How long a witness request may go unanswered in the scenario (the etcd client's deadline). */
export const WITNESS_CALL_TIMEOUT_MS = 100;

/**
 * The liveness bounds with a witness. Without one (kv-run.ts livenessBounds):
 *   bound = worstCaseFailoverMs + ackTimeoutMs.
 * With one, a replica may have to wait for the other's grant to run out: the holder cut off from the
 * witness keeps its entry alive until leaseMs after its last keepalive arrived (at most the last fault
 * action: the cut); the other replica, refused meanwhile, asks again only after another takeover period
 * (its watchdog re-arms: heartbeat silence, forward window, probe) and its question may take up to the
 * witness call timeout:
 *   bound = worstCaseFailoverMs + ackTimeoutMs + leaseMs + takeoverMs + callTimeoutMs.
 */
export function witnessLivenessBounds(
  config: Partial<ReplicationConfig>,
  leaseMs: number,
  callTimeoutMs = WITNESS_CALL_TIMEOUT_MS,
): LivenessBounds {
  const base = livenessBounds(config);
  const extra = leaseMs + computeTimingBounds(config).takeoverMs + callTimeoutMs;
  return { opBoundMs: base.opBoundMs + extra, serveBoundMs: base.serveBoundMs + extra };
}

/** The partition scenario's workload: appends and reads only, spread over the run; now and then a client
 * goes quiet for 0.2–1 s (one idle through the switch to the other replica comes back to the one it knew —
 * with a split brain, the side whose writes will be lost). */
export const PARTITION_WORKLOAD: KvWorkload = { thinkMaxMs: 30, getShare: 0.3, putShare: 0, idleChance: 0.05, idleMs: [200, 1000] };

/**
 * Run one seeded simulation of a replica pair under network partitions, with or without a witness, and check that no acknowledged write
 * is lost.
 */
export async function runPartitionSimulation(options: PartitionSimulationOptions): Promise<PartitionSimulationResult> {
  const config = options.config ?? {};
  const leaseMs = options.witness ? (options.leaseMs ?? drawLeaseMs(options.seed, config)) : undefined;
  let witness: SimWitness | undefined;
  let cluster: KvCluster | undefined;
  const r = await runKvSimulation({
    seed: options.seed,
    variant: 'correct',
    faultKinds: options.faultKinds ?? (options.witness ? PARTITION_FAULT_KINDS : ['partition-pair']),
    opsPerClient: options.opsPerClient ?? 80,
    maxFaults: options.maxFaults ?? 2,
    workload: PARTITION_WORKLOAD,
    config,
    ...(options.load === false ? { load: false as const } : {}),
    ...(options.recordTrace ? { recordTrace: true } : {}),
    ...(leaseMs !== undefined ? { livenessBounds: (c: Partial<ReplicationConfig>) => witnessLivenessBounds(c, leaseMs) } : {}),
    hooks: {
      onStart: (c) => (cluster = c),
      replicaOptions: (slot, c) => {
        cluster = c;
        if (leaseMs === undefined) return {};
        witness ??= new SimWitness(c.sim, { leaseMs, callTimeoutMs: WITNESS_CALL_TIMEOUT_MS });
        return { witness: witness.clientFor(slot.node) };
      },
    },
  });
  const bound = (leaseMs !== undefined ? witnessLivenessBounds(config, leaseMs) : livenessBounds(config)).opBoundMs;
  const all = cluster ? partitionWindows(cluster) : [];
  const windows = all.filter((w) => w.kind === 'pair');
  const inPartition = (t: number) => windows.some((w) => t >= w.from && t <= w.to + bound);
  // The witness is off the request path: cutting it off from a healthy pair changes nothing — unless a
  // (false) failure alarm makes a replica ask it meanwhile. Counted, not failed (alarms are counted too).
  const isolations = all.filter((w) => w.kind === 'witness');
  const changesWhileWitnessCut = (cluster?.replicaEvents ?? []).filter(
    (e) => ['takeover', 'step-down', 'peer-faulty'].includes(e.event.type) && isolations.some((w) => e.time >= w.from && e.time <= w.to),
  ).length;
  // Expected here, not failures: a replica cut off from its peer that says it is `blocked` (it cannot
  // prove it holds every acknowledged write: it does not), and an operator promote the witness refused.
  let promotesRefused = 0;
  let blockedInPartition = 0;
  const failures = r.failures.filter((f) => {
    if (leaseMs !== undefined && /^operator promote of \w+ failed: .*witness/.test(f)) return (promotesRefused++, false);
    const b = /^\w+ reported blocked at ([\d.]+)ms .*(although no primary was ever killed|after a single fault)/.exec(f);
    if (b && inPartition(Number(b[1]))) return (blockedInPartition++, false);
    return true;
  });
  if (leaseMs !== undefined) failures.push(...servedThroughPartitions(r.history, windows, bound));
  const lost = cluster ? lostAndDuplicated(cluster, r.history) : { lostWrites: [], duplicatedWrites: [] };
  if (lost.lostWrites.length > 0) {
    const l = lost.lostWrites;
    failures.push(
      `lost writes: ${l.length} acknowledged append${l.length === 1 ? '' : 's'} missing from the final reads (first: ${l[0]!.client} appended ${JSON.stringify(l[0]!.value)} to ${l[0]!.key}, acknowledged at ${l[0]!.acknowledgedAt.toFixed(1)}ms by epoch ${l[0]!.epoch ?? '?'})`,
    );
  }
  if (lost.duplicatedWrites.length > 0)
    failures.push(`duplicated writes: ${lost.duplicatedWrites.slice(0, 5).join(', ')}${lost.duplicatedWrites.length > 5 ? ', …' : ''}`);
  const overlaps = cluster ? overlappingAcknowledgements(cluster, r.history) : [];
  if (overlaps.length > 0)
    failures.push(`split brain: two replicas acknowledged at the same time (${overlaps.length}×); first: ${overlaps[0]}`);
  if (witness) for (const v of witness.violations.slice(0, 3)) failures.push(`witness model: ${v}`);
  return {
    ...r,
    ok: failures.length === 0,
    failures,
    witness: options.witness,
    leaseMs,
    lostWrites: lost.lostWrites,
    duplicatedWrites: lost.duplicatedWrites,
    overlaps,
    witnessStats: witness ? { ...witness.stats } : undefined,
    witnessRecords: witness ? [...witness.records] : [],
    promotesRefused,
    blockedInPartition,
    changesWhileWitnessCut,
    partitions: all,
  };
}

/**
 * With a witness the pair serves THROUGH a partition: one side wins the witness and answers. kv-run's
 * liveness check counts from the last fault action — the heal, for a call answered after it — so here
 * every call made in a partition (without a witness cut later in it: then the only replica holding the
 * state may be the one cut off, and unavailable is right) at least `bound` before the heal must be
 * answered within `bound` of the later of its call and the cut.
 */
function servedThroughPartitions(history: readonly KvHistoryOp[], windows: readonly PartitionWindow[], bound: number): string[] {
  const out: string[] = [];
  for (const w of windows) {
    if (w.witnessCut !== undefined && w.witnessCut.at > w.from) continue;
    for (const h of history) {
      if (h.call < w.from || h.call > w.to - bound) continue;
      const due = Math.max(h.call, w.from) + bound;
      if (h.return === undefined || h.return > due)
        out.push(
          `liveness in a partition: ${h.client} ${h.op} ${h.key} called at ${h.call.toFixed(1)}ms during the partition ${w.from.toFixed(1)}–${w.to.toFixed(1)}ms${w.witnessCut ? ` (${w.witnessCut.node} cut off from the witness)` : ''} was ${h.return === undefined ? 'never answered' : `answered at ${h.return.toFixed(1)}ms`}, after ${due.toFixed(1)}ms (bound ${bound}ms with the witness)`,
        );
    }
  }
  return out.length > 3 ? [...out.slice(0, 3), `liveness in a partition: … and ${out.length - 3} more`] : out;
}

/** Acknowledged appends missing from (or repeated in) the final read of their key. Keys without a final
 * read (the run stopped early) are skipped; a history with puts is not judged here (a put overwrites). */
function lostAndDuplicated(cluster: KvCluster, history: readonly KvHistoryOp[]): { lostWrites: LostWrite[]; duplicatedWrites: string[] } {
  const lostWrites: LostWrite[] = [];
  const duplicatedWrites: string[] = [];
  if (history.some((h) => h.op === 'put')) return { lostWrites, duplicatedWrites };
  const finals = new Map<string, string | null>();
  for (const h of history) if (h.client === 'reader' && h.return !== undefined) finals.set(h.key, h.value);
  for (const [key, value] of finals) {
    const counts = new Map<string, number>();
    for (const t of (value ?? '').split(';')) if (t !== '') counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const h of history) {
      if (h.op !== 'append' || h.key !== key || h.value === null) continue;
      const token = h.value.replace(/;$/, '');
      const n = counts.get(token) ?? 0;
      if (n > 1) duplicatedWrites.push(`${token} ×${n} in ${key}`);
      if (h.return !== undefined && n === 0)
        lostWrites.push({ client: String(h.client), key, value: h.value, acknowledgedAt: h.return, epoch: cluster.opInfo.get(h)?.epoch });
    }
  }
  return { lostWrites, duplicatedWrites };
}

/** A reply may arrive this much later than another sent after it (one transit, default delays ≤ 2 ms). */
const TRANSIT_SLACK_MS = 5;

/**
 * Two replicas acknowledging at the same time: an answer from epoch E received after an answer from a
 * newer epoch had already been received (by any client) more than one transit earlier. (Every reply
 * carries the answering replica's epoch; a primary answers only under its lease or a witness grant, so a
 * correct failover never interleaves epochs.)
 */
function overlappingAcknowledgements(cluster: KvCluster, history: readonly KvHistoryOp[]): string[] {
  const acked = history
    .filter((h) => h.return !== undefined && h.client !== 'reader' && cluster.opInfo.has(h))
    .map((h) => ({ h, epoch: cluster.opInfo.get(h)!.epoch, at: h.return! }))
    .sort((a, b) => a.at - b.at);
  const out: string[] = [];
  let newest: { epoch: number; at: number; h: KvHistoryOp } | undefined;
  for (const a of acked) {
    if (newest === undefined || a.epoch > newest.epoch) newest = a;
    else if (a.epoch < newest.epoch && a.at > newest.at + TRANSIT_SLACK_MS)
      out.push(
        `${a.h.client} ${a.h.op} ${a.h.key} answered at ${a.at.toFixed(1)}ms by epoch ${a.epoch}, after ${newest.h.client} was answered at ${newest.at.toFixed(1)}ms by epoch ${newest.epoch}`,
      );
  }
  return out;
}
