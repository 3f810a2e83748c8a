#!/usr/bin/env node
/**
 * The deterministic simulation runner.
 *
 *   npm run sim -- --seeds N [--from S] [--variant NAME] [--faults K1,K2] [--no-load] [--workers W] [--ops N]
 *                  [--strict-alarms] [--verbose] [--trace]
 *   npm run sim -- check-history FILE      (linearizability of a recorded key-value history)
 *   npm run sim -- --list-variants | --list-faults
 *   npm run sim -- --scenario causal --seeds N [--variant correct|no-causal-wait]   (causal.ts)
 *   npm run sim -- --scenario partition --seeds N [--witness] [--expect-failure]     (partition.ts)
 *
 * Runs seeds S … S+N-1 of the key-value simulation (@tandem/testkit runKvSimulation) in W worker
 * processes, prints a progress line, every failure with the exact command that replays it, and a summary.
 * Exit code: 0 when every seed passed, 1 when any failed, 2 on bad usage.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FAULT_KINDS, LOST_STATE_FAULT_KINDS, VARIANTS, type FaultKind } from '@tandem/testkit';
import { checkHistoryFile } from './check-history.js';
import type { SeedRequest, SeedResult } from './protocol.js';

interface Args {
  seeds: number;
  from: number;
  variant: string;
  faults: FaultKind[] | undefined;
  noLoad: boolean;
  strictAlarms: boolean;
  workers: number;
  ops: number | undefined;
  verbose: boolean;
  trace: boolean;
}

const KNOWN_FAULTS: readonly FaultKind[] = [...DEFAULT_FAULT_KINDS, ...LOST_STATE_FAULT_KINDS];

function usage(message?: string): never {
  if (message) console.error(`sim: ${message}`);
  console.error(
    'usage: npm run sim -- --seeds N [--from S] [--variant NAME] [--faults K1,K2] [--no-load] [--workers W] [--ops N] [--strict-alarms] [--verbose] [--trace]',
  );
  console.error('       npm run sim -- check-history FILE');
  console.error('       npm run sim -- --list-variants | --list-faults');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    seeds: 100,
    from: 1,
    variant: 'correct',
    faults: undefined,
    noLoad: false,
    strictAlarms: false,
    workers: Math.max(1, Math.min(2, availableParallelism())),
    ops: undefined,
    verbose: false,
    trace: false,
  };
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
      case '--faults': {
        const list = (argv[++i] ?? usage('--faults needs a comma-separated list of fault kinds')).split(',').filter((k) => k.length > 0);
        for (const k of list)
          if (!KNOWN_FAULTS.includes(k as FaultKind)) usage(`unknown fault kind "${k}"; known: ${KNOWN_FAULTS.join(', ')}`);
        if (list.length === 0) usage('--faults needs at least one fault kind');
        a.faults = list as FaultKind[];
        break;
      }
      case '--no-load':
        a.noLoad = true;
        break;
      case '--strict-alarms':
        a.strictAlarms = true;
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
  return `npm run sim -- --seeds 1 --from ${seed}${args.variant !== 'correct' ? ` --variant ${args.variant}` : ''}${args.faults ? ` --faults ${args.faults.join(',')}` : ''}${args.noLoad ? ' --no-load' : ''}${args.ops !== undefined ? ` --ops ${args.ops}` : ''}${args.strictAlarms ? ' --strict-alarms' : ''}`;
}

/** A seed fails on its violated invariants; with --strict-alarms also on a false failure alarm. */
function failed(args: Args, r: SeedResult): boolean {
  return !r.ok || (args.strictAlarms && falseAlarms(r).length > 0);
}

/** False alarms with stalls excluded (the peer was up, not paused, and not in a fault's event-loop stall). */
function falseAlarms(r: SeedResult): SeedResult['alarms']['falseAlarms'] {
  return r.alarms.falseAlarms.filter((a) => a.context !== 'stall');
}

