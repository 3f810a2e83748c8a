import type { ShardMapSource as CoreShardMapSource } from '@tandem/core';
import { type EtcdServer, startEtcd } from '@tandem/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdShardMap, parseShardMap, type ShardMap, ShardMapError, validateShardMap, writeShardMap } from '../src/index.js';
import { memoryLogger, requireEtcd, until } from './etcd-harness.js';

const map = (version: number, n = 2): ShardMap => ({
  version,
  shards: Array.from({ length: n }, (_, i) => ({
    name: `s${i}`,
    servers: [`tcp://127.0.0.1:${7000 + 2 * i}`, `tcp://127.0.0.1:${7001 + 2 * i}`],
  })),
});

describe('validateShardMap', () => {
  it('accepts a well-formed map and returns a clean copy', () => {
    const m = { ...map(3), extra: true };
    expect(validateShardMap(m)).toEqual(map(3));
    expect(parseShardMap(JSON.stringify(map(1, 3)))).toEqual(map(1, 3));
  });

  it.each([
    [null, 'not an object'],
    [{ version: -1, shards: map(1).shards }, 'version'],
    [{ version: 1.5, shards: map(1).shards }, 'version'],
    [{ version: 1, shards: [] }, 'at least one shard'],
    [{ version: 1, shards: [{ name: '', servers: ['a', 'b'] }] }, 'name'],
    [{ version: 1, shards: [{ name: 'x', servers: ['a'] }] }, 'two non-empty addresses'],
    [{ version: 1, shards: [{ name: 'x', servers: ['a', 'a'] }] }, 'both replicas at a'],
    [
      {
        version: 1,
        shards: [
          { name: 'x', servers: ['a', 'b'] },
          { name: 'x', servers: ['c', 'd'] },
        ],
      },
      'duplicate shard name',
    ],
  ])('refuses %j', (value, problem) => {
    expect(() => validateShardMap(value)).toThrow(ShardMapError);
    expect(() => validateShardMap(value)).toThrow(problem);
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseShardMap('{version: 1')).toThrow(/not JSON/);
  });
});

const haveEtcd = requireEtcd('witness-etcd shard map');

describe.skipIf(!haveEtcd)('EtcdShardMap on a real etcd', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('reads the map, sees a newer one written to etcd, keeps it over an invalid or older one', async () => {
    const key = '/tandem/test/shards-watch';
    await writeShardMap([etcd.hostPort], key, map(1));
    const log = memoryLogger();
    const source = await EtcdShardMap.open({ endpoints: [etcd.hostPort], key, log });
    try {
      // What the sharded client (@tandem/core) takes: checked by the type checker.
      const asSource: CoreShardMapSource = source;
      expect(asSource.current()).toEqual(map(1));
      const seen: ShardMap[] = [];
      const unsubscribe = source.onChange((m) => seen.push(m));

      await writeShardMap([etcd.hostPort], key, map(2, 3));
      await until('the new map', () => source.current().version === 2);
      expect(source.current()).toEqual(map(2, 3));
      expect(seen).toEqual([map(2, 3)]);

      // A bad map (written around writeShardMap's validation) and a stale one: the previous map stays.
      const { Etcd3 } = await import('etcd3');
      const raw = new Etcd3({ hosts: etcd.endpoint });
      try {
        await raw.put(key).value('{"version": 9, "shards": []}');
        await raw.put(key).value(JSON.stringify(map(1, 5)));
        await raw.put(key).value('not json');
        await until('three rejected maps logged', () => log.lines.filter((l) => /shard-map\.(invalid|stale)/.test(l)).length === 3);
      } finally {
        raw.close();
      }
      expect(source.current()).toEqual(map(2, 3));
      expect(seen).toHaveLength(1);

      unsubscribe();
      await writeShardMap([etcd.hostPort], key, map(3));
      await until('map 3', () => source.current().version === 3);
      expect(seen).toHaveLength(1);
    } finally {
      await source.close();
    }
  });

  it('keeps watching across an etcd restart', async () => {
    const key = '/tandem/test/shards-restart';
    await writeShardMap([etcd.hostPort], key, map(1));
    const source = await EtcdShardMap.open({ endpoints: [etcd.hostPort], key });
    try {
      await etcd.kill();
      await etcd.restart();
      await writeShardMap([etcd.hostPort], key, map(4));
      await until('map 4 after the restart', () => source.current().version === 4);
    } finally {
      await source.close();
    }
  });

  it('fails to open with a typed error when the key is absent (unless given an initial map)', async () => {
    const key = '/tandem/test/shards-absent';
    const err = await EtcdShardMap.open({ endpoints: [etcd.hostPort], key }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ShardMapError');
    const source = await EtcdShardMap.open({ endpoints: [etcd.hostPort], key, initial: map(0) });
    try {
      expect(source.current().version).toBe(0);
      await writeShardMap([etcd.hostPort], key, map(1));
      await until('the first map written', () => source.current().version === 1);
    } finally {
      await source.close();
    }
  });

  it('writeShardMap refuses an invalid map without writing it', async () => {
    await expect(writeShardMap([etcd.hostPort], '/tandem/test/x', { version: 1, shards: [] })).rejects.toThrow(ShardMapError);
  });
});
