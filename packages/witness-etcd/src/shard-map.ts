// A shard map kept in one etcd key (JSON), read at open and watched: running clients pick up a new map
// without restarting. A sharded client accepts anything shaped `{ current(): ShardMap; onChange(cb) }`.
import { ShardMapError, validateShardMap, type Logger, type ShardMap, type ShardMapSource } from '@tandem/core';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { createEtcdClient, DEFAULT_CALL_TIMEOUT_MS } from './client.js';
import { WitnessUnavailableError } from './errors.js';
import type { EtcdTlsOptions } from './url.js';

/** The shard map, its validation and its error are @tandem/core's (the sharded client's): one shape. */
export type { ShardMap, ShardMapSource, ShardSpec as Shard } from '@tandem/core';
export { validateShardMap, ShardMapError } from '@tandem/core';

/** Parses and validates a shard map from JSON text (throws `ShardMapError`). */
export function parseShardMap(text: string): ShardMap {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ShardMapError([{ path: '(root)', message: `not JSON (${(err as Error).message})` }]);
  }
  return validateShardMap(value);
}

/** Options of EtcdShardMap: etcd endpoints, the key holding the map, an initial map, TLS, dial timeout, logger. */
export interface EtcdShardMapOptions {
  /** etcd client endpoints, `host:port`. */
  endpoints: string[];
  /** The etcd key holding the map's JSON, e.g. `/tandem/kv/shards`. */
  key: string;
  /** Used when the key does not exist yet (otherwise `open` fails with `ShardMapError`). */
  initial?: ShardMap;
  /** TLS to etcd. */
  tls?: EtcdTlsOptions;
  /** Deadline of the initial read (default 1000 ms). */
  dialTimeoutMs?: number;
  /** Where new, invalid and stale maps and watch trouble are logged (the core's Logger shape). */
  log?: Logger;
}

/** The shard map in an etcd key, watched. Open with `EtcdShardMap.open`; `close()` when done. */
export class EtcdShardMap implements ShardMapSource {
  /** Reads the map (or takes `initial` when the key is absent) and starts watching the key. */
  static async open(options: EtcdShardMapOptions): Promise<EtcdShardMap> {
    const client = createEtcdClient({
      endpoints: options.endpoints,
      callTimeoutMs: options.dialTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      ...(options.tls && { tls: options.tls }),
    });
    try {
      let res: Awaited<ReturnType<Etcd3['kv']['range']>>;
      try {
        res = await client.kv.range({ key: Buffer.from(options.key) });
      } catch (err) {
        throw new WitnessUnavailableError(`etcd unreachable (${options.endpoints.join(',')}): ${(err as Error).message}`, { cause: err });
      }
      const kv = res.kvs[0];
      let map: ShardMap;
      if (kv) map = parseShardMap(kv.value.toString('utf8'));
      else if (options.initial) map = validateShardMap(options.initial);
      else throw new ShardMapError([{ path: options.key, message: 'no shard map in etcd (write one with writeShardMap)' }]);
      const watcher = await client
        .watch()
        .key(options.key)
        .startRevision(String(Number(res.header.revision) + 1))
        .create();
      return new EtcdShardMap(client, watcher, options, map);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** The etcd key watched. */
  readonly key: string;
  #map: ShardMap;
  readonly #listeners = new Set<(map: ShardMap) => void>();
  readonly #client: Etcd3;
  readonly #watcher: Watcher;
  readonly #log: Logger | undefined;
  #closed = false;

  private constructor(client: Etcd3, watcher: Watcher, options: EtcdShardMapOptions, map: ShardMap) {
    this.#client = client;
    this.#watcher = watcher;
    this.key = options.key;
    this.#log = options.log;
    this.#map = map;
    watcher.on('put', (kv: IKeyValue) => this.#onPut(kv));
    watcher.on('delete', () => this.#log?.log('warn', 'shard-map.deleted', { key: this.key, keeping: this.#map.version }));
    watcher.on('disconnected', (err: Error) => this.#log?.log('warn', 'shard-map.watch-lost', { key: this.key, error: err.message }));
    watcher.on('connected', () => this.#log?.log('debug', 'shard-map.watching', { key: this.key }));
    watcher.on('error', (err: Error) => this.#log?.log('warn', 'shard-map.watch-error', { key: this.key, error: err.message }));
  }

  /** The newest valid map seen. */
  current(): ShardMap {
    return this.#map;
  }

  /** Calls `cb` with every newer valid map; returns the unsubscribe function. */
  onChange(cb: (map: ShardMap) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Stops watching and closes the etcd client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#watcher.cancel().catch(() => undefined);
    this.#client.close();
  }

  #onPut(kv: IKeyValue): void {
    if (this.#closed) return;
    let map: ShardMap;
    try {
      map = parseShardMap(kv.value.toString('utf8'));
    } catch (err) {
      this.#log?.log('error', 'shard-map.invalid', { key: this.key, error: (err as Error).message, keeping: this.#map.version });
      return;
    }
    if (map.version <= this.#map.version) {
      this.#log?.log('warn', 'shard-map.stale', { key: this.key, version: map.version, keeping: this.#map.version });
      return;
    }
    this.#map = map;
    this.#log?.log('info', 'shard-map.changed', { key: this.key, version: map.version, shards: map.shards.length });
    for (const cb of [...this.#listeners]) {
      try {
        cb(map);
      } catch (err) {
        this.#log?.log('error', 'shard-map.listener-failed', { key: this.key, error: (err as Error).message });
      }
    }
  }
}

/** Validates `map` and writes it to `key` (for operators and tests). Resolves with etcd's revision of the write. */
export async function writeShardMap(
  endpoints: string[],
  key: string,
  map: ShardMap,
  options: { tls?: EtcdTlsOptions; dialTimeoutMs?: number } = {},
): Promise<number> {
  const clean = validateShardMap(map);
  const client = createEtcdClient({
    endpoints,
    callTimeoutMs: options.dialTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
    ...(options.tls && { tls: options.tls }),
  });
  try {
    const res = await client.kv.put({ key: Buffer.from(key), value: Buffer.from(JSON.stringify(clean)) });
    return Number(res.header.revision);
  } catch (err) {
    throw new WitnessUnavailableError(`etcd unreachable (${endpoints.join(',')}): ${(err as Error).message}`, { cause: err });
  } finally {
    client.close();
  }
}
