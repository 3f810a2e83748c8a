/** Test helpers: a real-time Env over a network, a kv service on SnapshotMap, and connection wrappers for faults. */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Env, Replica, ReplicationConfig, Role } from '@tandem/core';
import type { Connection, Transport } from '@tandem/transport';
import { createMemoryNetwork } from '@tandem/transport';
import { z } from 'zod';
import { mapSnapshotSupport, SnapshotMap, type HostedService, type StateMigration } from '../src/index.js';

/** Replication timings for tests on one machine: fast flushes, failure detection in ~100 ms. */
export const FAST_CONFIG: Partial<ReplicationConfig> = {
  flushIntervalMs: 10,
  flushMaxEntries: 16,
  heartbeatTimeoutMs: 80,
  ackTimeoutMs: 20,
  maxRetransmits: 2,
  requestTimeoutMs: 60,
  callDeadlineMs: 8000,
  forwardDelayMs: 1,
};

export function testEnv(network: Transport = createMemoryNetwork()): Env {
  return {
    now: () => performance.now(),
    wallClock: () => Date.now(),
    setTimer(ms, fn) {
      const t = setTimeout(fn, Math.max(0, ms));
      return { cancel: () => clearTimeout(t) };
    },
    random: () => Math.random(),
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    network,
    logger: { log() {} },
  };
}

export const kvRequest = z.union([
  z.object({ op: z.literal('set'), key: z.string(), value: z.string() }),
  z.object({ op: z.literal('del'), key: z.string() }),
  z.object({ op: z.literal('get'), key: z.string() }),
]);
export type KvRequest = z.infer<typeof kvRequest>;

/** The kv requests on any string map (SnapshotMap, SlabMap). */
export function applyKv(
  state: { set(k: string, v: string): unknown; delete(k: string): boolean; get(k: string): string | undefined },
  req: KvRequest,
): string | null {
  if (req.op === 'set') {
    state.set(req.key, req.value);
    return 'OK';
  }
  if (req.op === 'del') return state.delete(req.key) ? 'OK' : null;
  return state.get(req.key) ?? null;
}

/** Version 1: values are strings. */
export function kvServiceV1(): HostedService<SnapshotMap<string>, KvRequest, string | null> & { request: typeof kvRequest } {
  return {
    name: 'kv',
    version: 1,
    request: kvRequest,
    initialState: () => new SnapshotMap<string>(),
    apply: applyKv,
    ...mapSnapshotSupport<string>(),
  };
}

/** Version 2: values are { v, len } records; migrates v1 strings per record and per snapshot. */
export interface V2Value {
  v: string;
  len: number;
}
export const v1ToV2: StateMigration = {
  from: 1,
  // SnapshotMap records are (key, value) pairs: record() gets and returns [key, value].
  record: (r) => {
    const [k, v] = r as [string, string];
    return [k, { v, len: v.length }];
  },
  snapshot: (s) => (s as [string, string][]).map(([k, v]) => [k, { v, len: v.length }]),
};
export function kvServiceV2(migrations: StateMigration[] = [v1ToV2]): HostedService<SnapshotMap<V2Value>, KvRequest, string | null> {
  // The digest covers the logical content (the string), so it equals version 1's for the same data.
  const mapOptions = { digestValue: (x: V2Value) => x.v };
  return {
    name: 'kv',
    version: 2,
    migrations,
    initialState: () => new SnapshotMap<V2Value>(mapOptions),
    apply(state, req) {
      if (req.op === 'set') {
        state.set(req.key, { v: req.value, len: req.value.length });
        return 'OK';
      }
      if (req.op === 'del') return state.delete(req.key) ? 'OK' : null;
      return state.get(req.key)?.v ?? null;
    },
    ...mapSnapshotSupport<V2Value>(mapOptions),
  };
}

/** Fill a host-like object with n keys. */
export function fill(execute: (r: KvRequest) => unknown, n: number, valueSize = 32): void {
  const pad = 'x'.repeat(Math.max(0, valueSize - 8));
  for (let i = 0; i < n; i++) execute({ op: 'set', key: `key:${i}`, value: pad + String(i).padStart(8, '0') });
}

/**
 * A connection whose incoming messages pass through `transform` (return undefined to keep a message
 * as is). Used to corrupt chunks on their way to the joiner.
 */
export function transformIncoming(conn: Connection, transform: (msg: Uint8Array, index: number) => Uint8Array | undefined): Connection {
  let index = 0;
  const proxy = Object.create(conn) as Connection;
  Object.defineProperty(proxy, Symbol.asyncIterator, {
    value: () => {
      const it = conn[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          const r = await it.next();
          if (r.done) return r;
          const out = transform(r.value, index++);
          return { done: false, value: out ?? r.value };
        },
        return: it.return?.bind(it),
      };
    },
  });
  for (const k of ['send', 'close', 'abort'] as const)
    Object.defineProperty(proxy, k, { value: (conn[k] as (...a: unknown[]) => unknown).bind(conn) });
  for (const k of ['id', 'localAddress', 'remoteAddress', 'maxMessageSize', 'isClosed', 'closed'] as const) {
    Object.defineProperty(proxy, k, { get: () => conn[k] });
  }
  return proxy;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for a replica to reach one of `roles`, by its event (status() computes a digest: polling it would load the replica). */
export function waitRole(r: Replica<unknown>, roles: Role[], ms = 15_000): Promise<void> {
  if (roles.includes(r.status().role)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`role ${r.status().role}, expected ${roles.join('|')}`));
    }, ms);
    const off = r.on((e) => {
      if (e.type === 'role' && roles.includes(e.role)) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/**
 * `count` random writes to a map (SnapshotMap or SlabMap): 40 % overwrite/insert a key of `keySpace`,
 * 30 % delete one, 30 % insert a fresh key — what snapshot tests interleave with reading a cursor.
 */
export function randomWrites(
  map: { set(k: string, v: string): unknown; delete(k: string): boolean },
  rnd: () => number,
  count: number,
  keySpace: number,
): void {
  for (let j = 0; j < count; j++) {
    const k = `k${Math.floor(rnd() * keySpace)}`;
    const r = rnd();
    if (r < 0.4) map.set(k, `new${j}`);
    else if (r < 0.7) map.delete(k);
    else map.set(`fresh${Math.floor(rnd() * 1e9)}`, 'f');
  }
}
