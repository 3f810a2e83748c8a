#!/usr/bin/env node
/**
 * The deterministic simulation runner.
 *
 *   npm run sim -- --seeds N [--from S] [--variant NAME] [--workers W] [--ops N] [--verbose] [--trace]
 *   npm run sim -- check-history FILE      (linearizability of a recorded key-value history)
 *   npm run sim -- --list-variants
 *
 * Runs seeds S … S+N-1 of the key-value simulation (@tandem/testkit runKvSimulation) in W worker
 * processes, prints a progress line, every failure with the exact command that replays it, and a summary.
 * Exit code: 0 when every seed passed, 1 when any failed, 2 on bad usage.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { VARIANTS } from '@tandem/testkit';
import { checkHistoryFile } from './check-history.js';
import type { SeedRequest, SeedResult } from './protocol.js';

interface Args {
  seeds: number;
  from: number;
  variant: string;
  workers: number;
  ops: number | undefined;
  verbose: boolean;
  trace: boolean;
}

function usage(message?: string): never {
  if (message) console.error(`sim: ${message}`);
  console.error('usage: npm run sim -- --seeds N [--from S] [--variant NAME] [--workers W] [--ops N] [--verbose] [--trace]');
  console.error('       npm run sim -- check-history FILE');
  console.error('       npm run sim -- --list-variants');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: 100, from: 1, variant: 'correct', workers: Math.max(1, Math.min(2, availableParallelism())), ops: undefined, verbose: false, trace: false };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) usage(`${flag} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case '--seeds':
        a.seeds = int(f, argv[++i], 1);
        break;
      case '--from':
        a.from = int(f, argv[++i], 0);
        break;
      case '--variant':
        a.variant = argv[++i] ?? usage('--variant needs a name');
        if (!(a.variant in VARIANTS)) usage(`unknown variant "${a.variant}"; known: ${Object.keys(VARIANTS).join(', ')}`);
        break;
      case '--workers':
        a.workers = int(f, argv[++i], 1);
        break;
      case '--ops':
        a.ops = int(f, argv[++i], 1);
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '--trace':
        a.trace = true;
        break;
      default:
        usage(`unknown argument "${f}"`);
    }
  }
  a.workers = Math.min(a.workers, a.seeds);
  return a;
}

function replayCommand(args: Args, seed: number): string {
  return `npm run sim -- --seeds 1 --from ${seed}${args.variant !== 'correct' ? ` --variant ${args.variant}` : ''}${args.ops !== undefined ? ` --ops ${args.ops}` : ''}`;
}

function printFailure(args: Args, r: SeedResult, detailed: boolean): void {
  const lines = [`✗ seed ${r.seed} FAILED (variant ${args.variant}, piggyback ${r.piggyback}, ${r.historyLength} ops, ${r.virtualMs.toFixed(0)} virtual ms, trace ${r.traceHash})`];
  lines.push(`  faults: ${r.faults.length > 0 ? r.faults.join(' → ') : '(none)'}`);
  for (const f of detailed ? r.failures : r.failures.slice(0, 3)) lines.push('  ' + f.split('\n').slice(0, detailed ? 200 : 12).join('\n    '));
  if (!detailed && r.failures.length > 3) lines.push(`  … and ${r.failures.length - 3} more`);
  if (detailed && r.errorLogs && r.errorLogs.length > 0) lines.push('  error log lines:', ...r.errorLogs.map((l) => '    ' + JSON.stringify(l)));
  if (detailed && r.logs) lines.push('  last log lines:', ...r.logs.map((l) => '    ' + JSON.stringify(l)));
  lines.push(`  replay: ${replayCommand(args, r.seed)}`);
  console.log(lines.join('\n'));
}

async function runSeeds(args: Args): Promise<number> {
  const started = performance.now();
  const results: SeedResult[] = [];
  const failed: SeedResult[] = [];
  let next = args.from;
  const end = args.from + args.seeds;
  const tty = process.stdout.isTTY === true;
  let lastProgress = 0;
  let lastCount = -1;
  const progress = (force = false) => {
    const now = performance.now();
    if (!force && now - lastProgress < (tty ? 250 : 5000)) return;
    if (force && lastCount === results.length) return;
    lastProgress = now;
    lastCount = results.length;
    const line = `[sim] ${results.length}/${args.seeds} seeds, ${failed.length} failed, ${((now - started) / 1000).toFixed(1)} s`;
    if (tty) process.stdout.write(`\r${line}   `);
    else console.log(line);
  };
  console.log(`[sim] variant "${args.variant}": ${VARIANTS[args.variant]!.description}`);
  console.log(`[sim] seeds ${args.from}…${end - 1} on ${args.workers} worker(s)`);
  const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url));
  await new Promise<void>((resolveAll, rejectAll) => {
    let live = 0;
    const dispatch = (child: ChildProcess) => {
      if (next >= end) {
        child.disconnect();
        return;
      }
      const req: SeedRequest = { seed: next++, variant: args.variant, verbose: args.verbose || args.seeds === 1 };
      if (args.ops !== undefined) req.opsPerClient = args.ops;
      if (args.trace) req.trace = true;
      child.send(req);
    };
    for (let w = 0; w < args.workers; w++) {
      const child = fork(workerPath, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      live++;
      child.on('message', (m) => {
        if ((m as { ready?: boolean }).ready) return dispatch(child);
        const r = m as SeedResult;
        results.push(r);
        if (!r.ok) {
          failed.push(r);
          if (tty) process.stdout.write('\n');
          printFailure(args, r, args.seeds === 1 || args.verbose);
        }
        if (args.trace && r.trace) console.log(r.trace.join('\n'));
        progress();
        dispatch(child);
      });
      child.on('exit', (code, signal) => {
        live--;
        if (code !== 0 && code !== null) rejectAll(new Error(`worker exited with code ${code}`));
        else if (signal) rejectAll(new Error(`worker killed by ${signal}`));
        else if (live === 0) resolveAll();
      });
    }
  });
  progress(true);
  if (tty) process.stdout.write('\n');
  const secs = (performance.now() - started) / 1000;
  const wall = results.map((r) => r.wallMs).sort((a, b) => a - b);
  const events = results.reduce((s, r) => s + r.events, 0);
  const worst = results.reduce<SeedResult | undefined>((w, r) => (w === undefined || r.maxLatencyAfterFaultMs / r.livenessBoundMs > w.maxLatencyAfterFaultMs / w.livenessBoundMs ? r : w), undefined);
  const coverage: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.replicaEvents)) if (v > 0) coverage[k] = (coverage[k] ?? 0) + 1;
  console.log(
    `[sim] ${results.length} seeds in ${secs.toFixed(1)} s (${(results.length / secs).toFixed(1)} seeds/s; per seed median ${wall[Math.floor(wall.length / 2)]?.toFixed(0)} ms, max ${wall[wall.length - 1]?.toFixed(0)} ms wall, ${(events / Math.max(1, results.length)).toFixed(0)} events)`,
  );
  if (worst) console.log(`[sim] worst latency after a disruption: ${worst.maxLatencyAfterFaultMs.toFixed(1)} ms (seed ${worst.seed}; its bound ${worst.livenessBoundMs} ms)`);
  console.log(`[sim] runs with: ${Object.entries(coverage).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (failed.length === 0) console.log(`[sim] PASS: all ${results.length} seeds passed`);
  else {
    console.log(`[sim] FAIL: ${failed.length} of ${results.length} seeds failed: ${failed.map((f) => f.seed).slice(0, 50).join(', ')}${failed.length > 50 ? ', …' : ''}`);
    console.log(`[sim] replay the first: ${replayCommand(args, failed[0]!.seed)}`);
  }
  return failed.length === 0 ? 0 : 1;
}

const argv = process.argv.slice(2);
if (argv[0] === 'check-history') {
  if (argv.length !== 2) usage('check-history needs exactly one FILE');
  process.exit(await checkHistoryFile(argv[1]!));
} else if (argv[0] === '--list-variants') {
  for (const [name, v] of Object.entries(VARIANTS)) console.log(`${name.padEnd(24)} ${v.description}`);
} else {
  process.exit(await runSeeds(parseArgs(argv)));
}