function describeAlarm(a: SeedResult['alarms']['falseAlarms'][number]): string {
  return `${a.time.toFixed(1)}ms ${a.node} declared ${a.peer} faulty (${a.reason}) while ${a.peer} was up${a.context === 'stall' ? ' (its event loop stalled)' : ''} [${a.context}]`;
}

function printFailure(args: Args, r: SeedResult, detailed: boolean): void {
  const lines = [
    `✗ seed ${r.seed} FAILED (variant ${args.variant}, piggyback ${r.piggyback}, ${r.historyLength} ops, ${r.virtualMs.toFixed(0)} virtual ms, trace ${r.traceHash})`,
  ];
  lines.push(`  faults: ${r.faults.length > 0 ? r.faults.join(' → ') : '(none)'}`);
  if (r.load) lines.push(`  load: ${r.load}`);
  for (const a of r.alarms.falseAlarms) lines.push(`  false alarm: ${describeAlarm(a)}`);
  for (const b of r.blocked) lines.push(`  blocked: ${b.node} at ${b.time.toFixed(1)}ms (${b.reason}, haveSeq ${b.haveSeq})`);
  for (const o of r.operatorActions)
    lines.push(`  operator: promoted ${o.node} at ${o.time.toFixed(1)}ms (seq ${o.appliedSeq}; ${o.lostOps} acknowledged operations lost)`);
  for (const f of detailed ? r.failures : r.failures.slice(0, 3))
    lines.push(
      '  ' +
        f
          .split('\n')
          .slice(0, detailed ? 200 : 12)
          .join('\n    '),
    );
  if (!detailed && r.failures.length > 3) lines.push(`  … and ${r.failures.length - 3} more`);
  if (detailed && r.errorLogs && r.errorLogs.length > 0)
    lines.push('  error log lines:', ...r.errorLogs.map((l) => '    ' + JSON.stringify(l)));
  if (detailed && r.logs) lines.push('  last log lines:', ...r.logs.map((l) => '    ' + JSON.stringify(l)));
  lines.push(`  replay: ${replayCommand(args, r.seed)}`);
  console.log(lines.join('\n'));
}

