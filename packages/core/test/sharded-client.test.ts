/**
 * The sharded client: rendezvous routing (spread, stability when a shard is added or removed, the
 * documented hash), map validation, and against real in-memory pairs: every key lands on its shard's
 * pair only, a new map from a source is picked up, a removed shard's client closes only after its
 * in-flight calls settle.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection, Transport } from '@tandem/transport';
import type { Replica } from '../src/api.js';
import { isCoreError } from '../src/errors.js';
import { createReplica } from '../src/replica.js';
import {
  createShardedClient,
  createShardMapSource,
  fnv1a32,
  rendezvousShard,
  type ShardMap,
  ShardMapError,
  validateShardMap,
} from '../src/sharded-client.js';
import * as core from '../src/index.js';
import { TestCluster, until } from './helpers/fault-net.js';
import { FAST, kv, type KvReq, type KvRep, type KvState } from './helpers/setup.js';

const keys = (n: number, prefix = 'key-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const counts = (names: readonly string[], ks: readonly string[]): Map<string, number> => {
  const m = new Map(names.map((n) => [n, 0]));
  for (const k of ks) {
    const s = rendezvousShard(k, names);
    m.set(s, m.get(s)! + 1);
  }
  return m;
};

/** FNV-1a 32 by the book, over TextEncoder's UTF-8 bytes (the reference for the inline encoder). */
function referenceFnv(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

describe('rendezvous hashing', () => {
  it('hashes the UTF-8 bytes of the key with FNV-1a 32 (ASCII, 2-, 3- and 4-byte characters, lone surrogates)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c); // the published FNV-1a 32 test vector
    for (const s of ['foobar', 'é', 'ключ', '鍵/値', 'emoji 🙂 key', '\ud800 lone', 'end \udfff', '{user1}balance'])
      expect(fnv1a32(s), s).toBe(referenceFnv(s));
  });

  it('spreads keys evenly over the shards', () => {
    for (const n of [2, 3, 5, 10]) {
      const names = Array.from({ length: n }, (_, i) => `shard-${i}`);
      const ks = keys(60_000);
      for (const [name, c] of counts(names, ks)) {
        const share = c / ks.length;
        expect(share, `${name} of ${n}`).toBeGreaterThan((1 / n) * 0.9);
        expect(share, `${name} of ${n}`).toBeLessThan((1 / n) * 1.1);
      }
    }
  });

  it('adding a shard moves only the keys the new shard wins (~1/N), never a key between old shards', () => {
    const old = ['a', 'b', 'c'];
    const grown = [...old, 'd'];
    const ks = keys(40_000, 'user/');
    let moved = 0;
    for (const k of ks) {
      const before = rendezvousShard(k, old);
      const after = rendezvousShard(k, grown);
      if (after !== before) {
        expect(after, k).toBe('d');
        moved++;
      }
    }
    expect(moved / ks.length).toBeGreaterThan(0.22);
    expect(moved / ks.length).toBeLessThan(0.28);
    // Removing a shard moves only its own keys; the order of the names does not matter.
    for (const k of ks.slice(0, 5000)) {
      const before = rendezvousShard(k, grown);
      const after = rendezvousShard(k, ['c', 'a', 'b']);
      if (before !== 'd') expect(after, k).toBe(before);
    }
  });
});

describe('shard map validation', () => {
  const pair = (i: number): [string, string] => [`mem://v${i}a`, `mem://v${i}b`];
  const bad: [string, unknown, RegExp][] = [
    ['empty', { version: 1, shards: [] }, /shards: empty/],
    [
      'duplicate names',
      {
        version: 1,
        shards: [
          { name: 's', servers: pair(1) },
          { name: 's', servers: pair(2) },
        ],
      },
      /duplicate shard name "s"/,
    ],
    ['one server', { version: 1, shards: [{ name: 's', servers: ['mem://x'] }] }, /shards\.0\.servers: must be two/],
    ['same server twice', { version: 1, shards: [{ name: 's', servers: ['mem://x', 'mem://x'] }] }, /both replicas at mem:\/\/x/],
    [
      'a replica in two shards',
      {
        version: 1,
        shards: [
          { name: 's', servers: pair(1) },
          { name: 't', servers: [pair(1)[1], 'mem://z'] },
        ],
      },
      /mem:\/\/v1b is already a replica of shard "s"/,
    ],
    ['empty name', { version: 1, shards: [{ name: '', servers: pair(1) }] }, /shards\.0\.name/],
    ['bad version', { version: -1, shards: [{ name: 's', servers: pair(1) }] }, /version: must be a non-negative integer/],
    ['not an object', 'shards.json', /not an object/],
  ];
  it.each(bad)('refuses a map with %s (ShardMapError, every issue listed)', (_what, map, message) => {
    let err: unknown;
    try {
      validateShardMap(map);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShardMapError);
    expect(isCoreError(err, 'ShardMapError')).toBe(true);
    expect((err as Error).message).toMatch(message);
    // createShardedClient refuses it as well, before dialling anything.
    const cluster = new TestCluster();
    expect(() =>
      createShardedClient<KvReq, KvRep>({
        service: kv,
        env: cluster.node('C').env,
        shardKey: (r) => ('key' in r ? r.key : ''),
        map: map as ShardMap,
      }),
    ).toThrow(ShardMapError);
  });

  it('lists every issue of a map at once, and is exported from the package entry', () => {
    const err = (() => {
      try {
        validateShardMap({
          version: 1.5,
          shards: [
            { name: 's', servers: ['x', 'x'] },
            { name: 's', servers: 'y' },
          ],
        });
      } catch (e) {
        return e as ShardMapError;
      }
      throw new Error('no error');
    })();
    expect(err.issues.map((i) => i.path)).toEqual(['version', 'shards.0.servers', 'shards.1.name', 'shards.1.servers']);
    expect(core.ShardMapError).toBe(ShardMapError);
    expect(core.createShardedClient).toBe(createShardedClient);
  });
});

