/**
 * The contract between the chaos runner and the service it tortures: how to launch a replica process,
 * how to read its events, and a client workload that records what it was told.
 */
import type { ChaosReplica } from './process.js';

/** The two slots of the pair: fixed listen addresses, a process per (re)start. */
export type SlotIndex = 0 | 1;

/** What the runner asks the target to start. */
export interface ReplicaLaunch {
  slot: SlotIndex;
  /** 'a' (slot 0) or 'b' (slot 1): the node id to give the replica. */
  name: string;
  listen: string;
  peer: string;
  /** 'primary' / 'backup' for the initial pair; every restart is 'backup'. */
  role: 'primary' | 'backup';
  /**
   * 'start' — the initial pair; 'serve' — a restart that joins as backup the ordinary way (e.g.
   * `serve --role backup`); 'rejoin' — a restart through the service's streaming rejoin, if it has one
   * (targets without one may treat it like 'serve').
   */
  how: 'start' | 'serve' | 'rejoin';
  /** 0 for the first process of the slot, then 1, 2, … */
  generation: number;
}

/** A command line for one replica process. */
export interface ReplicaCommand {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Open an IPC channel to the child. The runner then asks `{type: 'status', id}` and expects
   * `{id, status}` back (a `ReplicaStatus`, or anything JSON): the answer goes into stall records. The
   * workload may use `ChaosReplica.ask` for its own questions (tandem-kv answers `{type: 'read', keys}`).
   */
  ipc?: boolean;
}

/**
 * One line a replica printed, parsed. The runner understands these `event` names (the JSON lines of
 * `tandem-kv serve --json`, and of `printReplicaEvents` for your own serve program):
 * `timing` {bounds}, `role` / `serving` {role, epoch}, `takeover` {epoch}, `step-down`,
 * `peer-faulty` {reason}, `peer-joined`, `divergence`, `lost-entries`. Others are kept for the record.
 */
export interface ReplicaEventLine {
  event: string;
  role?: string;
  epoch?: number;
  [field: string]: unknown;
}

/** A parsed line with the runner's receive time (ms on the run's clock) and the process it came from. */
export interface TimedEvent extends ReplicaEventLine {
  at: number;
  node: string;
  generation: number;
}

/** The bounds the runner needs, as `computeTimingBounds` (@tandem/core) computes them. */
export interface ChaosBounds {
  worstCaseFailoverMs: number;
  takeoverMs: number;
  peerFaultyMs: number;
  joinTimeoutMs: number;
  /** A bound on a rejoin, when the service states one; else joinTimeoutMs is used. */
  rejoinMs?: number;
}

/** One call's outcome, on the run's clock (`ctx.now()`). */
export interface CallResult {
  client: number;
  /** When the call was issued. */
  call: number;
  /** When the reply (or the error) came back. */
  return: number;
  ok: boolean;
  /** The epoch of the replica that answered, when the client knows it (sharper takeover times). */
  epoch?: number;
}

/** What the runner gives a workload: the servers, client count, seed, clock, and where to record calls. */
export interface WorkloadContext {
  servers: readonly [string, string];
  clients: number;
  seed: number;
  /** ms since the run began. */
  now(): number;
  /** `performance.now()` at the run's time 0 (to convert a workload's own clock). */
  origin: number;
  /** Report every finished call; the runner measures outages and takeovers from these. */
  record(result: CallResult): void;
}

/** What the runner found when the load had stopped and the pair had settled. */
export interface FinalState {
  /** The replica serving (role primary / solo-primary, highest epoch), if any. */
  serving: ChaosReplica | undefined;
  /** The current process of each slot (undefined: none running). */
  replicas: readonly (ChaosReplica | undefined)[];
  servers: readonly [string, string];
}

/** A workload's verdict after the run: lost and duplicated writes, linearizability, and details. */
export interface WorkloadVerdict {
  /** Acknowledged writes missing from the serving replica's state. */
  lost: number;
  /** Writes applied more than once. */
  duplicated: number;
  linearizable: boolean;
  /** The checker's verdict and, when not linearizable, why. */
  linearizability?: { verdict: string; operations: number; explanation?: string };
  /**
   * When (run clock, ms) the lost writes had been acknowledged, in clusters: the report names the
   * nemesis actions around each, which is usually where to look.
   */
  lostAt?: { from: number; to: number; count: number }[];
  /** Anything else the workload wants in the report (e.g. acknowledged / unknown write counts). */
  extra?: Record<string, unknown>;
  details?: string[];
}

/** A client workload: C clients running flat out, recording a history. */
export interface ChaosWorkload {
  /** Start issuing operations (no pause between operations). */
  start(): void;
  /** Stop issuing, wait for calls in flight, close the clients. */
  stop(): Promise<void>;
  /** Read the serving replica's state and check the history. Throw if it cannot be read. */
  verify(final: FinalState): Promise<WorkloadVerdict>;
}

/** Everything the runner needs to know about a service. */
export interface ChaosTarget {
  name: string;
  /** The two listen addresses (default: tcp://127.0.0.1:<free port> each). */
  addresses?(): Promise<readonly [string, string]>;
  /** The command line for a replica. */
  launch(spec: ReplicaLaunch): ReplicaCommand;
  /** Parse one stdout line (default: a JSON object with a string `event`; other lines are ignored). */
  parseLine?(line: string): ReplicaEventLine | undefined;
  /** Bounds to use instead of the first `timing` event's `bounds`. */
  bounds?: ChaosBounds;
  /** Create the workload for a run. */
  workload(ctx: WorkloadContext): ChaosWorkload;
}
