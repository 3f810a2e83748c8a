/**
 * The invariants checked at the end of every key-value simulation run (docs/TESTING.md):
 * linearizability, exactly-once, convergence / no divergence, no protocol error, and liveness — every
 * operation completes within the bound of the later of its call and the last fault action, and at no
 * point does the pair leave clients unanswered for longer than that bound after the last fault (unless a
 * replica says plainly that it is `blocked`). Also counted, not failed: false failure alarms.
 */
import { checkKvHistory, type LinearizabilityReport } from '../linearizability/check.js';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { KvCluster } from './kv-cluster.js';
import type { Outage } from './kv-cluster-types.js';
import { duplicateApplications } from './kv-service.js';

/** A `peer-faulty` event although the peer process was up and not paused (nor cut off by a targeted
 * network fault): the peer was alive, only slow — or its event loop stalled. */
export interface FalseAlarm {
  time: number;
  /** The replica that declared its peer faulty, and the peer. */
  node: string;
  peer: string;
  reason: string;
  /** What the peer was going through: 'stall' (a fault stalled its event loop in the detection window),
   * 'cpu-load' (it had a CPU cost model or background GC stalls: it was busy), 'message-chaos', 'sever'
   * (its connections were reset), 'unexplained'. */
  context: 'stall' | 'cpu-load' | 'message-chaos' | 'sever' | 'unexplained';
}

/** The peer-faulty alarms of a run: in total, justified by a fault on the peer, and false alarms. */
export interface AlarmSummary {
  /** peer-faulty events in total. */
  total: number;
  /** The peer was down, paused, or cut off by a targeted network fault: a true alarm. */
  justified: number;
  /** Every other alarm (the peer was alive). `falseAlarms.filter(a => a.context !== 'stall')` are the false
   * alarms with stalls excluded. */
  falseAlarms: FalseAlarm[];
}

export interface KvCheckResult {
  failures: string[];
  linearizability: LinearizabilityReport;
  /** Worst latency, measured from the later of an operation's call and the last fault action before its return. */
  maxLatencyMs: number;
  /** Longest time clients waited with no replica answering anyone, from the later of the call and the last fault action. */
  maxServiceGapMs: number;
  alarms: AlarmSummary;
}

/** The liveness bounds a run is checked against: per operation, and for the whole service. */
export interface LivenessBounds {
  /** Per operation (completed or not), from the later of its call and the last fault action. */
  opBoundMs: number;
  /** No answer to any client, from the later of a pending call and the last fault action. */
  serveBoundMs: number;
}

