/**
 * Runs one target over a range of fast-check inputs: input i of seed S is the value fast-check generates
 * for run i (so `--seed S --path i` replays it, and a shrunk input has a path like "i:3:0:1"). Every
 * input runs against the target's world, which is kept across inputs and rebuilt only when an input broke
 * it. Findings are counted per input and kind, deduplicated by signature, and — for the first few
 * signatures — reproduced alone on a fresh world and shrunk.
 */
import fc from 'fast-check';
import { captureAsyncErrors, crashFinding, drain, takeAsyncErrors } from './async-errors.js';
import type { FailureSummary, Finding, FindingKind, FuzzTarget, InputOutcome, TargetOptions } from './types.js';

export interface RunRequest {
  target: FuzzTarget;
  options: TargetOptions;
  seed: number;
  /** First fast-check run index. */
  from: number;
  /** Number of inputs. */
  runs: number;
  /** An exact fast-check path (e.g. a shrunk "12:3:0"); then `runs` inputs starting there. */
  path?: string;
  /** Wall-clock bound on one input (then: a hang, and the world is rebuilt). */
  inputTimeoutMs?: number;
  /** Distinct signatures kept in the result. */
  maxFailures?: number;
  /** Reproduce alone and shrink the first `shrink` signatures (0: none). */
  shrink?: number;
  /** Time budget of one shrink. */
  shrinkMs?: number;
  /** Called about every `progressMs` with the counts so far. */
  onProgress?(counts: RunCounts): void;
  progressMs?: number;
  /** A watchdog cell: the index of the input being run is stored at [0], a run counter at [1]. */
  cell?: Int32Array;
  /** Replay: called with each input and its findings. */
  onInput?(index: number, input: unknown, findings: Finding[]): void;
}

export interface RunCounts {
  runs: number;
  crashes: number;
  hangs: number;
  honestFailures: number;
  stateChanged: number;
  violations: number;
  restarts: number;
}

export interface RunResult extends RunCounts {
  ms: number;
  failures: FailureSummary[];
  notes: string[];
  /** Index after the last input run. */
  next: number;
}

const COUNTER: Record<FindingKind, keyof RunCounts> = {
  crash: 'crashes',
  hang: 'hangs',
  'honest-failure': 'honestFailures',
  'state-changed': 'stateChanged',
  violation: 'violations',
};

