/**
 * A sharded client: one service spread over N replicated pairs. Each request is routed by a
 * service-defined shard key to one pair with rendezvous (highest-random-weight) hashing over the shards'
 * names; each pair is reached through an ordinary `createClient` and fails over on its own. The shard map
 * is given once or comes from a source that announces new maps (e.g. one watched in etcd): new shards get
 * a client, removed shards' clients are closed once their in-flight calls settle. Moving existing keys
 * between pairs (resharding) is not done here: a key whose shard changes starts empty on its new pair
 * (docs/SHARDING.md).
 */
import type { CallResult, Client, ClientOptions } from './api.js';
import { createClient } from './client.js';
import type { Env } from './env.js';
import { InvalidRequestError, StoppedError } from './errors.js';

/** One replicated pair: a name (what keys hash against: keep it when servers move) and its two replicas. */
export interface ShardSpec {
  /** The shard's name (unique in the map). */
  name: string;
  /** The shard's replica pair: its two addresses. */
  servers: readonly [string, string];
}

/** Every shard of a service. A client applies a new map only when its version is higher. */
export interface ShardMap {
  /** The map's version: a map replaces the current one only when its version is higher. */
  version: number;
  /** The shards; a key goes to the one whose name scores highest for it (rendezvous hashing). */
  shards: readonly ShardSpec[];
}

/** Where maps come from: the current one now, new ones as they are published (e.g. watched in etcd). */
export interface ShardMapSource {
  /** The map in force now. */
  current(): ShardMap;
  /** Call `cb` with every new map; returns the unsubscribe function. */
  onChange(cb: (map: ShardMap) => void): () => void;
}