export function checkKvRun(cluster: KvCluster, bounds: LivenessBounds): KvCheckResult {
  const failures: string[] = [];
  for (const r of cluster.replicaEvents) {
    if (r.event.type === 'divergence') failures.push(`divergence reported by ${r.node} at seq ${r.event.seq}`);
    if (r.event.type === 'lost-entries')
      failures.push(`${r.node} reported lost entries ${r.event.seqs.join(',')} (epoch ${r.event.epoch})`);
    // The simulated network never corrupts bytes: a protocol violation is a bug of one of the stacks.
    if (r.event.type === 'protocol-error') failures.push(`protocol error at ${r.node} from ${r.event.remote}: ${r.event.error.message}`);
  }
  failures.push(...cluster.servedBehind);
  for (const slot of cluster.replicas) {
    if (!cluster.live(slot)) continue;
    for (const d of duplicateApplications(slot.replica!.state))
      failures.push(`exactly-once: ${slot.name} applied ${d.request} ${d.times} times`);
  }

  // The guarantee covers replies received by SURVIVING clients. A client that dies together with the
  // primary's host may take the only copy of its newest entries with it (its forward had not left yet):
  // its writes acknowledged within forwardWindowMs before the crash count as outcome-unknown. After an
  // operator's promote (answering `blocked`, accepting the loss) the history is checked in segments: up to
  // the promote, and from the promoted replica's state on (KvCluster.segments).
  const checked = cluster.history.map((h) => {
    const died = cluster.diedWithPrimary.find((d) => d.label === h.client);
    if (!died || h.op === 'get' || h.return === undefined || h.return < died.at - cluster.bounds.forwardWindowMs) return h;
    return { ...h, return: undefined };
  });
  const segments = cluster.segments(checked);
  let linearizability = checkKvHistory(segments[0]!);
  segments.forEach((seg, i) => {
    const r = i === 0 ? linearizability : checkKvHistory(seg);
    if (r.verdict === 'linearizable') return;
    if (linearizability.verdict === 'linearizable') linearizability = r;
    const where =
      segments.length > 1
        ? ` (history segment ${i + 1} of ${segments.length}: ${i === 0 ? 'before the first operator promote' : `after the operator promote at ${fmt(cluster.operatorActions[i - 1]!.time)}`})`
        : '';
    failures.push(`linearizability${where}: ${r.verdict}\n${r.failure?.explanation ?? ''}`);
  });

  failures.push(...checkBlocked(cluster));
  const liveness = checkLiveness(cluster, bounds);
  failures.push(...liveness.failures);
  return {
    failures,
    linearizability,
    maxLatencyMs: liveness.maxLatencyMs,
    maxServiceGapMs: liveness.maxServiceGapMs,
    alarms: countAlarms(cluster),
  };
}

const fmt = (ms: number) => `${ms.toFixed(1)}ms`;

function lastBefore(sorted: readonly number[], t: number): number {
  let last = -Infinity;
  for (const d of sorted) {
    if (d > t) break;
    last = d;
  }
  return last;
}

