/**
 * Replication benchmark (one run, one process tree, loopback): the kv service
 *   (a) unreplicated — the same replica code running as a solo primary (its peer address has nothing
 *       listening, so no flushes, no lease, no state information): same client stack, codec, transport;
 *   (b) replicated with this protocol (reply first, client forwards, periodic flush);
 *   (b') (b) with a cluster key: peers authenticate, every reply's state information carries the primary's
 *       MAC and the backup verifies each forward (docs/SECURITY.md) — ratios.authVsNoAuthP50 = b'/b;
 *   (c) replicated synchronously (replyMode 'sync': the primary replies after the backup's ack);
 * at concurrency 1 and 64, interleaved round by round (a,b,c,a,b,c…) so machine noise hits all three.
 * Then the failover times with the default configuration, over ≥20 faults each (failoverMs):
 *   processCrash — SIGKILL of the primary process (its kernel resets every connection; the backup's dial
 *                  is refused): the fast path, bounded by processCrashFailoverMs;
 *   hostCrash    — SIGSTOP of the primary (silence, no reset, as when its host dies): the heartbeat
 *                  detector, bounded by worstCaseFailoverMs;
 * each from the signal to a client's first reply from the new primary, with every acknowledged increment
 * checked afterwards. Replicas are `tandem-kv serve` child processes (apps/kv/dist).
 *
 * With `--witness etcd` the failover runs are repeated with both replicas asking a real etcd (started on
 * loopback) before serving alone — failoverMsWithWitness, beside failoverMs (docs/PARTITIONS.md).
 *
 *   npm run bench:replication -- [--json] [--quick] [--transport tcp|ws|zmq] [--kills N] [--failover-only] [--witness etcd]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import {
  computeTimingBounds,
  createClient,
  nodeEnv,
  resolveConfig,
  type Client,
  type ClientDiagnostics,
  type ReplicationConfig,
} from '@tandem/core';
import { ReplicaPair } from '../../apps/kv/src/harness/cluster.js';
import { freePort } from '../../apps/kv/src/harness/free-port.js';
import { ReplicaProcess } from '../../apps/kv/src/harness/replica-process.js';
import { percentile } from '../../apps/kv/src/harness/workload.js';
import type { KvReply, KvRequest } from '../../apps/kv/src/schema.js';
import { kvService } from '../../apps/kv/src/service.js';
import { addressFor, createTransportRegistry } from '../../apps/kv/src/transports.js';
import { keygen } from '../../apps/kv/src/security-options.js';
import { startEtcd, type EtcdServer } from '@tandem/testkit';

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean' },
    quick: { type: 'boolean' },
    transport: { type: 'string' },
    kills: { type: 'string' },
    rounds: { type: 'string' },
    'run-ms': { type: 'string' },
    piggyback: { type: 'string' },
    'failover-only': { type: 'boolean' },
    witness: { type: 'string' },
  },
});
/** `--witness etcd`: the failover runs again with both replicas asking a real etcd (started here on loopback,
 * @tandem/testkit startEtcd) before serving alone, reported beside the runs without (failoverMsWithWitness). */
if (flags.witness !== undefined && flags.witness !== 'etcd') throw new Error('--witness takes etcd');
/** Piggyback mode for (b) and (c); default: the core's default. */
const piggyback = flags.piggyback as ReplicationConfig['piggyback'] | undefined;
if (piggyback !== undefined && piggyback !== 'entries' && piggyback !== 'seq-digest')
  throw new Error('--piggyback must be entries or seq-digest');
const quick = flags.quick === true;
const transport = flags.transport ?? 'tcp';
const rounds = Number(flags.rounds ?? (quick ? 2 : 6));
const runMs = Number(flags['run-ms'] ?? (quick ? 500 : 2500));
const kills = Number(flags.kills ?? 20);
const CONCURRENCY = [1, 64] as const;
const log = (s: string): void => void process.stderr.write(s + '\n');

type Kind = 'unreplicated' | 'replicated' | 'replicatedAuth' | 'sync';
const KINDS: Kind[] = ['unreplicated', 'replicated', 'replicatedAuth', 'sync'];
const keyDir = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
const clusterKey = join(keyDir, 'cluster.key');

interface Target {
  kind: Kind;
  servers: [string, string];
  client: Client<KvRequest, KvReply> & ClientDiagnostics;
  stop: () => Promise<void>;
}

