/**
 * A sharded tandem-kv with real processes: 3 replicated pairs (6 `tandem-kv serve` child processes, the
 * built CLI) behind one shard map; sharded clients increment counters spread over all pairs (a bounded
 * load); one pair's primary is SIGKILLed (by pid) mid-load. That pair fails over on its own, the other
 * two serve on without a single failed request, and every acknowledged increment is read back from its
 * pair: nothing lost, nothing applied twice — and each key only on the pair it hashes to. Also the
 * `tandem-kv call --shards` command line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rendezvousShard, type ShardMap } from '@tandem/core';
import { ReplicaPair } from '../src/harness/cluster.js';
import { builtCliPath } from '../src/harness/replica-process.js';
import { ShardedWorkload } from '../src/harness/sharded-workload.js';
import { kvShardKey } from '../src/shards.js';
import { createTransportRegistry } from '../src/transports.js';
import { TEST_REPLICATION, until } from './fault-harness.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  const cs = cleanups.reverse();
  cleanups = [];
  for (const c of cs) {
    try {
      await c();
    } catch {
      /* best effort */
    }
  }
});

async function startShards(n: number): Promise<{ pairs: ReplicaPair[]; map: ShardMap }> {
  const pairs: ReplicaPair[] = [];
  cleanups.push(() => Promise.all(pairs.map((p) => p.stop())).then(() => undefined));
  for (let i = 0; i < n; i++) pairs.push(await ReplicaPair.start({ replication: TEST_REPLICATION }));
  return { pairs, map: { version: 1, shards: pairs.map((p, i) => ({ name: `s${i + 1}`, servers: p.addresses })) } };
}