function checkLiveness(cluster: KvCluster, bounds: LivenessBounds): { failures: string[]; maxLatencyMs: number; maxServiceGapMs: number } {
  const failures: string[] = [];
  const end = cluster.sim.now;
  const disruptions = [...cluster.disruptions].sort((a, b) => a - b);
  // Not measured inside a chaos window or while the only replica holding the state is frozen.
  const inChaos = (t: number) => cluster.exempt(t);
  const alive = (h: KvHistoryOp) => !cluster.deadClients.has(String(h.client));

  // 1. Per operation: completed within the bound of the later of its call and the last fault action before
  //    its return; an operation still pending at the end (its client alive) counts until the end.
  let maxLatencyMs = 0;
  const late: string[] = [];
  for (const h of cluster.history) {
    if (h.return === undefined && !alive(h)) continue;
    const ret = h.return ?? end;
    if (h.return !== undefined && inChaos(ret)) continue;
    const start = Math.max(h.call, lastBefore(disruptions, ret));
    const latency = ret - start;
    maxLatencyMs = Math.max(maxLatencyMs, latency);
    if (latency > bounds.opBoundMs) {
      const since = start === h.call ? 'its call' : `the fault action at ${fmt(start)}`;
      late.push(
        h.return !== undefined
          ? `liveness: ${h.client} ${h.op} ${h.key} called at ${fmt(h.call)} completed at ${fmt(ret)}, ${fmt(latency)} after ${since} (bound ${bounds.opBoundMs}ms)`
          : `liveness: ${h.client} ${h.op} ${h.key} called at ${fmt(h.call)} never completed: still pending at ${fmt(end)}, ${fmt(latency)} after ${since} (bound ${bounds.opBoundMs}ms)`,
      );
    }
  }
  failures.push(...late.slice(0, 4));
  if (late.length > 4) failures.push(`liveness: … and ${late.length - 4} more operations beyond the bound`);

  // 2. The pair serves: from the later of a call and the last fault action, SOME client gets an answer (or
  //    a replica reports `blocked`: it says plainly why not) within the serve bound.
  const answers = [
    ...cluster.history.filter((h) => h.return !== undefined).map((h) => h.return!),
    ...cluster.blockedReports.map((b) => b.time),
  ].sort((a, b) => a - b);
  let maxServiceGapMs = 0;
  let worst: { gap: number; from: number; to: number; op: KvHistoryOp; pendingAtEnd: boolean } | undefined;
  for (const h of cluster.history) {
    if (h.return === undefined && !alive(h)) continue;
    const idx = answers.findIndex((t) => t >= h.call);
    let first = idx >= 0 ? answers[idx]! : end;
    if (h.return === undefined) first = Math.min(first, end);
    const pendingAtEnd = idx < 0 || answers[idx]! > end;
    if (inChaos(first)) continue;
    const from = Math.max(h.call, lastBefore(disruptions, first));
    const gap = first - from;
    if (gap > maxServiceGapMs) maxServiceGapMs = gap;
    if (gap > bounds.serveBoundMs && (worst === undefined || gap > worst.gap)) worst = { gap, from, to: first, op: h, pendingAtEnd };
  }
  // 3. The same from the replicas' side: after the first fault, never longer than the serve bound without a
  //    running replica in a serving role (primary / solo-primary), counted from the later of the moment
  //    serving stopped and the last fault action — unless a replica reported `blocked` meanwhile.
  if (disruptions.length > 0) {
    let worstRole: { gap: number; from: number; to: number } | undefined;
    for (const [a, z0] of cluster.unserved) {
      const z = Math.min(z0, end);
      if (z < disruptions[0]! || cluster.exempt(z)) continue;
      const from = Math.max(a, lastBefore(disruptions, z));
      const gap = z - from;
      if (gap <= bounds.serveBoundMs || cluster.blockedReports.some((b) => b.time >= from && b.time <= z)) continue;
      if (worstRole === undefined || gap > worstRole.gap) worstRole = { gap, from, to: z };
      maxServiceGapMs = Math.max(maxServiceGapMs, gap);
    }
    if (worstRole && (worst === undefined || worstRole.gap > worst.gap)) {
      failures.unshift(
        `liveness: no replica served (running as primary or solo-primary) from ${fmt(worstRole.from)} to ${fmt(worstRole.to)}${worstRole.to === end ? ' (end of run)' : ''}: ${fmt(worstRole.gap)} after ${worstRole.from === lastBefore(disruptions, worstRole.to) ? 'the last fault action' : 'serving stopped'} > serve bound ${bounds.serveBoundMs}ms; replicas: ${cluster.describeRoles()}${lossNote(cluster, worstRole.to)}`,
      );
      worst = undefined;
    }
  }
  if (worst) {
    const since = worst.from === worst.op.call ? `${worst.op.client}'s ${worst.op.op} ${worst.op.key} was called` : 'the last fault action';
    failures.unshift(
      `liveness: no replica answered any client from ${fmt(worst.from)} (${since}) to ${fmt(worst.to)}${worst.pendingAtEnd ? ' (end of run)' : ''}: ${fmt(worst.gap)} > serve bound ${bounds.serveBoundMs}ms; replicas: ${cluster.describeRoles()}${lossNote(cluster, worst.to)}`,
    );
  }
  return { failures, maxLatencyMs, maxServiceGapMs };
}

/**
 * Ground truth for a stall after the primary was killed: does the surviving replica hold every entry any
 * client had an acknowledgement for? Then it could have resumed by itself (nothing was lost); otherwise
 * only an operator accepting the loss can resume.
 */
function lossNote(cluster: KvCluster, at: number): string {
  const kill = [...cluster.primaryKills].reverse().find((k) => k.time <= at);
  if (kill === undefined) return '';
  const survivor = cluster.other(cluster.slotOf(kill.node)!);
  if (!cluster.live(survivor)) return '';
  let acked = 0;
  for (const h of cluster.history) {
    const info = cluster.opInfo.get(h);
    if (h.return !== undefined && h.return <= kill.time && info !== undefined) acked = Math.max(acked, info.seq);
  }
  const held = survivor.replica!.status().appliedSeq;
  return acked <= held
    ? `; nothing acknowledged was lost: ${survivor.name} holds seq ${held} ≥ ${acked}, the last seq acknowledged before ${kill.node} was killed at ${fmt(kill.time)}`
    : `; acknowledged seq ${held + 1}…${acked} existed only on ${kill.node} (killed at ${fmt(kill.time)}): only an operator accepting the loss can resume`;
}

