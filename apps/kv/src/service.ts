/**
 * The kv service: a deterministic state machine (key-value map + lock/lease arbiter) defined only on
 * the public API of @tandem/core. Time comes from ctx.time (fixed by the primary and recorded), so
 * lease expiry replays identically on the backup.
 */
import { defineService, valueDigest, type ApplyContext, type ServiceDefinition } from '@tandem/core';
import type { StateMigration } from '@tandem/state-transfer';
import { DEFAULT_SCAN_LIMIT, kvReplySchema, kvRequestSchema, type Fence, type KvReply, type KvRequest } from './schema.js';

/** The kv service's name, as replicas and clients check it. */
export const KV_SERVICE_NAME = 'tandem-kv';

/** One lock grant. `token` is the fencing token: strictly larger than every token granted before. */
export interface Lease {
  owner: string;
  token: number;
  expiresAt: number;
}

/** The lock part of the state, common to every state version. */
export interface LockState {
  locks: Map<string, Lease>;
  /** The last fencing token handed out (tokens are global, so they also order grants across locks). */
  lastToken: number;
}

/** State version 1: values stored as plain strings. */
export interface KvState extends LockState {
  data: Map<string, string>;
}

/** How `apply` reads and writes the values of one state version (replies never depend on it). */
interface ValueStore<D> {
  get(data: D, key: string): string | undefined;
  set(data: D, key: string, value: string, time: number): void;
  delete(data: D, key: string): boolean;
  keys(data: D): Iterable<string>;
}

const plainStore: ValueStore<Map<string, string>> = {
  get: (d, k) => d.get(k),
  set: (d, k, v) => void d.set(k, v),
  delete: (d, k) => d.delete(k),
  keys: (d) => d.keys(),
};

/** A service definition with the state migrations `versionedStateSync` uses on a joining replica. */
export type KvServiceDefinition<State> = ServiceDefinition<State, KvRequest, KvReply> & { migrations: StateMigration[] };

function withMigrations<S>(migrations: StateMigration[], definition: ServiceDefinition<S, KvRequest, KvReply>): KvServiceDefinition<S> {
  return Object.assign(defineService(definition), { migrations });
}

interface KvSnapshot {
  data: [string, string][];
  locks: [string, Lease][];
  lastToken: number;
}

/** A fenced write whose token is not the current holder's (the lease expired or was taken over). */
export class FencingError extends Error {
  static override readonly name = 'FencingError';
  override readonly name = 'FencingError';
}
/** renew/release with a token that no longer holds the lock. */
export class LockLostError extends Error {
  static override readonly name = 'LockLostError';
  override readonly name = 'LockLostError';
}
/** incr on a value that is not an integer. */
export class NotAnIntegerError extends Error {
  static override readonly name = 'NotAnIntegerError';
  override readonly name = 'NotAnIntegerError';
}

/** Expired leases removed per lock operation (bounds the work of one apply). */
const SWEEP_PER_OP = 16;

function liveLease(state: LockState, name: string, now: number): Lease | undefined {
  const lease = state.locks.get(name);
  if (lease === undefined) return undefined;
  if (lease.expiresAt <= now) {
    state.locks.delete(name);
    return undefined;
  }
  return lease;
}

function sweepExpired(state: LockState, now: number): void {
  let seen = 0;
  for (const [name, lease] of state.locks) {
    if (seen++ >= SWEEP_PER_OP) break;
    if (lease.expiresAt <= now) state.locks.delete(name);
  }
}

function checkFence(state: LockState, fence: Fence | undefined, now: number): void {
  if (fence === undefined) return;
  const lease = liveLease(state, fence.lock, now);
  if (lease === undefined || lease.token !== fence.token) {
    throw new FencingError(
      `lock "${fence.lock}" is not held with token ${fence.token}` + (lease ? ` (current token ${lease.token})` : ' (not held)'),
    );
  }
}

/** Apply one request to the state (exported for direct unit tests; the replicas call it through the service). */
export function applyKv(state: KvState, req: KvRequest, ctx: Pick<ApplyContext, 'time' | 'clientId'>): KvReply {
  return applyWith(state, plainStore, req, ctx);
}