describe('sharded kv over 3 pairs (6 processes)', () => {
  it('one pair loses its primary under load: the others fail no request, nothing acknowledged is lost or doubled', async () => {
    const { pairs, map } = await startShards(3);
    const workload = new ShardedWorkload({
      map,
      clients: 4,
      keysPerClient: 12,
      maxCallsPerCounter: 400, // bounded: the load ends on its own even if the test's stop is never reached
      network: createTransportRegistry(),
      config: TEST_REPLICATION,
    });
    cleanups.push(() => workload.stop());
    const byShard = workload.keysByShard();
    for (const s of ['s1', 's2', 's3']) expect(byShard.get(s)!.length, `keys on ${s}`).toBeGreaterThan(0);

    workload.start();
    await until('load on every shard', () => ['s1', 's2', 's3'].every((s) => workload.shards.get(s)!.ok >= 100), 30_000);
    const victim = pairs[1]!; // shard s2
    const pid = victim.a.pid;
    const killedAt = workload.now();
    process.kill(pid, 'SIGKILL');
    await victim.a.exited;
    await victim.b.waitForRole(['solo-primary', 'primary'], 15_000);
    await until('s2 answers from its new primary', () => workload.failoverMs('s2', killedAt, 1) !== undefined, 15_000);
    const failoverEnd = killedAt + workload.failoverMs('s2', killedAt, 1)!;
    const okAtKill = { s1: workload.shards.get('s1')!.ok, s3: workload.shards.get('s3')!.ok };
    await until(
      'more load after the failover',
      () => workload.shards.get('s1')!.ok >= okAtKill.s1 + 100 && workload.shards.get('s3')!.ok >= okAtKill.s3 + 100,
      30_000,
    );
    await workload.stop();

    // Read every key from every pair's serving replica: a key has a value on its own pair only.
    const values = new Map<string, string | null>();
    for (const [i, pair] of pairs.entries()) {
      const name = `s${i + 1}`;
      const serving = await pair.serving();
      expect(serving, `${name} serving`).toBeDefined();
      const all = [...byShard.values()].flat();
      const { values: vs } = await serving!.read(all);
      for (const [j, key] of all.entries()) {
        if (byShard.get(name)!.includes(key)) {
          values.set(key, vs[j] ?? null);
          expect(vs[j], `${key} on its pair ${name}`).not.toBeNull();
        } else expect(vs[j], `${key} (shard ${workload.shardOf(key)}) on ${name}`).toBeNull();
      }
    }
    const v = workload.verify(values);
    const stats = Object.fromEntries(
      [...workload.shards].map(([s, st]) => [
        s,
        { ok: st.ok, failed: st.failed, errors: st.errors, maxLatencyMs: Math.round(st.maxLatencyMs) },
      ]),
    );
    const during = {
      s1: workload.successesBetween('s1', killedAt, failoverEnd),
      s3: workload.successesBetween('s3', killedAt, failoverEnd),
    };
    console.info(
      `[kv shards] ${JSON.stringify({ keys: Object.fromEntries([...byShard].map(([s, k]) => [s, k.length])), stats, failoverMs: Math.round(failoverEnd - killedAt), servedDuringFailover: during, ...v })}`,
    );
    expect({ lost: v.lost, duplicated: v.duplicated, details: v.details }).toEqual({ lost: 0, duplicated: 0, details: [] });
    expect(v.acknowledged).toBeGreaterThan(600);
    expect(stats.s1!.failed).toBe(0);
    expect(stats.s3!.failed).toBe(0);
    expect(stats.s2!.ok).toBeGreaterThan(0);
    // The other pairs answered while s2 had no primary (between the kill and s2's first reply after it).
    expect(during.s1).toBeGreaterThan(0);
    expect(during.s3).toBeGreaterThan(0);
    expect(workload.shards.get('s2')!.successes.some(([t, e]) => t > failoverEnd && e === 2)).toBe(true);
    // Only s2 changed epoch.
    for (const i of [0, 2]) expect((await pairs[i]!.a.status()).epoch, `s${i + 1} epoch`).toBe(1);
    expect((await victim.b.status()).epoch).toBe(2);
  }, 120_000);

  it('tandem-kv call --shards routes by key (map file, inline, or --config) and refuses scans that span pairs', async () => {
    const { pairs, map } = await startShards(2);
    const dir = mkdtempSync(join(tmpdir(), 'tandem-shards-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const mapFile = join(dir, 'shards.json');
    writeFileSync(mapFile, JSON.stringify(map));
    writeFileSync(join(dir, 'client.json'), JSON.stringify({ shards: 'shards.json', timeout: 8000 }));
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [builtCliPath(), 'call', ...args], { encoding: 'utf8', timeout: 20_000 });
      return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
    };
    // Keys landing on each pair, by the same hash the CLI uses.
    const shardOf = (key: string): string => routeOf(key, map);
    const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
    expect(new Set(keys.map(shardOf)).size).toBe(2);
    for (const [i, key] of keys.entries()) {
      const via =
        i % 3 === 0 ? ['--shards', mapFile] : i % 3 === 1 ? ['--shards', JSON.stringify(map)] : ['--config', join(dir, 'client.json')];
      const r = cli(...via, 'set', key, `v${i}`);
      expect(r, key).toMatchObject({ code: 0 });
      expect(JSON.parse(r.out)).toEqual({ kind: 'value', key, value: `v${i}` });
    }
    for (const [i, pair] of pairs.entries()) {
      const { values } = await (await pair.serving())!.read(keys);
      for (const [j, key] of keys.entries()) expect(values[j], `${key} on s${i + 1}`).toBe(shardOf(key) === `s${i + 1}` ? `v${j}` : null);
    }
    const scan = cli('--shards', mapFile, 'scan', 'a');
    expect(scan.code).toBe(2);
    expect(scan.err).toMatch(/may span every pair/);
    expect(cli('--shards', mapFile, 'scan', '{alpha}x').code).toBe(0);
    const bad = cli('--shards', JSON.stringify({ version: 1, shards: [] }), 'get', 'k');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/invalid shard map: shards: empty/);
    expect(cli('--shards', mapFile, '--servers', 'tcp://127.0.0.1:1,tcp://127.0.0.1:2', 'get', 'k').code).toBe(2);
  }, 120_000);
});

/** The shard a key goes to under `map` (kvShardKey + the core's rendezvous choice). */
const routeOf = (key: string, map: ShardMap): string =>
  rendezvousShard(
    kvShardKey({ op: 'get', key }),
    map.shards.map((s) => s.name),
  );