/** `blocked` is the right answer only where the primary died while the other replica could miss what it
 * acknowledged (no caught-up backup); and the lost-state variant requires it. */
function checkBlocked(cluster: KvCluster): string[] {
  const failures: string[] = [];
  const kills = cluster.primaryKills;
  for (const b of cluster.blockedReports) {
    const kill = [...kills].reverse().find((k) => k.time <= b.time);
    if (kill === undefined) failures.push(`${b.node} reported blocked at ${fmt(b.time)} (${b.reason}) although no primary was ever killed`);
    else if (kill.otherRole === 'backup' && !kill.dropping && cluster.variant.expectBlocked !== true) {
      // A kill with a backup in place is the single fault the protocol must survive by itself.
      failures.push(
        `${b.node} reported blocked at ${fmt(b.time)} (${b.reason}) after a single fault: ${kill.node} was killed at ${fmt(kill.time)} while ${kill.node === 'ra' ? 'rb' : 'ra'} was its backup`,
      );
    }
  }
  // After a lost-state double fault, a replica must say so (before the pair serves again).
  for (const l of cluster.lostState) {
    if (l.averted) continue;
    const report = cluster.blockedReports.find((b) => b.time >= l.at);
    if (report === undefined) {
      failures.push(
        `lost state: after the primary was killed at ${fmt(l.at)} while ${l.joiner} held no state, no replica reported blocked (cannot prove nothing acknowledged was lost)${l.joinerEpoch === 0 ? ` — ${l.joiner} had not yet heard from the primary (epoch 0); it only knows from its role hint 'backup' that a primary with state existed` : ''}; replicas: ${cluster.describeRoles()}`,
      );
    }
  }
  return failures;
}

function countAlarms(cluster: KvCluster): AlarmSummary {
  const b = cluster.bounds;
  const cfg = cluster.cfg;
  const summary: AlarmSummary = { total: 0, justified: 0, falseAlarms: [] };
  const overlaps = (o: Outage, from: number, to: number) => o.from <= to && o.to >= from;
  for (const r of cluster.replicaEvents) {
    if (r.event.type !== 'peer-faulty') continue;
    summary.total++;
    const peer = cluster.other(cluster.slotOf(r.node)!);
    const joinReason = /joiner/.test(r.event.reason);
    // The failure detector's window: maxRetransmits re-sends ackTimeoutMs apart on flush ticks (or the
    // join timeout), plus one ack's transit.
    const window = (joinReason ? b.joinTimeoutMs : b.peerFaultyMs) + cfg.ackTimeoutMs + 2 * cfg.flushIntervalMs;
    const from = r.time - window;
    const outages = cluster.outages.filter((o) => o.node === peer.name && overlaps(o, from, r.time));
    if (outages.some((o) => o.kind !== 'stalled')) {
      summary.justified++;
      continue;
    }
    const context: FalseAlarm['context'] =
      outages.length > 0
        ? 'stall'
        : cluster.chaosWindows.some(([a, z]) => a <= r.time && z >= from)
          ? 'message-chaos'
          : cluster.severs.some((t) => t >= from && t <= r.time)
            ? 'sever'
            : peer.node.cpu.perMessageMs > 0 || peer.node.cpu.perKiBMs > 0 || (cluster.gcStalls.get(peer.name) ?? 0) > 0
              ? 'cpu-load'
              : 'unexplained';
    summary.falseAlarms.push({ time: r.time, node: r.node, peer: peer.name, reason: r.event.reason, context });
  }
  return summary;
}