async function runSeeds(args: Args): Promise<number> {
  const started = performance.now();
  const results: SeedResult[] = [];
  const failedSeeds: SeedResult[] = [];
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
    const line = `[sim] ${results.length}/${args.seeds} seeds, ${failedSeeds.length} failed, ${((now - started) / 1000).toFixed(1)} s`;
    if (tty) process.stdout.write(`\r${line}   `);
    else console.log(line);
  };
  console.log(`[sim] variant "${args.variant}": ${VARIANTS[args.variant]!.description}`);
  if (args.faults) console.log(`[sim] faults drawn from: ${args.faults.join(', ')}`);
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
      if (args.faults) req.faults = args.faults;
      if (args.noLoad) req.noLoad = true;
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
        if (failed(args, r)) {
          failedSeeds.push(r);
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
  const worst = results.reduce<SeedResult | undefined>(
    (w, r) => (w === undefined || r.maxLatencyAfterFaultMs / r.livenessBoundMs > w.maxLatencyAfterFaultMs / w.livenessBoundMs ? r : w),
    undefined,
  );
  const coverage: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.replicaEvents)) if (v > 0) coverage[k] = (coverage[k] ?? 0) + 1;
  console.log(
    `[sim] ${results.length} seeds in ${secs.toFixed(1)} s (${(results.length / secs).toFixed(1)} seeds/s; per seed median ${wall[Math.floor(wall.length / 2)]?.toFixed(0)} ms, max ${wall[wall.length - 1]?.toFixed(0)} ms wall, ${(events / Math.max(1, results.length)).toFixed(0)} events)`,
  );
  if (worst)
    console.log(
      `[sim] worst latency after a disruption: ${worst.maxLatencyAfterFaultMs.toFixed(1)} ms (seed ${worst.seed}; its bound ${worst.livenessBoundMs} ms)`,
    );
  const gap = results.reduce<SeedResult | undefined>(
    (w, r) => (w === undefined || r.maxServiceGapMs > w.maxServiceGapMs ? r : w),
    undefined,
  );
  if (gap)
    console.log(
      `[sim] longest time with no replica answering after a fault: ${gap.maxServiceGapMs.toFixed(1)} ms (seed ${gap.seed}; serve bound ${gap.serveBoundMs} ms)`,
    );
  const alarms = results.reduce((s, r) => ({ total: s.total + r.alarms.total, justified: s.justified + r.alarms.justified }), {
    total: 0,
    justified: 0,
  });
  const stallAlarms = results.reduce((s, r) => s + r.alarms.falseAlarms.filter((a) => a.context === 'stall').length, 0);
  const withFalse = results.filter((r) => falseAlarms(r).length > 0);
  const contexts: Record<string, number> = {};
  for (const r of withFalse) for (const a of falseAlarms(r)) contexts[a.context] = (contexts[a.context] ?? 0) + 1;
  console.log(
    `[sim] peer-faulty alarms: ${alarms.total} (${alarms.justified} with the peer down, paused or cut off; ${stallAlarms} with the peer's event loop stalled); FALSE alarms (peer up, stalls excluded): ${withFalse.reduce((s, r) => s + falseAlarms(r).length, 0)} in ${withFalse.length} seeds${
      withFalse.length > 0
        ? ` [${Object.entries(contexts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}]: ${withFalse
            .map((r) => r.seed)
            .slice(0, 30)
            .join(', ')}${withFalse.length > 30 ? ', …' : ''}`
        : ''
    }`,
  );
  const blocked = results.filter((r) => r.blocked.length > 0);
  if (blocked.length > 0) {
    const promotes = results.flatMap((r) => r.operatorActions.map((o) => ({ seed: r.seed, ...o })));
    const needless = promotes.filter((o) => o.lostOps === 0);
    console.log(
      `[sim] runs where a replica reported blocked: ${blocked.length} (${blocked
        .map((r) => r.seed)
        .slice(0, 30)
        .join(
          ', ',
        )}); operator promotes: ${promotes.length}, ${needless.length} of them losing nothing acknowledged (the pair could have resumed by itself${needless.length > 0 ? `: seeds ${[...new Set(needless.map((o) => o.seed))].slice(0, 30).join(', ')}` : ''})`,
    );
  }
  console.log(
    `[sim] runs with: ${Object.entries(coverage)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  if (failedSeeds.length === 0) console.log(`[sim] PASS: all ${results.length} seeds passed`);
  else {
    console.log(
      `[sim] FAIL: ${failedSeeds.length} of ${results.length} seeds failed: ${failedSeeds
        .map((f) => f.seed)
        .slice(0, 50)
        .join(', ')}${failedSeeds.length > 50 ? ', …' : ''}`,
    );
    console.log(`[sim] replay the first: ${replayCommand(args, failedSeeds[0]!.seed)}`);
  }
  return failedSeeds.length === 0 ? 0 : 1;
}

const argv = process.argv.slice(2);
if (argv.includes('--scenario') && argv[argv.indexOf('--scenario') + 1] === 'partition') {
  process.exit(await (await import('./partition.js')).runPartitionScenario(argv));
} else if (argv.includes('--scenario')) {
  process.exit(await (await import('./causal.js')).runCausalScenario(argv));
} else if (argv[0] === 'check-history') {
  if (argv.length !== 2) usage('check-history needs exactly one FILE');
  process.exit(await checkHistoryFile(argv[1]!));
} else if (argv[0] === '--list-variants') {
  for (const [name, v] of Object.entries(VARIANTS)) console.log(`${name.padEnd(24)} ${v.description}`);
} else if (argv[0] === '--list-faults') {
  for (const k of KNOWN_FAULTS) console.log(`${k.padEnd(30)} ${DEFAULT_FAULT_KINDS.includes(k) ? 'default' : 'own variant (lost-state)'}`);
} else {
  process.exit(await runSeeds(parseArgs(argv)));
}
