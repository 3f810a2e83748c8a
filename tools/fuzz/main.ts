#!/usr/bin/env node
/**
 * The fuzzer (docs/TESTING.md, "Fuzzing"):
 *
 *   npm run fuzz [-- --target T[,T…]] [--runs N] [--seed S] [--json] [--workers W] [--shards K]
 *                   [--core-security auto|on|off] [--out DIR] [--no-save] [--shrink N]
 *   npm run fuzz -- --target T --seed S --path P        replay one input (a path from a report or a file)
 *   npm run fuzz -- --replay FILE                       replay a saved failure
 *   npm run fuzz -- --list
 *
 * Each target runs in worker threads (W at a time, default 2; `--shards K` splits one target's runs over K
 * jobs). A watchdog ends a worker stuck in one input (reported as a hang; the job goes on after it) or out
 * of memory (a crash). Progress lines go to stderr; `--json` prints one JSON object on stdout; failing
 * inputs are saved under DIR/failures/ (default .fuzz/) with the command that replays them. Exit code 0
 * only when no target found anything; 1 otherwise; 2 on bad usage.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { resolveCoreSecurity } from './lib/core-security.js';
import { describeInput, runTarget, type RunCounts, type RunResult } from './lib/runner.js';
import type { FailureSummary, FuzzReport, TargetOptions, TargetReport } from './lib/types.js';
import { isTargetName, loadTarget, TARGET_INFO, TARGET_NAMES, type TargetName } from './targets/index.js';
import type { WorkerJob, WorkerMessage } from './worker.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

interface Args {
  targets: TargetName[];
  runs: number;
  seed: number;
  seedGiven: boolean;
  json: boolean;
  workers: number;
  shards: number;
  from: number;
  path: string | undefined;
  replay: string | undefined;
  coreSecurity: 'auto' | 'on' | 'off';
  inject: string | undefined;
  out: string;
  save: boolean;
  shrink: number;
  shrinkMs: number;
  inputTimeoutMs: number;
  hangMs: number;
  maxFailures: number;
  progressMs: number;
  quiet: boolean;
}

function usage(message?: string): never {
  if (message) console.error(`fuzz: ${message}`);
  console.error(
    [
      'usage: npm run fuzz [-- --target T[,T…]] [--runs N] [--seed S] [--json] [--workers W] [--shards K]',
      '                       [--core-security auto|on|off] [--out DIR] [--no-save] [--shrink N] [--quiet]',
      '       npm run fuzz -- --target T --seed S --path P     (replay one input)',
      '       npm run fuzz -- --replay FILE                    (replay a saved failure)',
      '       npm run fuzz -- --list',
      `targets: ${TARGET_NAMES.join(', ')}`,
    ].join('\n'),
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    targets: [...TARGET_NAMES],
    runs: 20_000,
    seed: Math.floor(Math.random() * 0x7fffffff),
    seedGiven: false,
    json: false,
    workers: Math.max(1, Math.min(2, availableParallelism())),
    shards: 1,
    from: 0,
    path: undefined,
    replay: undefined,
    coreSecurity: 'auto',
    inject: undefined,
    out: join(root, '.fuzz'),
    save: true,
    shrink: 3,
    shrinkMs: 15_000,
    inputTimeoutMs: 10_000,
    hangMs: 30_000,
    maxFailures: 20,
    progressMs: 5_000,
    quiet: false,
  };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min) usage(`${flag} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const value = (): string => argv[++i] ?? usage(`${f} needs a value`);
    switch (f) {
      case '--target':
      case '--targets': {
        const names = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const n of names) if (!isTargetName(n)) usage(`unknown target "${n}"`);
        a.targets = names as TargetName[];
        break;
      }
      case '--runs':
        a.runs = int(f, argv[++i], 1);
        break;
      case '--seed':
        a.seed = int(f, argv[++i], 0);
        a.seedGiven = true;
        break;
      case '--json':
        a.json = true;
        break;
      case '--workers':
        a.workers = int(f, argv[++i], 1);
        break;
      case '--shards':
        a.shards = int(f, argv[++i], 1);
        break;
      case '--from':
        a.from = int(f, argv[++i], 0);
        break;
      case '--path':
        a.path = value();
        if (!/^\d+(:\d+)*$/.test(a.path)) usage(`--path takes a fast-check path like 12 or 12:3:0, got "${a.path}"`);
        break;
      case '--replay':
        a.replay = value();
        break;
      case '--core-security': {
        const v = value();
        if (v !== 'auto' && v !== 'on' && v !== 'off') usage('--core-security takes auto, on or off');
        a.coreSecurity = v;
        break;
      }
      case '--inject':
        a.inject = value();
        break;
      case '--out':
        a.out = resolve(value());
        break;
      case '--no-save':
        a.save = false;
        break;
      case '--shrink':
        a.shrink = int(f, argv[++i], 0);
        break;
      case '--shrink-ms':
        a.shrinkMs = int(f, argv[++i], 100);
        break;
      case '--input-timeout-ms':
        a.inputTimeoutMs = int(f, argv[++i], 10);
        break;
      case '--hang-ms':
        a.hangMs = int(f, argv[++i], 100);
        break;
      case '--max-failures':
        a.maxFailures = int(f, argv[++i], 1);
        break;
      case '--progress-ms':
        a.progressMs = int(f, argv[++i], 100);
        break;
      case '--quiet':
        a.quiet = true;
        break;
      case '--list':
        for (const t of TARGET_NAMES) console.log(t);
        process.exit(0);
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        usage(`unknown argument "${f}"`);
    }
  }
  return a;
}

const log = (line: string): void => void process.stderr.write(`[fuzz] ${line}\n`);

// ---------------------------------------------------------------- jobs on worker threads

interface Job {
  target: TargetName;
  from: number;
  runs: number;
}

interface JobOutcome {
  result: RunResult;
  counts: RunCounts;
}

const emptyCounts = (): RunCounts => ({ runs: 0, crashes: 0, hangs: 0, honestFailures: 0, stateChanged: 0, violations: 0, restarts: 0 });

function addCounts(into: RunCounts, c: RunCounts): void {
  for (const k of Object.keys(into) as (keyof RunCounts)[]) into[k] += c[k];
}

/**
 * Run a job on worker threads: when a worker gets stuck in one input (no new input for hangMs) or dies
 * (out of memory, exit), that input is reported and a new worker goes on after it.
 */
