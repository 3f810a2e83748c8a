/**
 * `npm run sim -- --scenario partition --seeds N [--from S] [--witness] [--faults K1,K2] [--workers W] [--expect-failure] [--verbose]`
 *
 * The partition scenario (@tandem/testkit runPartitionSimulation): the primary–backup link cut while the
 * clients reach both replicas, held for several takeover bounds, healed — with `--witness` a simulated
 * witness (a model of @tandem/witness-etcd, sometimes itself cut off from one replica) decides who may serve
 * alone. With the witness every seed must pass. Without it both replicas serve alone (split brain) and the
 * older side's acknowledged writes are lost: the documented behaviour. `--expect-failure` turns that run
 * into a test of the checker: exit 0 when some seed's lost writes were found (missing from the final reads
 * AND a non-linearizable history), 1 otherwise. `--faults` draws from other partition faults (PARTITION_FAULT_KINDS
 * and 'partition-hosts': the primary's host, with its client, cut off from the backup).
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { PARTITION_FAULT_KINDS } from '@tandem/testkit';
import type { PartitionSeedRequest, PartitionSeedResult } from './partition-protocol.js';

const KNOWN: readonly string[] = [...PARTITION_FAULT_KINDS, 'partition-hosts'];

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error(
    'usage: npm run sim -- --scenario partition --seeds N [--from S] [--witness] [--faults K1,K2] [--workers W] [--expect-failure] [--verbose]',
  );
  process.exit(2);
}

let faultsArg: string[] | undefined;
const replay = (seed: number, witness: boolean) =>
  `npm run sim -- --scenario partition --seeds 1 --from ${seed}${witness ? ' --witness' : ''}${faultsArg ? ` --faults ${faultsArg.join(',')}` : ''}`;

/** A seed where the checker saw the split brain's loss. */
const lossSeen = (r: PartitionSeedResult) => r.lostWrites > 0 && !r.linearizable;

