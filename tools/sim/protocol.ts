/** Messages between the simulation runner and its worker processes. */
export interface SeedRequest {
  seed: number;
  variant: string;
  opsPerClient?: number;
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
  replicaEvents: Record<string, number>;
  wallMs: number;
  errorLogs?: unknown[];
  logs?: unknown[];
  trace?: string[];
}
