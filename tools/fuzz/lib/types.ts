/**
 * The contract between the fuzz runner (runner.ts) and its targets (targets/*.ts), and the report shape
 * `npm run fuzz -- --json` prints.
 */
import type fc from 'fast-check';

/**
 * What one input did wrong.
 * - crash: an uncaught exception, an unhandled rejection, an exception of an undocumented type, or an
 *   exception a product component caught and logged as its own bug ("handler-failed").
 * - hang: handling the input did not settle within its bound (virtual time, event budget or wall clock).
 * - honest-failure: a well-behaved party running beside the attacker saw a failure (a call failed or gave
 *   a wrong answer, a transfer did not verify, valid frames did not decode to what was encoded).
 * - state-changed: a replica's role, epoch or state changed other than by honest requests.
 * - violation: any other broken invariant (unbounded allocation, an error where none is due, a reply
 *   missing, a limit not enforced).
 */
export type FindingKind = 'crash' | 'hang' | 'honest-failure' | 'state-changed' | 'violation';

export interface Finding {
  kind: FindingKind;
  /** Stable short key for deduplication: same bug, same signature (no numbers that vary per input). */
  signature: string;
  message: string;
  stack?: string;
}

export interface InputOutcome {
  findings: Finding[];
  /** The world can no longer be trusted (a replica deposed, a session dead…): rebuild it before the next input. */
  broken?: boolean;
}

/** Options every target receives (from the command line). */
export interface TargetOptions {
  /** The fuzz seed (targets derive their own deterministic randomness from it). */
  seed: number;
  /** `--core-security on|off|auto` resolved: peer authentication requested from @tandem/core. */
  coreSecurity: 'on' | 'off' | 'auto';
  /** TEST ONLY: deliberately broken variants of a target's system under test, to prove the harness fails. */
  inject?: string;
  /** Extra per-target settings (tests). */
  extra?: Record<string, unknown>;
}

export interface FuzzTarget<I = unknown, W = unknown> {
  readonly name: string;
  readonly description: string;
  /** True when an honest party runs beside the attacker (honestFailures applies). */
  readonly honest: boolean;
  /** True when the target watches a system's state for changes the attacker caused (stateChanged applies). */
  readonly state: boolean;
  /** True when inputs run against a world that outlives them (replay from the world's first input). */
  readonly stateful: boolean;
  arbitrary(options: TargetOptions): fc.Arbitrary<I>;
  setup(options: TargetOptions): Promise<W>;
  run(world: W, input: I): Promise<InputOutcome>;
  teardown(world: W): Promise<void>;
  /** Lines for the report (e.g. "core security off: findings expected until auth lands"). */
  notes?(world: W | undefined, options: TargetOptions): string[];
}

/** One distinct failure (by signature) in the report. */
export interface FailureSummary {
  kind: FindingKind;
  signature: string;
  /** Inputs with this signature. */
  count: number;
  /** Index (fast-check run number under `seed`) of the first input with it. */
  index: number;
  /** The world of that input was created at this index (stateful targets: replay from here). */
  replayFrom: number;
  message: string;
  stack?: string;
  /** fast-check path of the (shrunk) input, for `--path`. */
  path: string;
  /** Whether the input alone (fresh world) reproduced it. */
  reproducesAlone?: boolean;
  /** The input (fc.stringify, cut to a few KB), shrunk when possible. */
  input?: string;
  /** Where the failure was saved, and how to replay it. */
  file?: string;
  replay?: string;
}

export interface TargetReport {
  runs: number;
  crashes: number;
  hangs: number;
  /** null when no honest party runs beside the attacker. */
  honestFailures: number | null;
  stateChanged: number | null;
  violations: number;
  /** Worlds rebuilt after an input broke one (stateful targets). */
  restarts: number;
  seed: number;
  ms: number;
  /** Inputs per second. */
  rate: number;
  failures: FailureSummary[];
  notes: string[];
}

export interface FuzzReport {
  targets: Record<string, TargetReport>;
  ok: boolean;
}