async function runJob(args: Args, options: TargetOptions, job: Job, onProgress: (live: RunCounts) => void): Promise<JobOutcome> {
  const results: RunResult[] = [];
  const total = emptyCounts();
  let from = job.from;
  const end = job.from + job.runs;
  let respawns = 0;
  while (from < end) {
    const sab = new SharedArrayBuffer(12);
    const cell = new Int32Array(sab);
    Atomics.store(cell, 0, from);
    const w: WorkerJob = {
      target: job.target,
      seed: args.seed,
      from,
      runs: end - from,
      options,
      inputTimeoutMs: args.inputTimeoutMs,
      maxFailures: args.maxFailures,
      shrink: args.shrink,
      shrinkMs: args.shrinkMs,
      progressMs: Math.min(args.progressMs, 2000),
      cell: sab,
    };
    const outcome = await new Promise<
      { kind: 'done'; result: RunResult } | { kind: 'died'; why: 'hang' | 'crash'; message: string; last: RunCounts }
    >((resolveOutcome) => {
      const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), {
        workerData: w,
        resourceLimits: { maxOldGenerationSizeMb: 3072 },
        stderr: false,
      });
      let last = emptyCounts();
      let settled = false;
      let seen = Atomics.load(cell, 1);
      let seenAt = performance.now();
      const finish = (o: Parameters<typeof resolveOutcome>[0]): void => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        resolveOutcome(o);
      };
      const watch = setInterval(() => {
        const now = performance.now();
        const started = Atomics.load(cell, 1);
        if (started !== seen) {
          seen = started;
          seenAt = now;
          return;
        }
        const limit = Atomics.load(cell, 2) === 1 ? args.hangMs + args.shrinkMs : args.hangMs;
        if (now - seenAt > limit) {
          finish({
            kind: 'died',
            why: 'hang',
            message: `no progress for ${Math.round(now - seenAt)} ms in one input (synchronous loop?): worker terminated`,
            last,
          });
          void worker.terminate();
        }
      }, 250);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'progress') {
          last = m.counts;
          onProgress(m.counts);
        } else if (m.type === 'done') finish({ kind: 'done', result: m.result });
        else finish({ kind: 'died', why: 'crash', message: `worker failed: ${m.message}`, last });
      });
      worker.on('error', (err) => {
        const oom = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
        finish({
          kind: 'died',
          why: 'crash',
          message: oom ? `out of memory (worker heap limit): ${err.message}` : `worker error: ${err.stack ?? err.message}`,
          last,
        });
      });
      worker.on('exit', (code) =>
        finish({ kind: 'died', why: 'crash', message: `worker exited with code ${code} before finishing`, last }),
      );
    });
    if (outcome.kind === 'done') {
      results.push(outcome.result);
      addCounts(total, outcome.result);
      break;
    }
    // The input in progress when the worker died or stuck.
    const at = Atomics.load(cell, 0);
    const counts = outcome.last;
    counts.runs = Math.max(counts.runs, at - from + 1);
    if (outcome.why === 'hang') counts.hangs++;
    else counts.crashes++;
    addCounts(total, counts);
    const signature =
      outcome.why === 'hang'
        ? 'input never finished (worker terminated)'
        : outcome.message.split('\n')[0]!.replace(/\d+/g, 'N').slice(0, 120);
    results.push({
      ...counts,
      ms: 0,
      next: at + 1,
      notes: [],
      failures: [
        {
          kind: outcome.why,
          signature,
          count: 1,
          index: at,
          replayFrom: at,
          message: outcome.message,
          path: String(at),
          reproducesAlone: undefined,
        },
      ],
    });
    log(
      `${job.target}: input ${at} ${outcome.why === 'hang' ? 'hung' : 'crashed the worker'} — ${outcome.message.split('\n')[0]}; continuing after it`,
    );
    from = at + 1;
    if (++respawns > 50) {
      log(`${job.target}: giving up after 50 worker restarts`);
      break;
    }
  }
  const merged: RunResult = {
    ...total,
    ms: 0,
    next: end,
    notes: [],
    failures: mergeFailures(
      results.map((r) => r.failures),
      args.maxFailures,
    ),
  };
  merged.notes = [...new Set(results.flatMap((r) => r.notes))];
  return { result: merged, counts: total };
}