interface Pairs {
  cluster: TestCluster;
  map: ShardMap;
  replicas: Map<string, [Replica<KvState>, Replica<KvState>]>;
  add(name: string): Promise<{ name: string; servers: [string, string] }>;
  stop(): Promise<void>;
}

/** `names.length` replicated pairs of the kv test service on one in-memory network. */
async function startPairs(names: readonly string[]): Promise<Pairs> {
  const cluster = new TestCluster();
  const replicas = new Map<string, [Replica<KvState>, Replica<KvState>]>();
  const add = async (name: string): Promise<{ name: string; servers: [string, string] }> => {
    const servers: [string, string] = [`mem://${name}-a`, `mem://${name}-b`];
    const mk = (i: 0 | 1) =>
      createReplica({
        service: kv,
        env: cluster.node(`${name}-${i === 0 ? 'a' : 'b'}`).env,
        listen: servers[i],
        peer: servers[1 - i]!,
        roleHint: i === 0 ? 'primary' : 'backup',
        nodeId: `${name}-${i}`,
        config: FAST,
      });
    const a = mk(0);
    const b = mk(1);
    replicas.set(name, [a, b]);
    await a.start();
    await b.start();
    await until(() => a.status().role === 'primary', `${name} primary with backup`);
    return { name, servers };
  };
  const shards = [];
  for (const n of names) shards.push(await add(n));
  return {
    cluster,
    map: { version: 1, shards },
    replicas,
    add,
    async stop() {
      await Promise.all([...replicas.values()].flat().map((r) => r.stop()));
    },
  };
}