/** A shard map that is not usable; `issues` lists every problem (like ConfigError). */
export class ShardMapError extends Error {
  static override readonly name = 'ShardMapError';
  override readonly name = 'ShardMapError';
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: readonly { path: string; message: string }[]) {
    super(`invalid shard map: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

/** Options of createShardedClient: the service, the Env, the shard key of a request, the map (or its source), client settings. */
export interface ShardedClientOptions<Req, Rep> {
  /** The service's schemas and name, as for createClient. */
  service: ClientOptions<Req, Rep>['service'];
  /** Clock, timers, randomness, network and logger. */
  env: Env;
  /** The request's shard key (e.g. its key). Throw to refuse a request that has none; the call rejects
   * with that error (an InvalidRequestError when the request fails the service's schema). */
  shardKey: (request: Req) => string;
  /** The shard map, or a source that publishes new ones (e.g. EtcdShardMap). */
  map: ShardMap | ShardMapSource;
  /** Options for every pair's client. A clientId is suffixed per shard client (`id.shard.n`). */
  clientOptions?: Pick<ClientOptions<Req, Rep>, 'config' | 'clientId' | 'credentials'>;
  /** A map from the source was refused (invalid, or the same version with other shards); the old map stays. */
  onMapError?: (error: ShardMapError) => void;
}

/** A client of a sharded service: routes each request by its shard key to its shard's pair, following map changes. */
export interface ShardedClient<Req, Rep> {
  /** The map requests are routed with now. */
  readonly map: ShardMap;
  /** Route one request to its shard's pair (exactly-once there, as `Client.call`). */
  call(request: Req): Promise<Rep>;
  /** Like `call`, with the sequence number, epoch and shard of the reply. */
  callWithInfo(request: Req): Promise<CallResult<Rep> & { shard: string }>;
  /** The name of the shard `request` goes to (throws what `shardKey` throws). */
  shardFor(request: Req): string;
  /** The shard a shard key goes to. */
  shardForKey(key: string): string;
  /** Wait until every pair's client has handed its forwards to its backup. */
  drain(): Promise<void>;
  /** Close every pair's client (pending calls reject with StoppedError) and stop watching the source. */
  close(): Promise<void>;
}

const isSource = (m: ShardMap | ShardMapSource): m is ShardMapSource =>
  typeof (m as ShardMapSource).current === 'function' && typeof (m as ShardMapSource).onChange === 'function';

/** Check a shard map (also one parsed from JSON); returns a clean copy, or throws ShardMapError with every issue. */
export function validateShardMap(map: unknown): ShardMap {
  const issues: { path: string; message: string }[] = [];
  const m = map as { version?: unknown; shards?: unknown } | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ShardMapError([{ path: '(root)', message: 'not an object' }]);
  if (typeof m.version !== 'number' || !Number.isSafeInteger(m.version) || m.version < 0)
    issues.push({ path: 'version', message: 'must be a non-negative integer' });
  if (!Array.isArray(m.shards)) issues.push({ path: 'shards', message: 'must be an array' });
  else if (m.shards.length === 0) issues.push({ path: 'shards', message: 'empty: a map needs at least one shard' });
  else {
    const names = new Set<string>();
    const addresses = new Map<string, string>();
    for (const [i, s] of (m.shards as unknown[]).entries()) {
      const shard = s as { name?: unknown; servers?: unknown } | null;
      if (typeof shard !== 'object' || shard === null) {
        issues.push({ path: `shards.${i}`, message: 'not an object' });
        continue;
      }
      const name = shard.name;
      if (typeof name !== 'string' || name.length === 0) issues.push({ path: `shards.${i}.name`, message: 'must be a non-empty string' });
      else if (names.has(name)) issues.push({ path: `shards.${i}.name`, message: `duplicate shard name "${name}"` });
      else names.add(name);
      const servers = shard.servers;
      if (!Array.isArray(servers) || servers.length !== 2 || !servers.every((a) => typeof a === 'string' && a.length > 0)) {
        issues.push({ path: `shards.${i}.servers`, message: 'must be two non-empty addresses [primary, backup]' });
        continue;
      }
      if (servers[0] === servers[1]) issues.push({ path: `shards.${i}.servers`, message: `both replicas at ${servers[0]}` });
      for (const a of new Set(servers as string[])) {
        const other = addresses.get(a);
        if (other !== undefined) issues.push({ path: `shards.${i}.servers`, message: `${a} is already a replica of shard "${other}"` });
        else addresses.set(a, typeof name === 'string' ? name : `#${i}`);
      }
    }
  }
  if (issues.length > 0) throw new ShardMapError(issues);
  // A clean copy: fields beyond the map's own (a JSON file's extras) are not kept.
  const valid = map as ShardMap;
  return { version: valid.version, shards: valid.shards.map((s) => ({ name: s.name, servers: [s.servers[0], s.servers[1]] })) };
}

/** FNV-1a 32 over the UTF-8 bytes of `s` (encoded inline: no allocation). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo < 0xe000) {
        i++;
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        h = Math.imul(h ^ (0xf0 | (c >>> 18)), 0x01000193);
        h = Math.imul(h ^ (0x80 | ((c >>> 12) & 0x3f)), 0x01000193);
        h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), 0x01000193);
        h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
        continue;
      }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate encodes as U+FFFD, as TextEncoder does
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >>> 6)), 0x01000193);
    } else {
      h = Math.imul(h ^ (0xe0 | (c >>> 12)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), 0x01000193);
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A shard's routing weight seed: fmix32(FNV-1a 32 of its name). */
export const shardSeed = (name: string): number => fmix32(fnv1a32(name));

/** The rendezvous score of `keyHash` (fnv1a32 of the key) on a shard with seed `seed`. */
export const rendezvousScore = (keyHash: number, seed: number): number => fmix32(keyHash ^ seed);

/**
 * Rendezvous (HRW) choice: the shard with the highest fmix32(fnv1a32(key) ^ shardSeed(name)); on a tie
 * the smaller name. Deterministic across processes; adding a shard moves only the keys it now wins.
 */
export function rendezvousShard(key: string, names: readonly string[]): string {
  return pick(
    fnv1a32(key),
    names.map((name) => ({ name, seed: shardSeed(name) })),
  );
}