function mergeFailures(lists: FailureSummary[][], max: number): FailureSummary[] {
  const by = new Map<string, FailureSummary>();
  for (const list of lists) {
    for (const f of list) {
      const known = by.get(f.signature);
      if (!known) by.set(f.signature, { ...f });
      else {
        known.count += f.count;
        if (f.index < known.index) Object.assign(known, { ...f, count: known.count });
      }
    }
  }
  return [...by.values()].sort((a, b) => a.index - b.index).slice(0, max);
}

// ---------------------------------------------------------------- saving and replaying failures

function replayCommand(file: string): string {
  return `npm run fuzz -- --replay ${relative(root, file)}`;
}

function pathCommand(target: string, seed: number, f: FailureSummary, options: TargetOptions): string {
  const extra = `${options.inject ? ` --inject ${options.inject}` : ''}${target === 'core' ? ` --core-security ${options.coreSecurity}` : ''}`;
  if (f.reproducesAlone === false && f.replayFrom < f.index) {
    return `npm run fuzz -- --target ${target} --seed ${seed} --from ${f.replayFrom} --runs ${f.index - f.replayFrom + 1}${extra}`;
  }
  return `npm run fuzz -- --target ${target} --seed ${seed} --path ${f.path}${extra}`;
}

function saveFailures(args: Args, target: string, options: TargetOptions, report: TargetReport): void {
  const dir = join(args.out, 'failures');
  mkdirSync(dir, { recursive: true });
  report.failures.forEach((f, n) => {
    const file = join(
      dir,
      `${target}-${args.seed}-${f.index}${n > 0 && report.failures.slice(0, n).some((g) => g.index === f.index) ? `-${n}` : ''}.json`,
    );
    f.file = relative(root, file);
    f.replay = replayCommand(file);
    writeFileSync(
      file,
      JSON.stringify({ target, seed: args.seed, options, ...f, alternative: pathCommand(target, args.seed, f, options) }, null, 2) + '\n',
    );
  });
}

interface SavedFailure {
  target: TargetName;
  seed: number;
  options: TargetOptions;
  signature: string;
  index: number;
  replayFrom: number;
  path: string;
  reproducesAlone?: boolean;
}

