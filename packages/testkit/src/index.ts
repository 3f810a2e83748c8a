/**
 * @tandem/testkit — deterministic simulation of Tandem services (virtual time, a simulated network, crashing
 * and pausing processes, all decided by one seed) and a linearizability checker.
 *
 * @packageDocumentation
 */
export * from './linearizability/model.js';
export * from './linearizability/search.js';
export * from './linearizability/kv-history.js';
export * from './linearizability/check.js';
export * from './sim/random.js';
export * from './sim/scheduler.js';
export * from './sim/node.js';
export * from './sim/network.js';
export * from './sim/simulation.js';
export * from './sim/kv-service.js';
export * from './sim/faults.js';
export * from './sim/kv-run.js';
export * from './sim/causal-run.js';
export * from './sim/partition-run.js';
export * from './sim/witness.js';
export type { PartitionFaultKind, PartitionWindow } from './sim/partition-faults.js';
export type { KvCluster } from './sim/kv-cluster.js';
export type {
  KvClusterHooks,
  KvWorkload,
  ReplicaSlot,
  ClientSlot,
  Outage,
  BlockedReport,
  BlockedInfo,
  OperatorAction,
  PrimaryKill,
} from './sim/kv-cluster-types.js';
export type { AlarmSummary, FalseAlarm, LivenessBounds } from './sim/kv-checks.js';
export {
  startEtcd,
  etcdMissingReason,
  freePort,
  ETCD_BINARY,
  ETCD_INSTALL,
  type EtcdServer,
  type StartEtcdOptions,
} from './etcd.js';
