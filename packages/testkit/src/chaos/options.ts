/**
 * The chaos runner's options (runChaos), their defaults, and the control a test gets once the load runs.
 */
import type { ChaosReplica } from './process.js';
import type { ActionRecord, NemesisMode } from './report.js';
import type { ChaosBounds, TimedEvent } from './types.js';

/** How a killed replica is restarted: always `serve`, always `rejoin`, alternating, or at random. */
export type RestartMode = 'serve' | 'rejoin' | 'alternate' | 'random';

/** Options of a chaos run: nemesis actions and mode, clients, targets, delays, restart mode, timeouts, seed, listeners. */
export interface ChaosOptions {
  /** Nemesis actions (kills + stops). */
  actions: number;
  clients: number;
  nemesis: NemesisMode;
  seed?: number;
  /** How a killed replica comes back (default 'alternate': serve, rejoin, serve, …). */
  restart?: RestartMode;
  /** Which replica the nemesis aims at (default 'both': primary or backup at random). */
  targets?: 'primary' | 'backup' | 'both';
  /** Wait after the chosen target becomes eligible, ms (default [0, 200]). */
  delayMs?: readonly [number, number];
  /** Probability of a longer wait instead, in `longDelayMs` (default 0.15, [200, 1500]). */
  longDelayChance?: number;
  longDelayMs?: readonly [number, number];
  /** From a kill's exit to the restart, ms (default [0, 400]). */
  restartDelayMs?: readonly [number, number];
  /** A SIGSTOP lasts worstCaseFailoverMs + this (default 250). */
  pauseMarginMs?: number;
  /** Load before the first action (default 500 ms). */
  warmupMs?: number;
  /** Keep the load at least this long, even with no actions left (default 0). */
  minDurationMs?: number;
  /** Load after the pair recovered from the last action (default 500 ms). */
  tailMs?: number;
  /** End the run when no call succeeded for this long (default 20 000 ms). */
  outageAbortMs?: number;
  /** End the run when the pair has not been primary + backup again for this long (default 20 000 ms). */
  redundancyTimeoutMs?: number;
  /** After the load stopped: wait up to this long for primary + backup before reading (default 5 000 ms). */
  settleMs?: number;
  startTimeoutMs?: number;
  /** Bound on the workload's stop (default 30 000 ms). */
  stopTimeoutMs?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Per-action records in the report. */
  verbose?: boolean;
  /** Abort (Ctrl-C): the processes are killed and a partial report (no verification) returned. */
  signal?: AbortSignal;
  /** Every replica event as it arrives (run clock in `at`), e.g. to keep a timeline for a post-mortem. */
  onEvent?: (event: TimedEvent) => void;
  /** Called once the pair serves and the load runs (tests use it to interfere behind the nemesis' back). */
  onStarted?: (control: ChaosControl) => void;
}

/** What a running chaos run exposes to its workload and listeners: clock, replica processes, servers, bounds, actions. */
export interface ChaosControl {
  /** ms since the run began. */
  now(): number;
  /** The current process of each slot. */
  replicas(): readonly (ChaosReplica | undefined)[];
  servers: readonly [string, string];
  bounds: ChaosBounds;
  /** The nemesis' actions so far. */
  actions(): readonly ActionRecord[];
}

/** The options with every default filled in (and a seed drawn when none was given). */
export type ResolvedChaosOptions = Required<Omit<ChaosOptions, 'signal' | 'onStarted' | 'onEvent' | 'log' | 'seed'>> &
  Pick<ChaosOptions, 'signal' | 'onStarted' | 'onEvent'> & { seed: number; log: (line: string) => void };

export function resolveChaosOptions(options: ChaosOptions): ResolvedChaosOptions {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const o: ResolvedChaosOptions = {
    restart: 'alternate',
    targets: 'both',
    delayMs: [0, 200],
    longDelayChance: 0.15,
    longDelayMs: [200, 1500],
    restartDelayMs: [0, 400],
    pauseMarginMs: 250,
    warmupMs: 500,
    minDurationMs: 0,
    tailMs: 500,
    outageAbortMs: 20_000,
    redundancyTimeoutMs: 20_000,
    settleMs: 5_000,
    startTimeoutMs: 20_000,
    stopTimeoutMs: 30_000,
    verbose: false,
    ...stripUndefined(options),
    actions: options.actions,
    clients: options.clients,
    nemesis: options.nemesis,
    seed,
    log: options.log ?? ((line: string) => void process.stderr.write(line + '\n')),
  };
  if (!Number.isInteger(o.actions) || o.actions < 0) throw new RangeError('actions must be a non-negative integer');
  if (!Number.isInteger(o.clients) || o.clients < 1) throw new RangeError('clients must be a positive integer');
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