/** The host-crash run uses the default configuration; the process-crash run turns the opt-in fast path on
 * (`fastFailover`, off by default: docs/PROTOCOL.md "Fast path for a dead process"). Both are printed. */
const FAILOVER_CONFIG: Partial<ReplicationConfig> = {};
const PROCESS_CRASH_CONFIG: Partial<ReplicationConfig> = { fastFailover: true };

async function startTarget(kind: Kind): Promise<Target> {
  const network = createTransportRegistry();
  if (kind === 'unreplicated') {
    const [port, nobody] = [await freePort(), await freePort()];
    const listen = addressFor(transport, '127.0.0.1', port);
    const deadPeer = addressFor(transport, '127.0.0.1', nobody);
    const p = ReplicaProcess.spawn({ listen, peer: deadPeer, role: 'primary', nodeId: 'solo', logLevel: 'error' });
    await p.waitForRole(['primary', 'solo-primary'], 10_000);
    const servers: [string, string] = [listen, deadPeer];
    return { kind, servers, client: createClient({ service: kvService, env: nodeEnv({ network }), servers }), stop: () => p.stop() };
  }
  const replication: Partial<ReplicationConfig> = {
    ...(kind === 'sync' ? { replyMode: 'sync' } : {}),
    ...(piggyback ? { piggyback } : {}),
  };
  const pair = await ReplicaPair.start({
    transport,
    replication,
    logLevel: 'error',
    ...(kind === 'replicatedAuth' ? { extraArgs: ['--cluster-key-file', clusterKey] } : {}),
  });
  return {
    kind,
    servers: pair.addresses,
    client: createClient({ service: kvService, env: nodeEnv({ network }), servers: pair.addresses }),
    stop: () => pair.stop(),
  };
}

interface Samples {
  latencies: number[];
  ops: number;
  ms: number;
}

const VALUE = 'x'.repeat(32);

async function measure(t: Target, concurrency: number, durationMs: number, into: Samples): Promise<void> {
  const start = performance.now();
  const end = start + durationMs;
  let n = 0;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await t.client.call({ op: 'set', key: `k${(w * 7919 + n++) % 1024}`, value: VALUE });
      into.latencies.push(performance.now() - t0);
      into.ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  into.ms += performance.now() - start;
}

function summarise(s: Samples): { p50: number; p99: number; throughput: number; ops: number } {
  return {
    p50: r3(percentile(s.latencies, 50)),
    p99: r3(percentile(s.latencies, 99)),
    throughput: Math.round((s.ops * 1000) / s.ms),
    ops: s.ops,
  };
}
const r3 = (n: number): number => Math.round(n * 1000) / 1000;

interface FailoverResult {
  /** 'kill': SIGKILL of the primary process (resets, refused dials); 'stop': SIGSTOP (silence, no reset). */
  fault: 'SIGKILL' | 'SIGSTOP';
  p50: number;
  p99: number;
  max: number;
  samples: number[];
  /** Kills after which no new primary answered within 10 s (the pair is then restarted), with why. */
  stuck: { kill: number; status: string }[];
  /** The computed bound for this kind of fault (processCrashFailoverMs or worstCaseFailoverMs). */
  computedBoundMs: number;
  boundName: 'processCrashFailoverMs' | 'worstCaseFailoverMs';
  withinBound: boolean;
  /** Run with a witness (etcd): the computed bound then excludes the witness's own round trips. */
  witness: boolean;
  config: Partial<ReplicationConfig>;
  /** Every acknowledged increment checked against the serving replica after each pair's last kill. */
  check: { acknowledged: number; lost: number; duplicated: number; unverifiable: number };
}

let witnessPairs = 0;

