/**
 * `@tandem/testkit/chaos`: a chaos runner for real replica processes of any service built on
 * @tandem/core — SIGKILL / SIGSTOP of the primary or the backup under flat-out load, restarts, and one
 * report (lost, duplicated, linearizable, stalls, false alarms, takeover times). See docs/TESTING.md.
 *
 * @packageDocumentation
 */
export { runChaos, freePort } from './runner.js';
export type { ChaosOptions, ChaosControl, RestartMode } from './options.js';
export {
  buildReport,
  formatChaosReport,
  CHAOS_RULE,
  type ChaosReport,
  type ActionRecord,
  type StallRecord,
  type NemesisMode,
  type RunEnd,
  type RunRecord,
  type ChaosBoundsReport,
} from './report.js';
export { ChaosReplica, parseJsonEventLine } from './process.js';
export { printReplicaEvents, printServing, replicaEventLine, type LineWriter } from './events.js';
export {
  findOutages,
  classifyAlarms,
  firstReplyAfter,
  percentile,
  summarize,
  type FaultSpan,
  type Outage,
  type AlarmEvent,
  type ClassifiedAlarm,
  type SuccessRecord,
  type LatencySummary,
} from './analysis.js';
export type {
  ChaosTarget,
  ChaosWorkload,
  ChaosBounds,
  CallResult,
  WorkloadContext,
  WorkloadVerdict,
  FinalState,
  ReplicaLaunch,
  ReplicaCommand,
  ReplicaEventLine,
  TimedEvent,
  SlotIndex,
} from './types.js';