/** Replay in this thread, printing every input and what it did. Exit code 1 when anything was found. */
async function replay(args: Args, file: string | undefined): Promise<never> {
  let target: TargetName;
  let seed: number;
  let options: TargetOptions;
  let path: string | undefined;
  let from = args.from;
  let runs = args.runs;
  let wanted: string | undefined;
  if (file !== undefined) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedFailure;
    target = saved.target;
    seed = saved.seed;
    options = { ...saved.options };
    wanted = saved.signature;
    if (saved.reproducesAlone === false && saved.replayFrom < saved.index) {
      // The failure needed the inputs before it (a stateful world): replay them all, in order.
      from = saved.replayFrom;
      runs = saved.index - saved.replayFrom + 1;
    } else {
      path = saved.path;
      runs = 1;
    }
  } else {
    if (args.targets.length !== 1) usage('replaying needs exactly one --target');
    if (!args.seedGiven) usage('replaying needs --seed');
    target = args.targets[0]!;
    seed = args.seed;
    options = { seed, coreSecurity: resolveCoreSecurity(args.coreSecurity), ...(args.inject ? { inject: args.inject } : {}) };
    path = args.path;
    if (path !== undefined) runs = args.runs === 20_000 ? 1 : args.runs;
  }
  log(
    `replaying ${target} seed ${seed} ${path !== undefined ? `path ${path}` : `inputs ${from}..${from + runs - 1}`}${wanted ? ` (expecting "${wanted}")` : ''}`,
  );
  const t = await loadTarget(target);
  let found = 0;
  let matched = false;
  await runTarget({
    target: t,
    options,
    seed,
    from,
    runs,
    ...(path !== undefined ? { path } : {}),
    inputTimeoutMs: args.inputTimeoutMs,
    shrink: 0,
    onInput(index, input, findings) {
      const last = path !== undefined || index === from + runs - 1;
      if (last || findings.length > 0) {
        console.log(`input ${index}: ${describeInput(input, 20_000)}`);
        if (findings.length === 0) console.log('  → nothing found');
        for (const f of findings) {
          console.log(`  → ${f.kind}: ${f.message}`);
          if (f.stack)
            console.log(
              f.stack
                .split('\n')
                .map((l) => `      ${l}`)
                .join('\n'),
            );
          if (f.signature === wanted) matched = true;
        }
      }
      found += findings.length;
    },
  });
  if (wanted !== undefined) console.log(matched ? `reproduced: ${wanted}` : `NOT reproduced: ${wanted}`);
  process.exit(found > 0 ? 1 : 0);
}

// ---------------------------------------------------------------- main