function applyWith<D>(
  state: LockState & { data: D },
  store: ValueStore<D>,
  req: KvRequest,
  ctx: Pick<ApplyContext, 'time' | 'clientId'>,
): KvReply {
  const now = ctx.time;
  const data = state.data;
  switch (req.op) {
    case 'get':
      return { kind: 'value', key: req.key, value: store.get(data, req.key) ?? null };
    case 'set':
      checkFence(state, req.fence, now);
      store.set(data, req.key, req.value, now);
      return { kind: 'value', key: req.key, value: req.value };
    case 'append': {
      checkFence(state, req.fence, now);
      const v = (store.get(data, req.key) ?? '') + req.value;
      store.set(data, req.key, v, now);
      return { kind: 'value', key: req.key, value: v };
    }
    case 'delete': {
      checkFence(state, req.fence, now);
      return { kind: 'deleted', key: req.key, existed: store.delete(data, req.key) };
    }
    case 'cas': {
      checkFence(state, req.fence, now);
      const current = store.get(data, req.key) ?? null;
      if (current !== req.expected) return { kind: 'cas', key: req.key, ok: false, value: current };
      store.set(data, req.key, req.value, now);
      return { kind: 'cas', key: req.key, ok: true, value: req.value };
    }
    case 'incr': {
      const current = store.get(data, req.key);
      const n = current === undefined ? 0 : Number(current);
      if (!Number.isSafeInteger(n) || (current !== undefined && !/^-?\d+$/.test(current))) {
        throw new NotAnIntegerError(`value of "${req.key}" is not an integer`);
      }
      const next = String(n + (req.by ?? 1));
      store.set(data, req.key, next, now);
      return { kind: 'value', key: req.key, value: next };
    }
    case 'scan': {
      const limit = req.limit ?? DEFAULT_SCAN_LIMIT;
      const keys: string[] = [];
      for (const k of store.keys(data)) {
        if (k.startsWith(req.prefix) && (req.after === undefined || k > req.after)) keys.push(k);
      }
      keys.sort();
      const page = keys.slice(0, limit);
      return { kind: 'scan', entries: page.map((k) => [k, store.get(data, k)!] as [string, string]), more: keys.length > limit };
    }
    case 'acquire': {
      sweepExpired(state, now);
      const owner = req.owner ?? ctx.clientId;
      const lease = liveLease(state, req.name, now);
      if (lease !== undefined && lease.owner !== owner) return { kind: 'held', name: req.name, owner: lease.owner, until: lease.expiresAt };
      if (lease !== undefined) {
        // Re-acquire by the holder: same grant (same fencing token), lease extended.
        lease.expiresAt = now + req.ttlMs;
        return { kind: 'granted', name: req.name, token: lease.token, owner, expiresAt: lease.expiresAt };
      }
      const granted: Lease = { owner, token: ++state.lastToken, expiresAt: now + req.ttlMs };
      state.locks.set(req.name, granted);
      return { kind: 'granted', name: req.name, token: granted.token, owner, expiresAt: granted.expiresAt };
    }
    case 'renew': {
      const lease = liveLease(state, req.name, now);
      if (lease === undefined || lease.token !== req.token)
        throw new LockLostError(`lock "${req.name}" is no longer held with token ${req.token}`);
      lease.expiresAt = now + req.ttlMs;
      return { kind: 'renewed', name: req.name, token: lease.token, expiresAt: lease.expiresAt };
    }
    case 'release': {
      const lease = liveLease(state, req.name, now);
      if (lease === undefined || lease.token !== req.token) return { kind: 'released', name: req.name, released: false };
      state.locks.delete(req.name);
      return { kind: 'released', name: req.name, released: true };
    }
  }
}

/**
 * The state digest of every version: the logical content (each key's string value, in the map's order,
 * the leases and the token counter), not the stored format — so a version-2 replica that migrated a
 * version-1 state verifies equal to the version-1 primary it streamed it from.
 */
function logicalDigest<V>(state: LockState & { data: Map<string, V> }, text: (v: V) => string): string {
  const data: string[] = [];
  for (const [k, v] of state.data) data.push(k, text(v));
  const locks: (string | number)[] = [];
  for (const [n, l] of state.locks) locks.push(n, l.owner, l.token, l.expiresAt);
  return valueDigest([data, locks, state.lastToken]);
}

/** An empty kv state: no data, no locks, no token granted yet. */
export function initialKvState(): KvState {
  return { data: new Map(), locks: new Map(), lastToken: 0 };
}

/** The kv service definition (pass it to createReplica / createClient). */
export const kvService: KvServiceDefinition<KvState> = withMigrations([], {
  name: KV_SERVICE_NAME,
  version: 1,
  request: kvRequestSchema,
  reply: kvReplySchema,
  initialState: initialKvState,
  apply: applyKv,
  digest: (state) => logicalDigest(state, (v) => v),
  snapshot: (state): KvSnapshot => ({
    data: [...state.data],
    locks: [...state.locks].map(([n, l]) => [n, { ...l }] as [string, Lease]),
    lastToken: state.lastToken,
  }),
  restore(snapshot) {
    const s = snapshot as KvSnapshot;
    if (typeof s !== 'object' || s === null || !Array.isArray(s.data) || !Array.isArray(s.locks) || typeof s.lastToken !== 'number') {
      throw new TypeError('not a tandem-kv snapshot');
    }
    return { data: new Map(s.data), locks: new Map(s.locks.map(([n, l]) => [n, { ...l }])), lastToken: s.lastToken };
  },
});

