/**
 * The partition nemesis (the partition scenario, partition-run.ts): links cut and healed, not processes
 * crashed. Every choice — which link, how long, whether the witness is cut off too and when — is drawn
 * from the run's PRNG.
 *
 * - 'partition-pair': the primary–backup link is cut while every client still reaches both replicas, for
 *   2–6 takeover bounds (plus up to 1.5 leases when the run has a witness, so a takeover after a lease
 *   expiry fits in); with a witness, 3 runs in 5 also cut a replica off from the witness: the primary or the
 *   backup, at once or later in the partition, or first the backup and later the primary instead (the
 *   primary wins the witness and serves alone, then its grant lapses). Then everything heals at once
 *   (messages held in the partition are delivered, as TCP retransmits them). Without a witness both replicas end up serving alone: SPLIT BRAIN,
 *   and the older side's acknowledged writes are lost when it rejoins (docs/PROTOCOL.md "Remaining limits").
 * - 'partition-hosts' (not drawn by default: `--faults partition-hosts`): the same, but the primary's host
 *   is cut off from the backup — its co-located client reaches only the primary, so its writes never reach
 *   the backup by the clients' forwards either.
 * - 'isolate-witness': one or both replicas are cut off from the witness while the pair is healthy; the
 *   witness is off the request path, so nothing may change (no takeover, no failed or late request).
 *
 * Both replicas are marked `isolated` (KvCluster.isolate) while cut off from each other, so the failure
 * alarms they raise count as justified. The cut, a later witness cut and the heal are fault actions (the
 * liveness bounds count from the latest).
 */
import type { KvCluster } from './kv-cluster.js';
import type { SimNode } from './node.js';
import { witnessOf } from './witness.js';

/** Partition faults: cut the pair's link, split the hosts, or cut a replica off from the witness. */
export type PartitionFaultKind = 'partition-pair' | 'partition-hosts' | 'isolate-witness';

/** One cut of the primary–backup link ('pair'), or of replicas from the witness alone ('witness'): when,
 * until when (Infinity while open), and the witness cut with it. */
export interface PartitionWindow {
  kind: 'pair' | 'witness';
  from: number;
  to: number;
  /** The replica also cut off from the witness, and when (undefined: none). */
  witnessCut: { node: string; at: number } | undefined;
}

const windows = new WeakMap<KvCluster, PartitionWindow[]>();

/** The primary–backup partitions injected into `cluster` so far. */
export function partitionWindows(cluster: KvCluster): readonly PartitionWindow[] {
  return windows.get(cluster) ?? [];
}

export async function injectPartition(cluster: KvCluster, kind: PartitionFaultKind): Promise<void> {
  const sim = cluster.sim;
  const rng = sim.random;
  const net = sim.network;
  const witness = witnessOf(sim);
  const takeoverMs = cluster.bounds.takeoverMs;
  const leaseMs = witness?.leaseMs ?? 0;
  const [ra, rb] = cluster.replicas;
  const p = cluster.primary() ?? ra;
  const b = cluster.other(p);
  const names = (nodes: readonly SimNode[]) => nodes.map((n) => n.name).join(' + ');

  if (kind === 'isolate-witness') {
    if (witness === undefined) return;
    const who = rng.pick(['primary', 'backup', 'both'] as const);
    const cut = who === 'primary' ? [p.node] : who === 'backup' ? [b.node] : [ra.node, rb.node];
    const holdMs = rng.between(1, 3) * (takeoverMs + leaseMs);
    for (const n of cut) witness.cut(n);
    cluster.noteFault(`isolate-witness ${names(cut)} (${who}) for ${holdMs.toFixed(1)}ms: the pair is healthy, nothing may change`);
    const w: PartitionWindow = {
      kind: 'witness',
      from: sim.now,
      to: Number.POSITIVE_INFINITY,
      witnessCut: { node: names(cut), at: sim.now },
    };
    windows.set(cluster, [...partitionWindows(cluster), w]);
    await cluster.sleep(holdMs);
    witness.reconnect();
    w.to = sim.now;
    cluster.noteFault('the witness is reachable again');
    return;
  }

  // With a witness: none; the primary or the backup cut off from it (at once or later); or SWITCH — the
  // backup cut off at once (the primary wins the witness and serves alone), later the cut moves to the
  // primary (its grant lapses: the backup must still not serve without the primary's writes).
  const plan = witness === undefined ? 'none' : rng.pick(['none', 'none', 'primary', 'backup', 'switch'] as const);
  const holdMs = rng.between(2, 6) * takeoverMs + (witness ? rng.between(0, 1.5) * leaseMs : 0) + (plan === 'switch' ? leaseMs : 0);
  const cutAfter = plan === 'primary' || plan === 'backup' ? (rng.chance(0.5) ? 0 : rng.between(0, holdMs)) : 0;
  const switchAfter = plan === 'switch' ? rng.between(0.2, 0.5) * holdMs : 0;
  net.partition([ra.node], [rb.node]);
  // 'partition-hosts': the primary's host (with its co-located client) is cut off from the backup.
  const hostClients = kind === 'partition-hosts' ? cluster.clients.filter((c) => c.node.host === p.node.host).map((c) => c.node) : [];
  if (hostClients.length > 0) net.partition(hostClients, [b.node]);
  const endA = cluster.isolate(ra.node);
  const endB = cluster.isolate(rb.node);
  const what =
    plan === 'none'
      ? ''
      : plan === 'switch'
        ? `; ${b.name} (backup) cut off from the witness, after ${switchAfter.toFixed(1)}ms ${p.name} (primary) instead`
        : `; ${(plan === 'primary' ? p : b).name} (${plan}) cut off from the witness ${cutAfter > 0 ? `${cutAfter.toFixed(1)}ms later` : 'too'}`;
  cluster.noteFault(
    `partition ${p.name} | ${b.name} (the primary–backup link; ${hostClients.length > 0 ? `${names(hostClients)} on ${p.name}'s host reach only ${p.name}, the other clients both` : 'clients reach both'}) for ${holdMs.toFixed(1)}ms${what}`,
  );
  const started = sim.now;
  const window: PartitionWindow = { kind: 'pair', from: started, to: Number.POSITIVE_INFINITY, witnessCut: undefined };
  windows.set(cluster, [...partitionWindows(cluster), window]);
  if (witness && plan !== 'none') {
    const first = plan === 'primary' ? p : b;
    if (cutAfter > 0) await cluster.sleep(cutAfter);
    witness.cut(first.node);
    window.witnessCut = { node: first.name, at: sim.now };
    if (cutAfter > 0) cluster.noteFault(`${first.name} cut off from the witness (${witness.describe()})`);
    if (plan === 'switch') {
      await cluster.sleep(switchAfter);
      witness.reconnect(b.node);
      witness.cut(p.node);
      window.witnessCut = { node: p.name, at: sim.now };
      cluster.noteFault(`the witness cut moves: ${b.name} reaches it again, ${p.name} is cut off (${witness.describe()})`);
    }
  }
  await cluster.sleep(Math.max(0, started + holdMs - sim.now));
  net.heal();
  witness?.reconnect();
  window.to = sim.now;
  endA();
  endB();
  cluster.noteFault(`heal ${ra.name} | ${rb.name}${plan !== 'none' ? ' and the witness' : ''} (roles: ${cluster.describeRoles()})`);
}
