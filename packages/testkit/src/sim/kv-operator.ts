/**
 * The key-value simulation's `blocked` replicas and the operator who answers them (KvCluster delegates
 * here): the `blocked` reports, the operator's promote and what it gave up, the guarantee checked when a
 * replica starts serving alone, and the history cut at each promote.
 */
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { KvCluster } from './kv-cluster.js';
import { type BlockedInfo, type MaybeBlockingReplica, type OperatorAction, type ReplicaSlot, SERVING } from './kv-cluster-types.js';
import type { SimNode } from './node.js';

export function noteBlocked(cluster: KvCluster, slot: ReplicaSlot, info: Partial<BlockedInfo>): void {
  const last = cluster.blockedReports.filter((b) => b.node === slot.name).at(-1);
  if (last && (cluster.operatorActions.at(-1)?.time ?? -1) < last.time) return; // same episode
  cluster.blockedReports.push({
    time: cluster.sim.now,
    node: slot.name,
    reason: String(info.reason ?? '?'),
    haveSeq: Number(info.haveSeq ?? slot.replica!.status().appliedSeq),
  });
  cluster.onBlocked?.();
}

/** Replicas whose status says `blocked` (noting each new report). */
export function blockedNow(cluster: KvCluster): ReplicaSlot[] {
  const out: ReplicaSlot[] = [];
  for (const s of cluster.replicas) {
    if (!cluster.live(s) || s.node.state !== 'up') continue;
    const b = (s.replica as unknown as MaybeBlockingReplica).status().blocked;
    if (b) {
      noteBlocked(cluster, s, b);
      out.push(s);
    }
  }
  return out;
}

/** The operator promotes `slot`, accepting the loss (see KvCluster.operatorPromote). */
export function operatorPromote(cluster: KvCluster, slot: ReplicaSlot): void {
  const seq = slot.replica!.status().appliedSeq;
  const now = cluster.sim.now;
  const lost = lostOps(cluster, seq, now);
  const action: OperatorAction = {
    time: now,
    node: slot.name,
    appliedSeq: seq,
    lostOps: lost,
    data: [...slot.replica!.state.data],
    served: false,
  };
  cluster.operatorActions.push(action);
  cluster.noteFault(`operator: ${slot.name}.promote({ acceptLoss: true }) at seq ${seq} (${lost} acknowledged operations beyond it)`);
  try {
    const r = (slot.replica as unknown as MaybeBlockingReplica).promote!({ acceptLoss: true });
    // A refused promote changed nothing (e.g. a witness refused it: another replica serves): it is no
    // operator action (no history cut, no fault action) — and still a failure here (the partition scenario
    // expects it, partition-run.ts).
    if (r instanceof Promise)
      r.catch((err: unknown) => {
        if (!action.served) {
          cluster.operatorActions.splice(cluster.operatorActions.indexOf(action), 1);
          const d = cluster.disruptions.lastIndexOf(now);
          if (d >= 0) cluster.disruptions.splice(d, 1);
        }
        cluster.failures.push(`operator promote of ${slot.name} failed: ${String(err)}`);
      });
  } catch (err) {
    cluster.failures.push(`operator promote of ${slot.name} failed: ${String(err)}`);
  }
}

/**
 * The guarantee, checked when a replica starts serving alone (takeover, first primary, promote): its
 * state reflects every reply a surviving client has received (clients that died, or died with the
 * primary's host, are not covered; replies before an operator's promote were given up by the operator).
 */
export function checkServesEverything(cluster: KvCluster, slot: ReplicaSlot): void {
  const seq = slot.replica!.status().appliedSeq;
  const since = cluster.operatorActions.at(-1)?.time ?? Number.NEGATIVE_INFINITY;
  const dead = new Set([...cluster.deadClients, ...cluster.diedWithPrimary.map((d) => d.label)]);
  let acked = 0;
  let who = '';
  for (const h of cluster.history) {
    const info = cluster.opInfo.get(h);
    if (h.return === undefined || info === undefined || h.return <= since || dead.has(String(h.client))) continue;
    if (info.seq > acked) {
      acked = info.seq;
      who = `${h.client} ${h.op} ${h.key} at ${h.return.toFixed(1)}ms`;
    }
  }
  if (acked > seq) {
    cluster.servedBehind.push(
      `acknowledged data not reflected: ${slot.name} started serving alone (solo-primary, epoch ${slot.replica!.status().epoch}) at ${cluster.sim.now.toFixed(1)}ms holding seq ${seq}, but surviving clients had replies up to seq ${acked} (${who}); replicas: ${cluster.describeRoles()}`,
    );
  }
}

/** The promoted replica starts serving: its operator action's appliedSeq, data and lostOps become final. */
export function promotedServes(cluster: KvCluster, slot: ReplicaSlot): void {
  const a = cluster.operatorActions.at(-1);
  if (a === undefined || a.node !== slot.name || a.served) return;
  a.served = true;
  a.appliedSeq = slot.replica!.status().appliedSeq;
  a.data = [...slot.replica!.state.data];
  a.lostOps = lostOps(cluster, a.appliedSeq, a.time);
}

/** Acknowledged operations answered by `before` that were sequenced beyond `seq`. */
function lostOps(cluster: KvCluster, seq: number, before: number): number {
  let lost = 0;
  for (const h of cluster.history) {
    const info = cluster.opInfo.get(h);
    if (h.return !== undefined && h.return <= before && info !== undefined && info.seq > seq) lost++;
  }
  return lost;
}

/** The history cut at each operator promote (see KvCluster.segments). */
export function segmentHistory(operatorActions: readonly OperatorAction[], history: readonly KvHistoryOp[]): KvHistoryOp[][] {
  if (operatorActions.length === 0) return [[...history]];
  const cuts = [...operatorActions].sort((a, b) => a.time - b.time);
  const out: KvHistoryOp[][] = [];
  for (let i = 0; i <= cuts.length; i++) {
    const from = i === 0 ? Number.NEGATIVE_INFINITY : cuts[i - 1]!.time;
    const to = i === cuts.length ? Number.POSITIVE_INFINITY : cuts[i]!.time;
    const seg: KvHistoryOp[] = [];
    if (i > 0)
      for (const [key, value] of cuts[i - 1]!.data)
        seg.push({ client: 'operator', op: 'put', key, value, call: from - 2, return: from - 1 });
    for (const h of history) {
      if (h.call >= to) continue;
      if (h.call < from) {
        if (h.return !== undefined && h.return > from && h.return <= to) seg.push({ ...h, call: from });
        continue;
      }
      seg.push(h.return !== undefined && h.return > to ? { ...h, return: undefined } : h);
    }
    out.push(seg);
  }
  return out;
}

/** Before `node` is killed: if it is a serving replica, record the kill with what each replica held. */
export function recordPrimaryKill(cluster: KvCluster, node: SimNode): void {
  const slot = cluster.replicas.find((s) => s.node === node);
  if (!slot || node.state === 'down' || !SERVING.has(cluster.role(slot)!)) return;
  const other = cluster.other(slot);
  const mine = cluster.replicaEvents.filter(
    (e) => e.node === slot.name && (e.event.type === 'peer-joined' || e.event.type === 'peer-faulty'),
  );
  cluster.primaryKills.push({
    time: cluster.sim.now,
    node: slot.name,
    otherRole: cluster.live(other) ? cluster.role(other)! : 'down',
    dropping: mine.at(-1)?.event.type === 'peer-faulty',
    primarySeq: slot.replica!.status().appliedSeq,
    otherSeq: cluster.live(other) ? other.replica!.status().appliedSeq : -1,
  });
}