export async function runPartitionScenario(argv: string[]): Promise<number> {
  let seeds = 100;
  let from = 1;
  let witness = false;
  let workers = Math.max(1, Math.min(2, availableParallelism()));
  let expectFailure = false;
  let verbose = false;
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) usage(`${flag} needs an integer ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--scenario') {
      if (argv[++i] !== 'partition') usage(`unknown scenario "${argv[i]}"`);
    } else if (a === '--seeds') seeds = int(a, argv[++i], 1);
    else if (a === '--from') from = int(a, argv[++i], 0);
    else if (a === '--workers') workers = int(a, argv[++i], 1);
    else if (a === '--witness') witness = true;
    else if (a === '--faults') {
      const list = (argv[++i] ?? usage('--faults needs a comma-separated list')).split(',').filter((k) => k !== '');
      for (const k of list) if (!KNOWN.includes(k)) usage(`unknown partition fault "${k}"; known: ${KNOWN.join(', ')}`);
      if (list.length === 0) usage('--faults needs at least one fault kind');
      faultsArg = list;
    } else if (a === '--expect-failure') expectFailure = true;
    else if (a === '--verbose') verbose = true;
    else usage(`unknown argument "${a}" for the partition scenario`);
  }
  workers = Math.min(workers, seeds);
  console.log(
    `[sim] scenario partition, ${witness ? 'WITH a simulated witness: every seed must pass' : 'WITHOUT a witness: split brain, the older side’s acknowledged writes are lost (documented)'}`,
  );
  if (faultsArg) console.log(`[sim] faults drawn from: ${faultsArg.join(', ')}`);
  console.log(`[sim] seeds ${from}…${from + seeds - 1} on ${workers} worker(s)`);
  const started = performance.now();
  const results: PartitionSeedResult[] = [];
  const failed: PartitionSeedResult[] = [];
  let next = from;
  const end = from + seeds;
  const workerPath = fileURLToPath(new URL('./partition-worker.ts', import.meta.url));
  let lastProgress = performance.now();
  const printLimit = witness || !expectFailure ? 10 : 2;
  await new Promise<void>((resolveAll, rejectAll) => {
    let live = 0;
    for (let w = 0; w < workers; w++) {
      const child = fork(workerPath, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      live++;
      const dispatch = (): void => {
        if (next >= end) child.disconnect();
        else
          child.send({
            seed: next++,
            witness,
            verbose: verbose || seeds === 1,
            ...(faultsArg ? { faults: faultsArg } : {}),
          } satisfies PartitionSeedRequest);
      };
      child.on('message', (m) => {
        if ((m as { ready?: boolean }).ready) return dispatch();
        const r = m as PartitionSeedResult;
        results.push(r);
        if (!r.ok) {
          failed.push(r);
          if (failed.length <= printLimit || seeds === 1) {
            console.log(
              `✗ seed ${r.seed} FAILED (${witness ? `witness, lease ${r.leaseMs} ms` : 'no witness'}, ${r.virtualMs.toFixed(0)} virtual ms, trace ${r.traceHash}): ${r.lostWrites} acknowledged writes lost, ${r.overlaps} overlapping acknowledgements, history ${r.linearizable ? 'linearizable' : 'NOT linearizable'}`,
            );
            for (const f of r.faults) console.log(`  fault: ${f}`);
            for (const f of r.failures.slice(0, seeds === 1 || verbose ? 50 : 5))
              console.log(
                `  ${f
                  .split('\n')
                  .slice(0, seeds === 1 || verbose ? 40 : 6)
                  .join('\n    ')}`,
              );
            if (r.logs) console.log('  last log lines:\n' + r.logs.map((l) => `    ${JSON.stringify(l)}`).join('\n'));
            console.log(`  replay: ${replay(r.seed, witness)}`);
          }
        }
        if (performance.now() - lastProgress > 5000) {
          lastProgress = performance.now();
          console.log(
            `[sim] ${results.length}/${seeds} seeds, ${failed.length} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
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
  const sum = (f: (r: PartitionSeedResult) => number) => results.reduce((s, r) => s + f(r), 0);
  const withLoss = results.filter(lossSeen).sort((a, b) => a.seed - b.seed);
  const worst = results.reduce<PartitionSeedResult | undefined>(
    (w, r) => (w === undefined || r.maxLatencyAfterFaultMs / r.livenessBoundMs > w.maxLatencyAfterFaultMs / w.livenessBoundMs ? r : w),
    undefined,
  );
  console.log(
    `[sim] ${results.length} seeds in ${secs.toFixed(1)} s (${(results.length / secs).toFixed(1)} seeds/s), ${sum((r) => r.takeovers)} takeovers`,
  );
  console.log(
    `[sim] lost acknowledged writes: ${sum((r) => r.lostWrites)} in ${results.filter((r) => r.lostWrites > 0).length} seeds (the checker saw it — also not linearizable — in ${withLoss.length}${withLoss.length > 0 ? `; first at seed ${withLoss[0]!.seed}` : ''}); seeds with two replicas acknowledging at once: ${results.filter((r) => r.overlaps > 0).length}`,
  );
  if (witness) {
    const ws = (k: 'asked' | 'granted' | 'refused' | 'unreachable' | 'expired') => sum((r) => r.witnessStats?.[k] ?? 0);
    console.log(
      `[sim] witness: ${ws('asked')} questions, ${ws('granted')} granted, ${ws('refused')} refused, ${ws('unreachable')} unreachable, ${ws('expired')} leases expired; operator promotes refused: ${sum((r) => r.promotesRefused)}; blocked reports in a partition: ${sum((r) => r.blockedInPartition)}; takeovers/step-downs/alarms while the witness alone was cut off: ${sum((r) => r.changesWhileWitnessCut)}`,
    );
  }
  if (worst)
    console.log(
      `[sim] worst latency after a fault action: ${worst.maxLatencyAfterFaultMs.toFixed(1)} ms (seed ${worst.seed}; its bound ${worst.livenessBoundMs} ms${witness ? ', lease included' : ''})`,
    );
  if (failed.length === 0) {
    console.log(`[sim] PASS: all ${results.length} seeds passed`);
    if (expectFailure) console.log('[sim] expected the split brain’s loss and saw none');
    return expectFailure ? 1 : 0;
  }
  const seedsFailed = failed.map((r) => r.seed).sort((a, b) => a - b);
  console.log(
    `[sim] FAIL: ${failed.length} of ${results.length} seeds failed: ${seedsFailed.slice(0, 50).join(', ')}${failed.length > 50 ? ', …' : ''}`,
  );
  if (!expectFailure) {
    console.log(`[sim] replay the first: ${replay(seedsFailed[0]!, witness)}`);
    return 1;
  }
  if (withLoss.length === 0) {
    console.log('[sim] expected the checker to find lost acknowledged writes, and it found none');
    return 1;
  }
  console.log(
    `[sim] split brain caught as expected: lost acknowledged writes in ${withLoss.length} of ${results.length} seeds, the first after ${withLoss[0]!.seed - from + 1} seed(s) (seed ${withLoss[0]!.seed}: ${replay(withLoss[0]!.seed, witness)})`,
  );
  return 0;
}