const TIMEOUT = Symbol('timeout');

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** fc.stringify, cut to `max` characters. */
export function describeInput(input: unknown, max = 8000): string {
  let s: string;
  try {
    s = fc.stringify(input);
  } catch (err) {
    s = `<unprintable: ${(err as Error).message}>`;
  }
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

/** Run one input against `world`, with the async errors it caused; never throws. */
async function runOne<W>(target: FuzzTarget<unknown, W>, world: W, input: unknown, timeoutMs: number): Promise<InputOutcome> {
  let outcome: InputOutcome;
  try {
    const r = await withTimeout(target.run(world, input), timeoutMs);
    if (r === TIMEOUT) {
      outcome = {
        findings: [
          {
            kind: 'hang',
            signature: `input not settled within ${timeoutMs} ms (wall clock)`,
            message: `the input did not settle within ${timeoutMs} ms of wall-clock time`,
          },
        ],
        broken: true,
      };
    } else outcome = r;
  } catch (err) {
    outcome = { findings: [crashFinding(`${target.name} input threw`, err)], broken: true };
  }
  await drain();
  const late = takeAsyncErrors();
  if (late.length > 0) outcome = { findings: [...outcome.findings, ...late], broken: outcome.broken };
  return outcome;
}

async function safeTeardown<W>(target: FuzzTarget<unknown, W>, world: W): Promise<void> {
  try {
    await withTimeout(target.teardown(world), 5000);
  } catch {
    // a world that cannot be torn down is dropped anyway
  }
}

export async function runTarget(req: RunRequest): Promise<RunResult> {
  captureAsyncErrors();
  takeAsyncErrors(); // nothing from before this run counts
  const target = req.target as FuzzTarget<unknown, unknown>;
  const timeoutMs = req.inputTimeoutMs ?? 10_000;
  const maxFailures = req.maxFailures ?? 20;
  const counts: RunCounts = { runs: 0, crashes: 0, hangs: 0, honestFailures: 0, stateChanged: 0, violations: 0, restarts: 0 };
  const bySignature = new Map<string, FailureSummary & { value?: unknown }>();
  const startIndex = req.path !== undefined ? Number(req.path.split(':')[0]) : req.from;
  const started = performance.now();
  let lastProgress = started;
  let world: unknown;
  let worldFrom = startIndex;
  let k = 0;
  let setupFailure: Finding | undefined;

  const property = fc.asyncProperty(target.arbitrary(req.options), async (input) => {
    const index = startIndex + k++;
    if (req.cell) {
      Atomics.store(req.cell, 0, index);
      Atomics.add(req.cell, 1, 1);
    }
    let outcome: InputOutcome;
    if (world === undefined) {
      try {
        world = await target.setup(req.options);
        worldFrom = index;
        setupFailure = undefined;
      } catch (err) {
        setupFailure ??= crashFinding(`${target.name} world setup failed`, err);
      }
    }
    if (world === undefined) outcome = { findings: [setupFailure!], broken: true };
    else outcome = await runOne(target, world, input, timeoutMs);
    counts.runs++;
    const kinds = new Set<FindingKind>();
    for (const f of outcome.findings) {
      kinds.add(f.kind);
      const known = bySignature.get(f.signature);
      if (known) known.count++;
      else if (bySignature.size < maxFailures) {
        bySignature.set(f.signature, {
          kind: f.kind,
          signature: f.signature,
          count: 1,
          index,
          replayFrom: target.stateful ? worldFrom : index,
          message: f.message.slice(0, 2000),
          ...(f.stack ? { stack: f.stack.split('\n').slice(0, 16).join('\n') } : {}),
          path: req.path !== undefined && k === 1 ? req.path : String(index),
          value: input,
        });
      }
    }
    for (const kind of kinds) counts[COUNTER[kind]]++;
    req.onInput?.(index, input, outcome.findings);
    if (world !== undefined && (outcome.broken || (target.stateful && outcome.findings.length > 0))) {
      await safeTeardown(target, world);
      world = undefined;
      counts.restarts++;
    }
    if (req.onProgress && (counts.runs & 63) === 0) {
      const now = performance.now();
      if (now - lastProgress >= (req.progressMs ?? 2000)) {
        lastProgress = now;
        req.onProgress({ ...counts });
      }
    }
    return true;
  });

  const params: fc.Parameters<[unknown]> = { seed: req.seed, numRuns: req.runs, path: req.path ?? String(req.from) };
  await fc.check(property, params);
  if (world !== undefined) await safeTeardown(target, world);
  world = undefined;
  const ms = performance.now() - started;

  const failures = [...bySignature.values()];
  const shrinkCount = req.shrink ?? 3;
  if (req.cell) Atomics.store(req.cell, 2, 1); // the watchdog allows a shrink its own time
  for (const f of failures.slice(0, shrinkCount)) await reproduce(req, target, f, timeoutMs);
  if (req.cell) Atomics.store(req.cell, 2, 0);
  for (const f of failures) {
    if (f.input === undefined) f.input = describeInput(f.value);
    delete f.value;
  }
  const notes = target.notes?.(undefined, req.options) ?? [];
  return { ...counts, ms, failures, notes, next: startIndex + k };
}

/** Run the failing input alone on a fresh world; if it fails the same way, let fast-check shrink it. */
async function reproduce(
  req: RunRequest,
  target: FuzzTarget<unknown, unknown>,
  f: FailureSummary & { value?: unknown },
  timeoutMs: number,
): Promise<void> {
  if (f.kind === 'hang' && f.signature.startsWith('input not settled')) {
    f.reproducesAlone = undefined; // a wall-clock hang is too slow to shrink here
    return;
  }
  const fails = async (input: unknown): Promise<boolean> => {
    if (req.cell) Atomics.add(req.cell, 1, 1);
    let world: unknown;
    try {
      world = await target.setup(req.options);
    } catch {
      return false;
    }
    try {
      const o = await runOne(target, world, input, timeoutMs);
      return o.findings.some((x) => x.signature === f.signature);
    } finally {
      await safeTeardown(target, world);
    }
  };
  try {
    const r = await fc.check(
      fc.asyncProperty(target.arbitrary(req.options), async (input) => !(await fails(input))),
      { seed: req.seed, path: f.path, numRuns: 1, interruptAfterTimeLimit: req.shrinkMs ?? 15_000, markInterruptAsFailure: false },
    );
    if (r.failed && r.counterexample !== null) {
      f.reproducesAlone = true;
      f.path = r.counterexamplePath ?? f.path;
      f.input = describeInput(r.counterexample[0]);
    } else {
      f.reproducesAlone = false;
    }
  } catch {
    f.reproducesAlone = false;
  }
  takeAsyncErrors();
}
