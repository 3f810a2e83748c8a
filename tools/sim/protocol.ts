/** Messages between the simulation runner and its worker processes. */
export interface SeedRequest {
  seed: number;
  variant: string;
  opsPerClient?: number;
  /** Draw faults from these kinds instead of the variant's. */
  faults?: string[];
  /** Run without CPU load (the variant's seeds otherwise draw one). */
  noLoad?: boolean;
  trace?: boolean;
  verbose?: boolean;
}

export interface SeedResult {
  seed: number;
  ok: boolean;
  failures: string[];
  faults: string[];
  piggyback: string;
  events: number;
  virtualMs: number;
  traceHash: string;
  historyLength: number;
  maxLatencyAfterFaultMs: number;
  livenessBoundMs: number;
  maxServiceGapMs: number;
  serveBoundMs: number;
  /** peer-faulty events: total, true alarms (peer down/paused/cut off), and the others (peer alive). */
  alarms: {
    total: number;
    justified: number;
    falseAlarms: { time: number; node: string; peer: string; reason: string; context: string }[];
  };
  blocked: { time: number; node: string; reason: string; haveSeq: number }[];
  operatorActions: { time: number; node: string; appliedSeq: number; lostOps: number }[];
  /** The replicas' CPU load, in words (empty: none). */
  load: string;
  replicaEvents: Record<string, number>;
  wallMs: number;
  errorLogs?: unknown[];
  logs?: unknown[];
  trace?: string[];
}
