/**
 * A shard map kept in a real etcd (`@tandem/witness-etcd` EtcdShardMap) and a running sharded client:
 * when an operator writes a new map, the client routes by it without restarting — keys move to the new
 * pair and their writes land there (two real pairs of `tandem-kv serve` processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShardedClient, nodeEnv, type ShardMap } from '@tandem/core';
import { startEtcd, type EtcdServer } from '@tandem/testkit';
import { EtcdShardMap, writeShardMap } from '@tandem/witness-etcd';
import { ReplicaPair } from '../src/harness/cluster.js';
import { kvService } from '../src/service.js';
import { kvShardKey } from '../src/shards.js';
import { createTransportRegistry } from '../src/transports.js';
import { TEST_REPLICATION, until } from './fault-harness.js';
import { requireEtcd } from '../../../packages/witness-etcd/test/etcd-harness.js';

// Loud skip without etcd, a failing test under CI=true (the witness package's own rule).
const haveEtcd = requireEtcd('shard map in etcd');

describe.skipIf(!haveEtcd)('a shard map in etcd, watched by a running client', () => {
  let etcd: EtcdServer | undefined;
  const pairs: ReplicaPair[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await Promise.all(pairs.map((p) => p.stop()));
    await etcd?.stop();
  });

  it('a new map written to etcd is picked up: keys move to the new pair and are written there', async () => {
    pairs.push(await ReplicaPair.start({ replication: TEST_REPLICATION }), await ReplicaPair.start({ replication: TEST_REPLICATION }));
    const key = `/tandem/kv-shards-${process.pid}`;
    const v1: ShardMap = { version: 1, shards: [{ name: 's1', servers: pairs[0]!.addresses }] };
    const v2: ShardMap = { version: 2, shards: [...v1.shards, { name: 's2', servers: pairs[1]!.addresses }] };
    await writeShardMap([etcd!.hostPort], key, v1);
    const source = await EtcdShardMap.open({ endpoints: [etcd!.hostPort], key });
    const client = createShardedClient({
      service: kvService,
      env: nodeEnv({ network: createTransportRegistry() }),
      shardKey: kvShardKey,
      map: source,
      clientOptions: { config: TEST_REPLICATION },
    });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      for (const k of keys) expect((await client.callWithInfo({ op: 'incr', key: k })).shard).toBe('s1');
      await writeShardMap([etcd!.hostPort], key, v2);
      await until('the client routes by map 2', () => client.map.version === 2, 10_000);
      const moved = keys.filter((k) => client.shardForKey(k) === 's2');
      expect(moved.length).toBeGreaterThan(5); // rendezvous hashing: about half of the keys move
      for (const k of keys) {
        const r = await client.callWithInfo({ op: 'incr', key: k });
        expect(r.shard).toBe(moved.includes(k) ? 's2' : 's1');
      }
      // On the new pair, each moved key starts empty (no resharding): its counter is 1 there.
      const { values } = await (await pairs[1]!.healthy()).primary.read(moved);
      expect(values).toEqual(moved.map(() => '1'));
    } finally {
      await client.close();
      await source.close();
    }
  }, 120_000);
});