async function failoverRun(mode: 'kill' | 'stop', config: Partial<ReplicationConfig>, etcd?: EtcdServer): Promise<FailoverResult> {
  const debug = process.env.BENCH_DEBUG !== undefined;
  const startPair = (): Promise<ReplicaPair> =>
    ReplicaPair.start({
      transport,
      replication: config,
      extraArgs: [
        '--cluster-key-file',
        clusterKey,
        ...(etcd ? ['--witness', `etcd://${etcd.hostPort}/tandem/bench-${process.pid}-${++witnessPairs}`] : []),
      ],
      logLevel: debug ? 'info' : 'error',
      onStderr: (n, l) => debug && log(`${n} ${l.slice(0, 240)}`),
    });
  let pair = await startPair();
  const network = createTransportRegistry();
  const successes: [number, number][] = [];
  let acked = new Array<number>(16).fill(0);
  let unknown = new Array<number>(16).fill(0);
  const samples: number[] = [];
  const stuck: FailoverResult['stuck'] = [];
  const check = { acknowledged: 0, lost: 0, duplicated: 0, unverifiable: 0 };
  let running = false;
  let loop: Promise<void> = Promise.resolve();
  let client: (Client<KvRequest, KvReply> & ClientDiagnostics) | undefined;

  // A fresh client per kill: a long-lived client's dial backoff towards the replica that was dead
  // (core ServerConnection, up to 2 s) would otherwise be measured too — see the report.
  const startClient = (): void => {
    const c = createClient({ service: kvService, env: nodeEnv({ network }), servers: pair.addresses, config: config });
    client = c;
    running = true;
    const a = acked;
    const u = unknown;
    loop = (async () => {
      let i = 0;
      while (running) {
        const key = i++ % 16;
        try {
          const r = await c.callWithInfo({ op: 'incr', key: `n${key}` });
          successes.push([performance.now(), r.epoch]);
          a[key]!++;
        } catch {
          u[key]!++;
        }
      }
    })();
  };
  const stopClient = async (): Promise<void> => {
    running = false;
    await loop;
    await client?.close();
    client = undefined;
  };
  /** Compare the tallies with the serving replica's counters, then start new tallies. */
  const verify = async (): Promise<void> => {
    const serving = await pair.serving();
    const total = acked.reduce((x, y) => x + y, 0);
    if (!serving) check.unverifiable += total;
    else {
      const { values } = await serving.read(acked.map((_, k) => `n${k}`));
      values.forEach((v, k) => {
        const n = Number(v ?? '0');
        check.lost += Math.max(0, acked[k]! - n);
        check.duplicated += Math.max(0, n - acked[k]! - unknown[k]!);
      });
      check.acknowledged += total;
    }
    acked = new Array<number>(16).fill(0);
    unknown = new Array<number>(16).fill(0);
  };

  try {
    for (let k = 0; k < kills; k++) {
      // both replicas up, one primary with its backup
      const { primary: victim } = await pair.healthy(10_000);
      startClient();
      const before = successes.length;
      while (successes.length < before + 20) await new Promise((r) => setTimeout(r, 2));
      await client!.drain();
      const epochBefore = client!.epoch;
      const t0 = performance.now();
      victim.signal(mode === 'kill' ? 'SIGKILL' : 'SIGSTOP');
      if (debug) log(`KILL at ${new Date().toISOString()}`);
      let done = false;
      while (!(done = successes.some(([t, e]) => t >= t0 && e > epochBefore)) && performance.now() - t0 < 10_000)
        await new Promise((r) => setTimeout(r, 1));
      // A stopped primary is killed once the new one serves (while stopped: no reply of it can come).
      if (mode === 'stop') victim.signal('SIGKILL');
      await victim.exited;
      if (!done) {
        const other = victim === pair.a ? pair.b : pair.a;
        const st = await other.status(1000).then(
          (s) => `${s.role}@${s.epoch} seq ${s.appliedSeq}`,
          (e: Error) => e.message,
        );
        stuck.push({ kill: k + 1, status: `survivor ${other.options.nodeId}: ${st}` });
        log(`\n  kill ${k + 1}: no reply from a new primary within 10 s (survivor ${st}); restarting the pair`);
        await stopClient();
        await verify();
        await pair.stop();
        pair = await startPair();
        continue;
      }
      samples.push(successes.find(([t, e]) => t >= t0 && e > epochBefore)![0] - t0);
      await stopClient();
      const restarted = pair.spawn(victim === pair.a ? 'a' : 'b', 'backup');
      await restarted.waitForRole(['backup'], 15_000);
      if (!flags.json || process.stderr.isTTY)
        process.stderr.write(`\r  kill ${k + 1}/${kills}: ${samples[samples.length - 1]!.toFixed(1)} ms   `);
    }
    process.stderr.write('\n');
    await verify();
  } finally {
    await stopClient();
    await pair.stop();
  }
  const bounds = computeTimingBounds(config);
  const boundName = mode === 'kill' ? 'processCrashFailoverMs' : 'worstCaseFailoverMs';
  const computedBoundMs = bounds[boundName];
  const max = r3(Math.max(...samples));
  return {
    fault: mode === 'kill' ? 'SIGKILL' : 'SIGSTOP',
    p50: r3(percentile(samples, 50)),
    p99: r3(percentile(samples, 99)),
    max,
    samples: samples.map(r3),
    stuck,
    computedBoundMs,
    boundName,
    withinBound: max <= computedBoundMs,
    witness: etcd !== undefined,
    config: resolveConfig(config),
    check,
  };
}