/** The client node's network, recording every connection it dials. */
function recordingNetwork(net: Transport, dialed: Connection[]): Transport {
  return new Proxy(net, {
    get(target, prop) {
      if (prop === 'dial')
        return async (address: string, options?: Parameters<Transport['dial']>[1]) => {
          const c = await target.dial(address, options);
          dialed.push(c);
          return c;
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const keyOf = (r: KvReq): string => {
  if (r.op === 'fail') throw new TypeError('fail requests have no key');
  return r.key;
};

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

describe('createShardedClient over in-memory pairs', () => {
  it('routes each key to the pair rendezvous hashing names, and only there; exactly-once increments', async () => {
    const pairs = await startPairs(['s1', 's2', 's3']);
    cleanups.push(() => pairs.stop());
    const c = createShardedClient<KvReq, KvRep>({
      service: kv,
      env: pairs.cluster.node('C').env,
      shardKey: keyOf,
      map: pairs.map,
      clientOptions: { config: FAST },
    });
    cleanups.push(() => c.close());
    const ks = keys(60, 'k');
    for (let round = 1; round <= 3; round++) {
      const replies = await Promise.all(ks.map((key) => c.callWithInfo({ op: 'incr', key })));
      for (const [i, r] of replies.entries()) {
        expect(r.reply.value).toBe(String(round));
        expect(r.shard).toBe(rendezvousShard(ks[i]!, ['s1', 's2', 's3']));
      }
    }
    const placed = new Map<string, number>();
    for (const key of ks) {
      const shard = c.shardFor({ op: 'get', key });
      expect(shard).toBe(c.shardForKey(key));
      placed.set(shard, (placed.get(shard) ?? 0) + 1);
      for (const [name, [a]] of pairs.replicas) expect(a.state.get(key), `${key} on ${name}`).toBe(name === shard ? '3' : undefined);
    }
    expect([...placed.keys()].sort()).toEqual(['s1', 's2', 's3']);
  });

  it('refuses a request without a shard key with the shardKey error, and a malformed one with InvalidRequestError', async () => {
    const pairs = await startPairs(['s1']);
    cleanups.push(() => pairs.stop());
    const c = createShardedClient<KvReq, KvRep>({ service: kv, env: pairs.cluster.node('C').env, shardKey: keyOf, map: pairs.map });
    cleanups.push(() => c.close());
    await expect(c.call({ op: 'fail', message: 'x' })).rejects.toThrow(/fail requests have no key/);
    await expect(c.call({ op: 'nope' } as unknown as KvReq)).rejects.toMatchObject({ name: 'InvalidRequestError' });
    await c.close();
    await expect(c.call({ op: 'get', key: 'k' })).rejects.toMatchObject({ name: 'StoppedError' });
    expect(c.shardForKey('k')).toBe('s1'); // routing still answers after close
  });

  it('picks up a new map from its source: a new shard gets keys, a removed one is closed after its in-flight calls settle', async () => {
    const pairs = await startPairs(['s1', 's2', 's3']);
    cleanups.push(() => pairs.stop());
    const source = createShardMapSource(pairs.map);
    const dialed: Connection[] = [];
    const env = pairs.cluster.node('C').env;
    const refused: ShardMapError[] = [];
    const c = createShardedClient<KvReq, KvRep>({
      service: kv,
      env: { ...env, network: recordingNetwork(env.network, dialed) },
      shardKey: keyOf,
      map: source,
      clientOptions: { config: FAST },
      onMapError: (e) => refused.push(e),
    });
    cleanups.push(() => c.close());
    const ks = keys(200, 'm');
    await Promise.all(ks.map((key) => c.call({ op: 'put', key, value: 'v1' })));

    // A call in flight on s3 (both its replicas paused), then a map without s3 and with s4.
    const s3Key = ks.find((k) => c.shardForKey(k) === 's3')!;
    for (const i of ['a', 'b']) pairs.cluster.node(`s3-${i}`).pause();
    const inFlight = c.call({ op: 'put', key: s3Key, value: 'v2' });
    const s4 = await pairs.add('s4');
    const next: ShardMap = { version: 2, shards: [pairs.map.shards[0]!, pairs.map.shards[1]!, s4] };
    source.publish(next);
    expect(c.map).toEqual(next);
    const toS3 = (): Connection[] => dialed.filter((d) => d.remoteAddress.startsWith('mem://s3-'));
    expect(toS3().length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(toS3().some((d) => !d.isClosed)).toBe(true); // still open: its call has not settled
    for (const i of ['a', 'b']) pairs.cluster.node(`s3-${i}`).resume();
    expect((await inFlight).value).toBe('v1');
    await until(() => toS3().every((d) => d.isClosed), 's3 client closed after its call settled');

    // New keys route over s1, s2, s4; keys of s1/s2 stay where they were; s4 serves its share.
    let onS4 = 0;
    for (const key of ks) {
      const now = c.shardForKey(key);
      const before = rendezvousShard(key, ['s1', 's2', 's3']);
      if (before !== 's3' && now !== 's4') expect(now).toBe(before);
      expect(now).not.toBe('s3');
      if (now === 's4') {
        onS4++;
        expect((await c.call({ op: 'put', key, value: 'v2' })).value).toBeNull(); // resharding is out of scope: s4 starts empty
      }
    }
    expect(onS4).toBeGreaterThan(0);
    expect([...pairs.replicas.get('s4')![0].state.keys()].length).toBe(onS4);

    // A stale map (lower version) is ignored; the same version with other shards is refused.
    source.publish(pairs.map);
    expect(c.map).toEqual(next);
    source.publish({ version: 2, shards: [pairs.map.shards[0]!] });
    expect(c.map).toEqual(next);
    expect(refused.map((e) => e.message)).toEqual([expect.stringMatching(/version 2 is already in use/)]);
    source.publish({ version: 3, shards: [] });
    expect(refused).toHaveLength(2);
    expect(c.map).toEqual(next);
  });

  it('each pair fails over on its own: a crashed primary of one shard delays only that shard', async () => {
    const pairs = await startPairs(['s1', 's2']);
    cleanups.push(() => pairs.stop());
    const c = createShardedClient<KvReq, KvRep>({
      service: kv,
      env: pairs.cluster.node('C').env,
      shardKey: keyOf,
      map: pairs.map,
      clientOptions: { config: FAST },
    });
    cleanups.push(() => c.close());
    const ks = keys(40, 'f');
    await Promise.all(ks.map((key) => c.call({ op: 'incr', key })));
    pairs.cluster.node('s1-a').crash();
    const replies = await Promise.all(ks.map((key) => c.callWithInfo({ op: 'incr', key })));
    for (const r of replies) {
      expect(r.reply.value).toBe('2');
      expect(r.epoch).toBe(r.shard === 's1' ? 2 : 1); // s1's backup took over; s2 never changed epoch
    }
  });
});
