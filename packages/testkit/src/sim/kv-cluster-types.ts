/**
 * The key-value simulation's records (kv-cluster.ts): the replica and client slots, the cluster's
 * options and test seams, outages, `blocked` reports, the operator's promotes and primary kills.
 */
import type { Replica, ReplicaOptions, ReplicationConfig, Role } from '@tandem/core';
import type { VariantSpec } from './faults.js';
import type { KvCluster } from './kv-cluster.js';
import type { SimKvReply, SimKvRequest, SimKvState } from './kv-service.js';
import type { SimNode } from './node.js';

export const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);

/** One replica position of a simulated pair: its node, addresses, current replica, and whether this incarnation holds state. */
export interface ReplicaSlot {
  name: string;
  node: SimNode;
  address: string;
  peer: string;
  replica: Replica<SimKvState> | undefined;
  /** This incarnation has held the service's state (it was a backup or a primary): a kill of its peer
   * then is a single fault. False for a fresh restart until it installed a copy. */
  stateful: boolean;
}

/** One simulated client: its node, operations remaining, whether it finished, and its incarnation. */
export interface ClientSlot {
  name: string;
  node: SimNode;
  remaining: number;
  finished: boolean;
  incarnation: number;
}

export interface KvClusterOptions {
  variant: VariantSpec;
  config: Partial<ReplicationConfig>;
  clients: number;
  opsPerClient: number;
  keys: number;
  hooks?: KvClusterHooks;
  workload?: KvWorkload;
}

/** The clients' workload shape (default: 40 % get, 20 % put, 40 % append, 0–15 ms between operations). */
export interface KvWorkload {
  /** Think time between a client's operations: uniform in [0, thinkMaxMs]. */
  thinkMaxMs?: number;
  /** Shares of gets and puts (the rest are appends). An append-only write mix makes every lost or
   * duplicated acknowledged write show in the final reads. */
  getShare?: number;
  putShare?: number;
  /** Now and then a client goes quiet: with this probability per operation it waits idleMs[0]…idleMs[1]
   * instead (default 0: never). A client idle through a failover comes back to the replica it knew. */
  idleChance?: number;
  idleMs?: readonly [number, number];
}

/** Test seams (see KvSimulationOptions.hooks). */
export interface KvClusterHooks {
  /** Called once the cluster has started its replicas and clients. */
  onStart?(cluster: KvCluster): void;
  /** Wrap or replace each replica the cluster creates (e.g. to inject a fault). */
  wrapReplica?(replica: Replica<SimKvState>, slot: ReplicaSlot, cluster: KvCluster): Replica<SimKvState>;
  /** More options for each replica the cluster creates (e.g. a simulated `witness`, per incarnation). */
  replicaOptions?(slot: ReplicaSlot, cluster: KvCluster): Partial<ReplicaOptions<SimKvState, SimKvRequest, SimKvReply>>;
}

/** Why a process did not answer for a while: crashed, paused (SIGSTOP), stalled (a fault's event-loop
 * stall), or cut off from its peer by a targeted network fault (its acks lost). `to` is Infinity while open. */
export interface Outage {
  node: string;
  kind: 'down' | 'paused' | 'stalled' | 'isolated';
  from: number;
  to: number;
}

/** What the lead's core adds (optional here, so this file works with and without it): a replica that
 * cannot prove nothing acknowledged was lost says so in its status and with a `blocked` event, and waits
 * for the operator's `promote({ acceptLoss: true })`. */
export interface BlockedInfo {
  reason: string;
  haveSeq: number;
}
export interface MaybeBlockingReplica {
  status(): { blocked?: BlockedInfo | undefined };
  promote?: (options: { acceptLoss: boolean }) => unknown;
}

/** A replica that reported it cannot serve (its reason, and the seq it has). */
export interface BlockedReport {
  time: number;
  node: string;
  reason: string;
  haveSeq: number;
}

/** A simulated operator's promote after a double fault: what the promoted replica holds and what was lost. */
export interface OperatorAction {
  time: number;
  node: string;
  /** The promoted replica's appliedSeq: acknowledged operations beyond it were lost by the double fault. */
  appliedSeq: number;
  /** Acknowledged operations (before the promote) the promoted replica does not reflect. */
  lostOps: number;
  /** The promoted replica's key-value data: the state the history after the promote starts from (taken
   * when it starts serving: it may order forwarded entries first). */
  data: [string, string][];
  /** It serves now (appliedSeq, data and lostOps are final). */
  served: boolean;
}

/** A kill of the primary: was the other replica a backup in its epoch (the single-fault case), and what did
 * each hold (ground truth for judging a later `blocked`). */
export interface PrimaryKill {
  time: number;
  node: string;
  otherRole: Role | 'down';
  /** The primary had declared its backup faulty since it last admitted one (it was dropping it). */
  dropping: boolean;
  primarySeq: number;
  otherSeq: number;
}