function formatLine(name: string, r: TargetReport): string {
  const n = (v: number | null): string => (v === null ? '-' : String(v));
  const bad = r.crashes + r.hangs + (r.honestFailures ?? 0) + (r.stateChanged ?? 0) + r.violations;
  return (
    `${name.padEnd(15)} ${String(r.runs).padStart(8)} runs ${(r.ms / 1000).toFixed(1).padStart(7)} s ${String(r.rate).padStart(7)}/s  ` +
    `crashes ${r.crashes}  hangs ${r.hangs}  honestFailures ${n(r.honestFailures)}  stateChanged ${n(r.stateChanged)}  violations ${r.violations}` +
    `${r.restarts ? `  restarts ${r.restarts}` : ''}  ${bad === 0 ? 'OK' : 'FAILED'}`
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay !== undefined) {
    if (!existsSync(args.replay)) usage(`no such file: ${args.replay}`);
    await replay(args, args.replay);
  }
  if (args.path !== undefined) await replay(args, undefined);

  const coreSecurity = resolveCoreSecurity(args.coreSecurity);
  const options = (): TargetOptions => ({ seed: args.seed, coreSecurity, ...(args.inject ? { inject: args.inject } : {}) });
  log(
    `seed ${args.seed}, ${args.runs} runs per target from input ${args.from}, targets ${args.targets.join(', ')}, ${args.workers} worker(s)${args.shards > 1 ? `, ${args.shards} shards per target` : ''}${args.targets.includes('core') ? `, core security ${coreSecurity}${args.coreSecurity === 'auto' ? ' (auto)' : ''}` : ''}`,
  );

  const jobs: Job[] = [];
  for (const target of args.targets) {
    const per = Math.ceil(args.runs / args.shards);
    for (let s = 0; s < args.shards; s++) {
      const from = args.from + s * per;
      const runs = Math.min(per, args.from + args.runs - from);
      if (runs > 0) jobs.push({ target, from, runs });
    }
  }
  // Longest jobs first, so that two workers finish together.
  const order = [...jobs].sort((a, b) => b.runs * TARGET_INFO[b.target].costMs - a.runs * TARGET_INFO[a.target].costMs);
  const live = new Map<Job, RunCounts>();
  const outcomes = new Map<Job, JobOutcome>();
  const firstStart = new Map<TargetName, number>();
  const lastEnd = new Map<TargetName, number>();
  const started = performance.now();
  let lastPrint = 0;
  const printProgress = (force = false): void => {
    const now = performance.now();
    if (args.quiet || (!force && now - lastPrint < args.progressMs)) return;
    lastPrint = now;
    const per = new Map<TargetName, RunCounts>();
    for (const j of jobs) {
      const c = outcomes.get(j)?.counts ?? live.get(j);
      if (!c) continue;
      const t = per.get(j.target) ?? emptyCounts();
      addCounts(t, c);
      per.set(j.target, t);
    }
    const parts = [...per].map(([t, c]) => {
      const finished = jobs.every((j) => j.target !== t || outcomes.has(j));
      const elapsed = ((finished ? (lastEnd.get(t) ?? now) : now) - (firstStart.get(t) ?? now)) / 1000;
      const rate = elapsed > 0 ? Math.round(c.runs / elapsed) : 0;
      const bad = c.crashes + c.hangs + c.honestFailures + c.stateChanged + c.violations;
      return `${t} ${c.runs}/${args.runs} (${rate}/s${bad ? `, ${bad} failing` : ''})`;
    });
    if (parts.length) log(`${((now - started) / 1000).toFixed(0)} s: ${parts.join(' · ')}`);
  };
  const ticker = setInterval(() => printProgress(), Math.min(args.progressMs, 1000));

  let next = 0;
  const runWorker = async (): Promise<void> => {
    while (next < order.length) {
      const job = order[next++]!;
      if (!firstStart.has(job.target)) firstStart.set(job.target, performance.now());
      const outcome = await runJob(args, options(), job, (c) => live.set(job, c));
      outcomes.set(job, outcome);
      lastEnd.set(job.target, performance.now());
      printProgress();
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.workers, jobs.length) }, () => runWorker()));
  clearInterval(ticker);

  const report: FuzzReport = { targets: {}, ok: true };
  for (const target of args.targets) {
    const mine = jobs.filter((j) => j.target === target).map((j) => outcomes.get(j)!);
    const c = emptyCounts();
    for (const o of mine) addCounts(c, o.counts);
    const ms = Math.round((lastEnd.get(target) ?? 0) - (firstStart.get(target) ?? 0));
    const flags = TARGET_INFO[target];
    const r: TargetReport = {
      runs: c.runs,
      crashes: c.crashes,
      hangs: c.hangs,
      honestFailures: flags.honest ? c.honestFailures : null,
      stateChanged: flags.state ? c.stateChanged : null,
      violations: c.violations,
      restarts: c.restarts,
      seed: args.seed,
      ms,
      rate: ms > 0 ? Math.round((c.runs * 1000) / ms) : 0,
      failures: mergeFailures(
        mine.map((o) => o.result.failures),
        args.maxFailures,
      ),
      notes: [...new Set(mine.flatMap((o) => o.result.notes))],
    };
    if (args.save && r.failures.length > 0) saveFailures(args, target, options(), r);
    for (const f of r.failures) if (!f.replay) f.replay = pathCommand(target, args.seed, f, options());
    report.targets[target] = r;
    if (r.crashes + r.hangs + (r.honestFailures ?? 0) + (r.stateChanged ?? 0) + r.violations > 0) report.ok = false;
  }

  if (args.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    console.log(`\nfuzz seed ${args.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const [name, r] of Object.entries(report.targets)) {
      console.log(formatLine(name, r));
      for (const note of r.notes) console.log(`    note: ${note}`);
      for (const f of r.failures) {
        console.log(`    ${f.kind} ×${f.count}: ${f.signature}`);
        console.log(
          `      first at input ${f.index}${f.reproducesAlone === false ? ` (needs the inputs from ${f.replayFrom})` : ''}: ${f.message.split('\n')[0]!.slice(0, 300)}`,
        );
        if (f.replay) console.log(`      replay: ${f.replay}`);
      }
    }
    console.log(report.ok ? 'ok: nothing found' : 'FAILED: see above');
  }
  process.exit(report.ok ? 0 : 1);
}

void main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(2);
});