interface FailoverPair {
  processCrash: FailoverResult;
  hostCrash: FailoverResult;
}

async function failoverBoth(etcd?: EtcdServer): Promise<FailoverPair> {
  const w = etcd ? ' (witness: etcd)' : '';
  log(`  failover${w} (fastFailover on): SIGKILL the primary ${kills} times, time to the first reply from the new primary…`);
  const processCrash = await failoverRun('kill', PROCESS_CRASH_CONFIG, etcd);
  log(`  failover${w}: SIGSTOP the primary ${kills} times (no reset: the host-crash path)…`);
  const hostCrash = await failoverRun('stop', FAILOVER_CONFIG, etcd);
  return { processCrash, hostCrash };
}

/** The failover runs with the witness, when asked for (`--witness etcd`); etcd is stopped afterwards. */
async function failoverWithWitness(): Promise<FailoverPair | undefined> {
  if (flags.witness !== 'etcd') return undefined;
  const etcd = await startEtcd();
  try {
    return await failoverBoth(etcd);
  } finally {
    await etcd.stop();
  }
}

function printFailovers(prefix: string, f: FailoverPair, fw: FailoverPair | undefined): void {
  const print = (s: string): void => void (flags.json ? log(s) : process.stdout.write(s + '\n'));
  print(failoverLine(`${prefix}processCrash`, f.processCrash));
  print(failoverLine(`${prefix}hostCrash   `, f.hostCrash));
  if (fw === undefined) return;
  print(failoverLine(`${prefix}processCrash, witness etcd`, fw.processCrash));
  print(failoverLine(`${prefix}hostCrash, witness etcd   `, fw.hostCrash));
}

const failoverLine = (name: string, f: FailoverResult): string =>
  `  ${name} (${f.fault} → first reply from the new primary, ${f.samples.length} faults): p50 ${f.p50} ms, p99 ${f.p99} ms, max ${f.max} ms (computed ${f.boundName} ${f.computedBoundMs} ms${f.witness ? ' + the witness round trips, which no setting bounds' : f.withinBound ? '' : ', EXCEEDED'}); ${f.check.acknowledged} acknowledged increments: ${f.check.lost} lost, ${f.check.duplicated} duplicated${f.stuck.length ? `; ${f.stuck.length} without a new primary within 10 s` : ''}`;

async function failoverOnly(): Promise<void> {
  const started = performance.now();
  await keygen(clusterKey, {}, true);
  const failoverMs = await failoverBoth();
  const failoverMsWithWitness = await failoverWithWitness();
  const out = {
    transport,
    failoverSecurity: 'cluster key on (peers authenticated, MACs)',
    failoverMs,
    ...(failoverMsWithWitness ? { failoverMsWithWitness } : {}),
    durationS: Math.round((performance.now() - started) / 100) / 10,
  };
  if (flags.json) process.stdout.write(JSON.stringify(out) + '\n');
  printFailovers('', failoverMs, failoverMsWithWitness);
}

