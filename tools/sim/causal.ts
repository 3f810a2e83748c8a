/**
 * `npm run sim -- --scenario causal --seeds N [--from S] [--variant correct|no-causal-wait] [--workers W]`
 *
 * The causal scenario (@tandem/testkit runCausalSimulation): a resource handler pair calling a resource pair,
 * clients that allocate and then use, seeded delays/reordering/losses/duplicates and primary SIGKILLs.
 * Seeds run in W worker processes (causal-worker.ts). With `--variant no-causal-wait` (the broken variant)
 * the run is expected to fail; `--expect-failure` turns that into exit 0 when some seed failed (for CI).
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CAUSAL_VARIANTS, type CausalSimulationResult } from '@tandem/testkit';

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error(
    'usage: npm run sim -- --scenario causal --seeds N [--from S] [--variant correct|no-causal-wait] [--workers W] [--expect-failure]',
  );
  process.exit(2);
}

export async function runCausalScenario(argv: string[]): Promise<number> {
  let seeds = 100;
  let from = 1;
  let variant = 'correct';
  let workers = Math.max(1, Math.min(2, availableParallelism()));
  let expectFailure = false;
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) usage(`${flag} needs an integer ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--scenario') {
      if (argv[++i] !== 'causal') usage(`unknown scenario "${argv[i]}" (known: causal, partition; the default is the key-value scenario)`);
    } else if (a === '--seeds') seeds = int(a, argv[++i], 1);
    else if (a === '--from') from = int(a, argv[++i], 0);
    else if (a === '--workers') workers = int(a, argv[++i], 1);
    else if (a === '--variant') {
      variant = argv[++i] ?? usage('--variant needs a name');
      if (!(variant in CAUSAL_VARIANTS)) usage(`unknown causal variant "${variant}"; known: ${Object.keys(CAUSAL_VARIANTS).join(', ')}`);
    } else if (a === '--expect-failure') expectFailure = true;
    else usage(`unknown argument "${a}" for the causal scenario`);
  }
  workers = Math.min(workers, seeds);
  console.log(`[sim] scenario causal, variant "${variant}": ${CAUSAL_VARIANTS[variant as keyof typeof CAUSAL_VARIANTS]}`);
  console.log(`[sim] seeds ${from}…${from + seeds - 1} on ${workers} worker(s)`);
  const started = performance.now();
  const failed: CausalSimulationResult[] = [];
  let done = 0;
  let acknowledged = 0;
  let held = 0;
  let kills = 0;
  let reissued = 0;
  let duplicates = 0;
  let next = from;
  const end = from + seeds;
  const workerPath = fileURLToPath(new URL('./causal-worker.ts', import.meta.url));
  let lastProgress = performance.now();
  await new Promise<void>((resolveAll, rejectAll) => {
    let live = 0;
    for (let w = 0; w < workers; w++) {
      const child = fork(workerPath, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      live++;
      const dispatch = (): void => {
        if (next >= end) child.disconnect();
        else child.send({ seed: next++, variant });
      };
      child.on('message', (m) => {
        if ((m as { ready?: boolean }).ready) return dispatch();
        const r = m as CausalSimulationResult;
        done++;
        acknowledged += r.flows.acknowledged;
        held += r.held;
        reissued += r.reissued;
        duplicates += r.duplicates;
        kills += r.faults.filter((f) => f.includes('SIGKILL')).length;
        if (!r.ok) {
          failed.push(r);
          if (failed.length <= 5) {
            console.log(`✗ seed ${r.seed} FAILED (variant ${variant}, ${r.virtualMs.toFixed(0)} virtual ms, trace ${r.traceHash})`);
            for (const f of r.faults) console.log(`  fault: ${f}`);
            for (const f of r.failures.slice(0, 5)) console.log(`  ${f}`);
            console.log(
              `  replay: npm run sim -- --scenario causal --seeds 1 --from ${r.seed}${variant !== 'correct' ? ` --variant ${variant}` : ''}`,
            );
          }
        }
        if (performance.now() - lastProgress > 5000) {
          lastProgress = performance.now();
          console.log(`[sim] ${done}/${seeds} seeds, ${failed.length} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`);
        }
        dispatch();
      });
      child.on('exit', (code, signal) => {
        live--;
        if (code !== 0 && code !== null) rejectAll(new Error(`worker exited with code ${code}`));
        else if (signal) rejectAll(new Error(`worker killed by ${signal}`));
        else if (live === 0) resolveAll();
      });
    }
  });
  const secs = (performance.now() - started) / 1000;
  console.log(
    `[sim] ${done} seeds in ${secs.toFixed(1)} s: ${acknowledged} acknowledged flows, ${held} requests held for causal predecessors, ${kills} SIGKILLs, ${reissued} outbound messages re-issued by a new primary (${duplicates} of them already applied: answered, not applied again)`,
  );
  if (failed.length === 0) {
    console.log(`[sim] PASS: all ${done} seeds passed`);
    if (expectFailure) console.log('[sim] expected a failure (broken variant) and saw none');
    return expectFailure ? 1 : 0;
  }
  const seedsFailed = failed.map((r) => r.seed).sort((a, b) => a - b);
  console.log(
    `[sim] FAIL: ${failed.length} of ${done} seeds failed: ${seedsFailed.slice(0, 50).join(', ')}${failed.length > 50 ? ', …' : ''}`,
  );
  if (expectFailure) console.log(`[sim] broken variant caught (first at seed ${seedsFailed[0]})`);
  return expectFailure ? 0 : 1;
}