// ------------------------------------------------------------------ state version 2

/** A stored value in state version 2: the value and the `ctx.time` of its last write. */
export interface StoredValue {
  v: string;
  /** ctx.time of the write that stored it (0 for values migrated from version 1). */
  t: number;
}

/** State version 2: values wrapped with write metadata. Requests and replies are the same as v1. */
export interface KvStateV2 extends LockState {
  data: Map<string, StoredValue>;
}

interface KvSnapshotV2 {
  data: [string, StoredValue][];
  locks: [string, Lease][];
  lastToken: number;
}

const wrappedStore: ValueStore<Map<string, StoredValue>> = {
  get: (d, k) => d.get(k)?.v,
  set: (d, k, v, time) => void d.set(k, { v, t: time }),
  delete: (d, k) => d.delete(k),
  keys: (d) => d.keys(),
};

/** Apply one request to a state of version 2 (values wrapped with write metadata). */
export function applyKvV2(state: KvStateV2, req: KvRequest, ctx: Pick<ApplyContext, 'time' | 'clientId'>): KvReply {
  return applyWith(state, wrappedStore, req, ctx);
}

function isStoredValue(x: unknown): x is StoredValue {
  return typeof x === 'object' && x !== null && typeof (x as StoredValue).v === 'string' && typeof (x as StoredValue).t === 'number';
}

/** v1 → v2: wrap every string value as {v, t: 0}. Throws on anything that is not a v1 snapshot. */
export const kvMigrationV1toV2: StateMigration = {
  from: 1,
  snapshot(snapshot: unknown): KvSnapshotV2 {
    const s = snapshot as KvSnapshot;
    if (typeof s !== 'object' || s === null || !Array.isArray(s.data) || !Array.isArray(s.locks) || typeof s.lastToken !== 'number') {
      throw new TypeError('not a tandem-kv version 1 snapshot');
    }
    const data: [string, StoredValue][] = s.data.map((e) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'string')
        throw new TypeError('not a tandem-kv version 1 record');
      return [e[0], { v: e[1], t: 0 }];
    });
    return { data, locks: s.locks, lastToken: s.lastToken };
  },
};

/** The kv service, state version 2 (same name, requests and replies as version 1). */
export const kvServiceV2: KvServiceDefinition<KvStateV2> = withMigrations([kvMigrationV1toV2], {
  name: KV_SERVICE_NAME,
  version: 2,
  request: kvRequestSchema,
  reply: kvReplySchema,
  initialState: (): KvStateV2 => ({ data: new Map(), locks: new Map(), lastToken: 0 }),
  apply: applyKvV2,
  digest: (state) => logicalDigest(state, (sv) => sv.v),
  snapshot: (state): KvSnapshotV2 => ({
    data: [...state.data].map(([k, sv]) => [k, { v: sv.v, t: sv.t }] as [string, StoredValue]),
    locks: [...state.locks].map(([n, l]) => [n, { ...l }] as [string, Lease]),
    lastToken: state.lastToken,
  }),
  restore(snapshot) {
    const s = snapshot as KvSnapshotV2;
    if (typeof s !== 'object' || s === null || !Array.isArray(s.data) || !Array.isArray(s.locks) || typeof s.lastToken !== 'number') {
      throw new TypeError('not a tandem-kv version 2 snapshot');
    }
    for (const e of s.data)
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !isStoredValue(e[1])) throw new TypeError('not a tandem-kv version 2 record');
    return {
      data: new Map(s.data.map(([k, sv]) => [k, { v: sv.v, t: sv.t }])),
      locks: new Map(s.locks.map(([n, l]) => [n, { ...l }])),
      lastToken: s.lastToken,
    };
  },
});

/** One selectable version of the kv service, with how to read a value out of its state. */
export interface KvServiceVariant {
  version: number;
  service: KvServiceDefinition<unknown>;
  /** The string value of `key` in a state of this version (undefined: absent). */
  readValue(state: unknown, key: string): string | undefined;
}

/** The state versions the kv service knows. */
export const KV_SERVICE_VERSIONS: readonly number[] = [1, 2];

/** The kv service at state version `version` (1 or 2); a RangeError for any other. */
export function kvServiceVersion(version: number): KvServiceVariant {
  if (version === 1)
    return { version, service: kvService as KvServiceDefinition<unknown>, readValue: (s, k) => (s as KvState).data.get(k) };
  if (version === 2)
    return {
      version,
      service: kvServiceV2 as unknown as KvServiceDefinition<unknown>,
      readValue: (s, k) => (s as KvStateV2).data.get(k)?.v,
    };
  throw new RangeError(`tandem-kv has no service version ${version} (known: ${KV_SERVICE_VERSIONS.join(', ')})`);
}
