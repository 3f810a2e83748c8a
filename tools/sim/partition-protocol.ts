/** Messages between the partition scenario's runner (partition.ts) and its workers (partition-worker.ts). */
import type { WitnessStats } from '@tandem/testkit';

export interface PartitionSeedRequest {
  seed: number;
  witness: boolean;
  verbose: boolean;
  /** Faults to draw from instead of the scenario's default. */
  faults?: string[];
}

export interface PartitionSeedResult {
  seed: number;
  ok: boolean;
  failures: string[];
  faults: string[];
  virtualMs: number;
  events: number;
  traceHash: string;
  leaseMs: number | undefined;
  /** The linearizability checker's verdict on the whole history. */
  linearizable: boolean;
  /** Acknowledged writes missing from the final reads. */
  lostWrites: number;
  /** Acknowledgements from an older epoch after a newer one had answered (two replicas serving). */
  overlaps: number;
  takeovers: number;
  maxLatencyAfterFaultMs: number;
  livenessBoundMs: number;
  witnessStats: WitnessStats | undefined;
  promotesRefused: number;
  blockedInPartition: number;
  changesWhileWitnessCut: number;
  wallMs: number;
  logs?: unknown[];
}
