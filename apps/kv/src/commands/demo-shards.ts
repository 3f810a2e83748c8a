/**
 * `tandem-kv demo --shards N`: N replicated pairs (2N `tandem-kv serve` child processes on loopback), one
 * shard map over them, concurrent sharded clients incrementing counters whose keys hash over every pair;
 * mid-load the first pair's primary is SIGKILLed. That pair fails over on its own while the others keep
 * serving; at the end every counter is read back from its pair's serving replica: nothing acknowledged
 * lost, nothing applied twice, every pair holding its share of the keys (docs/SHARDING.md).
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplicationConfig, ShardMap } from '@tandem/core';
import { ReplicaPair } from '../harness/cluster.js';
import { ShardedWorkload } from '../harness/sharded-workload.js';
import { keygen } from '../security-options.js';
import { createTransportRegistry } from '../transports.js';

export interface ShardedDemoOptions {
  shards: number;
  clients: number;
  durationS: number;
  transport: string;
  replicaLog?: string | undefined;
  replication: Partial<ReplicationConfig>;
}

export interface ShardedDemoResult {
  ok: boolean;
  transport: string;
  clients: number;
  durationS: number;
  map: ShardMap;
  killed: { shard: string; pid: number; failoverMs: number | null };
  shards: { name: string; keys: number; ok: number; failed: number; maxLatencyMs: number; maxLatencyAtS: number; epoch: number }[];
  acknowledged: number;
  unknownOutcome: number;
  lost: number;
  duplicated: number;
  details: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number): number => Math.round(n * 10) / 10;

export async function runShardedDemo(opts: ShardedDemoOptions): Promise<ShardedDemoResult> {
  const say = (s: string): void => {
    process.stderr.write(s + '\n');
  };
  say(
    `tandem-kv demo --shards ${opts.shards}: ${opts.shards} pairs (${2 * opts.shards} processes) on ${opts.transport}, ${opts.clients} sharded clients, ~${opts.durationS} s`,
  );
  const keyDir = mkdtempSync(join(tmpdir(), 'tandem-demo-shards-'));
  const keyFile = join(keyDir, 'cluster.key');
  await keygen(keyFile, {}, false);
  const pairs: ReplicaPair[] = [];
  const replicaLog = opts.replicaLog;
  try {
    for (let i = 0; i < opts.shards; i++) {
      const name = `s${i + 1}`;
      const pair = await ReplicaPair.start({
        transport: opts.transport,
        replication: opts.replication,
        extraArgs: ['--cluster-key-file', keyFile],
        ...(replicaLog
          ? { logLevel: 'info' as const, onStderr: (node: string, line: string) => appendFileSync(replicaLog, `${name}.${node} ${line}\n`) }
          : {}),
      });
      pairs.push(pair);
      say(`  shard ${name}: primary a (pid ${pair.a.pid}) ${pair.addresses[0]}, backup b (pid ${pair.b.pid}) ${pair.addresses[1]}`);
    }
    const map: ShardMap = { version: 1, shards: pairs.map((p, i) => ({ name: `s${i + 1}`, servers: p.addresses })) };
    const workload = new ShardedWorkload({
      map,
      clients: opts.clients,
      network: createTransportRegistry(),
      config: opts.replication,
    });
    const byShard = workload.keysByShard();
    say(`  ${[...byShard].map(([s, ks]) => `${s}: ${ks.length} keys`).join(', ')} (rendezvous hashing of the keys over the shard names)`);
    const d = opts.durationS * 1000;
    workload.start();
    await sleep(d * 0.4);

    const victim = pairs[0]!;
    const pid = victim.a.pid;
    const killedAt = workload.now();
    process.kill(pid, 'SIGKILL');
    await victim.a.exited;
    say(`  ${(killedAt / 1000).toFixed(1)} s: SIGKILL shard s1's primary (pid ${pid}); the other shards are not touched`);
    await victim.b.waitForRole(['solo-primary', 'primary'], 15_000);
    const failoverDeadline = Date.now() + 15_000;
    while (workload.failoverMs('s1', killedAt, 1) === undefined && Date.now() < failoverDeadline) await sleep(10);
    const failoverMs = workload.failoverMs('s1', killedAt, 1);
    say(
      `  s1's backup took over; first reply from it ${failoverMs === undefined ? '(none)' : `${Math.round(failoverMs)} ms`} after the kill`,
    );
    await sleep(d * 0.6);
    await workload.stop();

    const values = new Map<string, string | null>();
    const shards: ShardedDemoResult['shards'] = [];
    for (const [i, pair] of pairs.entries()) {
      const name = `s${i + 1}`;
      const keys = byShard.get(name) ?? [];
      const serving = (await pair.serving()) ?? pair.b;
      const { values: vs, status } = await serving.read(keys);
      for (const [j, k] of keys.entries()) values.set(k, vs[j] ?? null);
      const st = workload.shards.get(name)!;
      shards.push({
        name,
        keys: keys.length,
        ok: st.ok,
        failed: st.failed,
        maxLatencyMs: round(st.maxLatencyMs),
        maxLatencyAtS: round(st.maxLatencyAt / 1000),
        epoch: status.epoch,
      });
    }
    const v = workload.verify(values);
    const others = shards.slice(1);
    const details = [...v.details];
    for (const s of shards) if (s.keys === 0) details.push(`shard ${s.name} got no keys`);
    for (const s of others) if (s.failed > 0) details.push(`shard ${s.name} (not killed) failed ${s.failed} calls`);
    return {
      ok: v.lost === 0 && v.duplicated === 0 && shards.every((s) => s.keys > 0) && others.every((s) => s.failed === 0),
      transport: opts.transport,
      clients: opts.clients,
      durationS: opts.durationS,
      map,
      killed: { shard: 's1', pid, failoverMs: failoverMs === undefined ? null : round(failoverMs) },
      shards,
      acknowledged: v.acknowledged,
      unknownOutcome: v.unknown,
      lost: v.lost,
      duplicated: v.duplicated,
      details,
    };
  } finally {
    await Promise.all(pairs.map((p) => p.stop()));
    rmSync(keyDir, { recursive: true, force: true });
  }
}

export function describeShardedDemo(r: ShardedDemoResult): string {
  const lines = [
    '',
    `tandem-kv demo --shards ${r.shards.length} ${r.ok ? 'PASSED' : 'FAILED'}`,
    `  acknowledged        ${r.acknowledged} increments (${r.unknownOutcome} with unknown outcome)`,
    `  lost                ${r.lost}   (acknowledged increments missing from their pair)`,
    `  duplicated          ${r.duplicated}   (increments applied more than once)`,
    `  failover            shard ${r.killed.shard}: ${r.killed.failoverMs ?? '?'} ms (SIGKILL of its primary, pid ${r.killed.pid} → first reply from its backup)`,
    '  shard   keys   ok calls  failed  max latency (at)     epoch',
    ...r.shards.map(
      (s) =>
        `  ${s.name.padEnd(6)} ${String(s.keys).padStart(5)} ${String(s.ok).padStart(9)} ${String(s.failed).padStart(7)} ${`${s.maxLatencyMs} ms`.padStart(12)} ${`(${s.maxLatencyAtS} s)`.padStart(8)} ${String(s.epoch).padStart(6)}`,
    ),
  ];
  for (const d of r.details) lines.push(`  ! ${d}`);
  return lines.join('\n');
}