async function main(): Promise<void> {
  const started = performance.now();
  log(`bench:replication — transport ${transport}, ${rounds} rounds × ${runMs} ms per configuration and concurrency, ${kills} kills`);
  await keygen(clusterKey, {}, true);
  const targets: Target[] = [];
  for (const kind of KINDS) targets.push(await startTarget(kind));
  const samples = new Map<string, Samples>();
  const keyOf = (k: Kind, c: number): string => `${k}/c${c}`;
  for (const k of KINDS) for (const c of CONCURRENCY) samples.set(keyOf(k, c), { latencies: [], ops: 0, ms: 0 });
  try {
    // warm-up (JIT, connections), not recorded
    for (const t of targets) for (const c of CONCURRENCY) await measure(t, c, quick ? 150 : 400, { latencies: [], ops: 0, ms: 0 });
    for (let r = 0; r < rounds; r++) {
      for (const c of CONCURRENCY) for (const t of targets) await measure(t, c, runMs, samples.get(keyOf(t.kind, c))!);
      log(`  round ${r + 1}/${rounds} done`);
    }
  } finally {
    for (const t of targets) {
      await t.client.close();
      await t.stop();
    }
  }
  const results: Record<string, Record<string, ReturnType<typeof summarise>>> = {};
  for (const k of KINDS) {
    results[k] = {};
    for (const c of CONCURRENCY) results[k]![`c${c}`] = summarise(samples.get(keyOf(k, c))!);
  }
  const p50 = (k: Kind, c: number): number => results[k]![`c${c}`]!.p50;
  const tput = (k: Kind, c: number): number => results[k]![`c${c}`]!.throughput;
  const failover = await failoverBoth();
  const failoverWitness = await failoverWithWitness();
  const ratios = {
    replicatedVsUnreplicatedP50: r3(p50('replicated', 1) / p50('unreplicated', 1)),
    replicatedVsSyncP50: r3(p50('replicated', 1) / p50('sync', 1)),
    replicatedVsUnreplicatedP50At64: r3(p50('replicated', 64) / p50('unreplicated', 64)),
    replicatedVsSyncP50At64: r3(p50('replicated', 64) / p50('sync', 64)),
    replicatedVsUnreplicatedThroughputAt64: r3(tput('replicated', 64) / tput('unreplicated', 64)),
    replicatedVsSyncThroughputAt64: r3(tput('replicated', 64) / tput('sync', 64)),
    /** The same replicated pair with the cluster key and MACs on vs off, side by side (target ≤ 1.05). */
    authVsNoAuthP50: r3(p50('replicatedAuth', 1) / p50('replicated', 1)),
    authVsNoAuthP50At64: r3(p50('replicatedAuth', 64) / p50('replicated', 64)),
    authVsNoAuthThroughputAt64: r3(tput('replicatedAuth', 64) / tput('replicated', 64)),
  };
  const out = {
    transport,
    piggyback: piggyback ?? 'default (core)',
    quick,
    rounds,
    runMs,
    operation: 'set of a 32-byte value (one key out of 1024)',
    baseline:
      'unreplicated = the same replica process as a solo primary (no peer listening: no flush, no lease, no state information in replies), same client stack, codec and transport',
    results,
    ratios,
    targets: {
      replicatedVsUnreplicatedP50: '≤ 1.10',
      replicatedVsSyncP50: '< 1',
      authVsNoAuthP50: '≤ 1.05',
      met: ratios.replicatedVsUnreplicatedP50 <= 1.1 && ratios.replicatedVsSyncP50 < 1 && ratios.authVsNoAuthP50 <= 1.05,
    },
    failoverSecurity: 'cluster key on (peers authenticated, MACs)',
    failoverMs: failover,
    ...(failoverWitness ? { failoverMsWithWitness: failoverWitness } : {}),
    durationS: Math.round((performance.now() - started) / 100) / 10,
  };
  if (flags.json) {
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  const row = (k: Kind): string =>
    `  ${k.padEnd(13)}` +
    CONCURRENCY.map((c) => {
      const s = results[k]![`c${c}`]!;
      return `  c=${String(c).padEnd(3)} p50 ${s.p50.toFixed(3).padStart(7)} ms  p99 ${s.p99.toFixed(3).padStart(7)} ms  ${String(s.throughput).padStart(6)} ops/s`;
    }).join('  |');
  log('');
  for (const k of KINDS) log(row(k));
  log(
    `\n  ratios (concurrency 1): replicated/unreplicated p50 ${ratios.replicatedVsUnreplicatedP50} (target ≤ 1.10), replicated/sync p50 ${ratios.replicatedVsSyncP50} (target < 1), with/without cluster key p50 ${ratios.authVsNoAuthP50} (target ≤ 1.05)`,
  );
  log(
    `  ratios (concurrency 64): replicated/unreplicated p50 ${ratios.replicatedVsUnreplicatedP50At64}, replicated/sync p50 ${ratios.replicatedVsSyncP50At64}; throughput replicated/unreplicated ${ratios.replicatedVsUnreplicatedThroughputAt64}, replicated/sync ${ratios.replicatedVsSyncThroughputAt64}`,
  );
  printFailovers('failover ', failover, failoverWitness);
  log(`  baseline: ${out.baseline}`);
}

(flags['failover-only'] === true ? failoverOnly() : main())
  .finally(() => rmSync(keyDir, { recursive: true, force: true }))
  .then(
    () => setTimeout(() => process.exit(0), 100).unref(),
    (err: Error) => {
      process.stderr.write(`bench:replication failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
