/**
 * A fuzz worker thread: runs one job (a target over a range of inputs) and reports to the main thread
 * (main.ts). The main thread watches `cell` — [index of the input being run, inputs started, phase] — and
 * terminates a worker stuck in one input (a synchronous infinite loop cannot be interrupted otherwise).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runTarget } from './lib/runner.js';
import type { FailureSummary, TargetOptions } from './lib/types.js';
import { loadTarget, type TargetName } from './targets/index.js';

export interface WorkerJob {
  target: TargetName;
  seed: number;
  from: number;
  runs: number;
  path?: string;
  options: TargetOptions;
  inputTimeoutMs: number;
  maxFailures: number;
  shrink: number;
  shrinkMs: number;
  progressMs: number;
  cell: SharedArrayBuffer;
}

export type WorkerMessage =
  | {
      type: 'progress';
      counts: {
        runs: number;
        crashes: number;
        hangs: number;
        honestFailures: number;
        stateChanged: number;
        violations: number;
        restarts: number;
      };
    }
  | { type: 'done'; result: import('./lib/runner.js').RunResult }
  | { type: 'fatal'; message: string };

const job = workerData as WorkerJob;
const port = parentPort!;

void (async () => {
  try {
    const target = await loadTarget(job.target);
    const cell = new Int32Array(job.cell);
    const result = await runTarget({
      target,
      options: job.options,
      seed: job.seed,
      from: job.from,
      runs: job.runs,
      ...(job.path !== undefined ? { path: job.path } : {}),
      inputTimeoutMs: job.inputTimeoutMs,
      maxFailures: job.maxFailures,
      shrink: job.shrink,
      shrinkMs: job.shrinkMs,
      progressMs: job.progressMs,
      cell,
      onProgress: (counts) => port.postMessage({ type: 'progress', counts } satisfies WorkerMessage),
    });
    port.postMessage({ type: 'done', result } satisfies WorkerMessage);
  } catch (err) {
    port.postMessage({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerMessage);
  }
})();

export type { FailureSummary };