function pick(keyHash: number, shards: readonly { name: string; seed: number }[]): string {
  let best = shards[0]!;
  let bestScore = rendezvousScore(keyHash, best.seed);
  for (let i = 1; i < shards.length; i++) {
    const s = shards[i]!;
    const score = rendezvousScore(keyHash, s.seed);
    if (score > bestScore || (score === bestScore && s.name < best.name)) {
      best = s;
      bestScore = score;
    }
  }
  return best.name;
}

/** A map source to publish maps to by hand (configuration reloads, tests). */
export function createShardMapSource(initial: ShardMap): ShardMapSource & {
  /** Make `map` the current map and tell every subscriber. */
  publish(map: ShardMap): void;
} {
  let current = initial;
  const listeners = new Set<(m: ShardMap) => void>();
  return {
    current: () => current,
    onChange(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    publish(map) {
      current = map;
      for (const cb of [...listeners]) cb(map);
    },
  };
}

/** A client that routes requests across the pairs of a shard map. */
export function createShardedClient<Req, Rep>(options: ShardedClientOptions<Req, Rep>): ShardedClient<Req, Rep> {
  return new Sharded(options);
}

interface PairClient<Req, Rep> {
  spec: ShardSpec;
  seed: number;
  client: Client<Req, Rep>;
  inFlight: number;
  retired: boolean;
}

const sameServers = (a: ShardSpec, b: ShardSpec): boolean => a.servers[0] === b.servers[0] && a.servers[1] === b.servers[1];

class Sharded<Req, Rep> implements ShardedClient<Req, Rep> {
  readonly #opts: ShardedClientOptions<Req, Rep>;
  #map: ShardMap;
  /** The current shards, in map order (routing reads this array only). */
  #routes: PairClient<Req, Rep>[] = [];
  readonly #closing = new Set<Promise<void>>();
  readonly #unsubscribe: (() => void) | undefined;
  #created = 0;
  #closed = false;

  constructor(options: ShardedClientOptions<Req, Rep>) {
    this.#opts = options;
    const source = isSource(options.map) ? options.map : undefined;
    this.#map = validateShardMap(source ? source.current() : options.map);
    this.#install(this.#map);
    this.#unsubscribe = source?.onChange((m) => this.#onMap(m));
  }

  get map(): ShardMap {
    return this.#map;
  }

  shardForKey(key: string): string {
    return this.#routeKey(key).spec.name;
  }

  shardFor(request: Req): string {
    return this.#route(request).spec.name;
  }

  call(request: Req): Promise<Rep> {
    return this.#send(request, (c) => c.call(request));
  }

  callWithInfo(request: Req): Promise<CallResult<Rep> & { shard: string }> {
    return this.#send(request, (c, shard) => c.callWithInfo(request).then((r) => ({ ...r, shard })));
  }

  async drain(): Promise<void> {
    await Promise.all(this.#routes.map((r) => r.client.drain()));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    // The routes stay: shardFor() still answers after close (calls are refused above).
    await Promise.all([...this.#routes.map((r) => r.client.close()), ...this.#closing]);
  }

  #route(request: Req): PairClient<Req, Rep> {
    const key = this.#opts.shardKey(request);
    if (typeof key !== 'string') throw new InvalidRequestError(`shardKey returned ${typeof key}, not a string`);
    return this.#routeKey(key);
  }

  /** pick() over the live routes, inlined: this runs on every call. */
  #routeKey(key: string): PairClient<Req, Rep> {
    const keyHash = fnv1a32(key);
    const routes = this.#routes;
    let best = routes[0]!;
    let bestScore = rendezvousScore(keyHash, best.seed);
    for (let i = 1; i < routes.length; i++) {
      const r = routes[i]!;
      const score = rendezvousScore(keyHash, r.seed);
      if (score > bestScore || (score === bestScore && r.spec.name < best.spec.name)) {
        best = r;
        bestScore = score;
      }
    }
    return best;
  }

  #send<T>(request: Req, fn: (c: Client<Req, Rep>, shard: string) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StoppedError('sharded client closed'));
    let target: PairClient<Req, Rep>;
    try {
      target = this.#route(request);
    } catch (err) {
      const check = this.#opts.service.request.safeParse(request);
      return Promise.reject(check.success ? err : new InvalidRequestError(check.error.message));
    }
    target.inFlight++;
    const p = fn(target.client, target.spec.name);
    const settled = (): void => {
      target.inFlight--;
      if (target.retired && target.inFlight === 0) this.#retire(target);
    };
    p.then(settled, settled);
    return p;
  }

  #newPair(spec: ShardSpec): PairClient<Req, Rep> {
    const co = this.#opts.clientOptions ?? {};
    const n = ++this.#created;
    const client = createClient<Req, Rep>({
      service: this.#opts.service,
      env: this.#opts.env,
      servers: [spec.servers[0], spec.servers[1]],
      ...(co.config !== undefined ? { config: co.config } : {}),
      ...(co.credentials !== undefined ? { credentials: co.credentials } : {}),
      // A shard client must never reuse another's (clientId, requestId) pairs on the same replicas.
      ...(co.clientId !== undefined ? { clientId: `${co.clientId}.${spec.name}.${n}` } : {}),
    });
    return {
      spec: { name: spec.name, servers: [spec.servers[0], spec.servers[1]] },
      seed: shardSeed(spec.name),
      client,
      inFlight: 0,
      retired: false,
    };
  }

  #install(map: ShardMap): void {
    const old = new Map(this.#routes.map((r) => [r.spec.name, r]));
    const next: PairClient<Req, Rep>[] = [];
    for (const spec of map.shards) {
      const had = old.get(spec.name);
      if (had !== undefined && sameServers(had.spec, spec)) {
        next.push(had);
        old.delete(spec.name);
      } else next.push(this.#newPair(spec));
    }
    this.#routes = next;
    for (const gone of old.values()) {
      gone.retired = true;
      if (gone.inFlight === 0) this.#retire(gone);
    }
  }

  /** Close a removed shard's client once nothing is in flight on it (its forwards get a bounded chance). */
  #retire(r: PairClient<Req, Rep>): void {
    const done = (async () => {
      await new Promise<void>((resolve) => {
        const t = this.#opts.env.setTimer(1000, resolve);
        r.client.drain().then(
          () => {
            t.cancel();
            resolve();
          },
          () => resolve(),
        );
      });
      await r.client.close();
    })();
    this.#closing.add(done);
    void done.finally(() => this.#closing.delete(done));
  }

  #onMap(candidate: ShardMap): void {
    if (this.#closed) return;
    const log = this.#opts.env.logger;
    let map: ShardMap;
    try {
      map = validateShardMap(candidate);
    } catch (err) {
      log.log('warn', 'shard-map-refused', { error: (err as Error).message });
      this.#opts.onMapError?.(err as ShardMapError);
      return;
    }
    if (map.version < this.#map.version) {
      log.log('info', 'shard-map-stale', { version: map.version, current: this.#map.version });
      return;
    }
    if (map.version === this.#map.version) {
      if (sameShards(map, this.#map)) return;
      const err = new ShardMapError([
        { path: 'version', message: `version ${map.version} is already in use with other shards: publish a higher version` },
      ]);
      log.log('warn', 'shard-map-refused', { error: err.message });
      this.#opts.onMapError?.(err);
      return;
    }
    this.#map = map;
    this.#install(map);
    log.log('info', 'shard-map', { version: map.version, shards: map.shards.map((s) => s.name) });
  }
}

function sameShards(a: ShardMap, b: ShardMap): boolean {
  if (a.shards.length !== b.shards.length) return false;
  return a.shards.every((s, i) => {
    const t = b.shards[i]!;
    return s.name === t.name && sameServers(s, t);
  });
}
