/**
 * The kv service: a deterministic state machine (key-value map + lock/lease arbiter) defined only on
 * the public API of @tandem/core. Time comes from ctx.time (fixed by the primary and recorded), so
 * lease expiry replays identically on the backup.
 */
import { defineService, type ApplyContext, type ServiceDefinition } from '@tandem/core';
import { DEFAULT_SCAN_LIMIT, kvReplySchema, kvRequestSchema, type Fence, type KvReply, type KvRequest } from './schema.js';

export const KV_SERVICE_NAME = 'tandem-kv';

/** One lock grant. `token` is the fencing token: strictly larger than every token granted before. */
export interface Lease {
  owner: string;
  token: number;
  expiresAt: number;
}

export interface KvState {
  data: Map<string, string>;
  locks: Map<string, Lease>;
  /** The last fencing token handed out (tokens are global, so they also order grants across locks). */
  lastToken: number;
}

interface KvSnapshot {
  data: [string, string][];
  locks: [string, Lease][];
  lastToken: number;
}

/** A fenced write whose token is not the current holder's (the lease expired or was taken over). */
export class FencingError extends Error {
  override readonly name = 'FencingError';
}
/** renew/release with a token that no longer holds the lock. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
}
/** incr on a value that is not an integer. */
export class NotAnIntegerError extends Error {
  override readonly name = 'NotAnIntegerError';
}

/** Expired leases removed per lock operation (bounds the work of one apply). */
const SWEEP_PER_OP = 16;

function liveLease(state: KvState, name: string, now: number): Lease | undefined {
  const lease = state.locks.get(name);
  if (lease === undefined) return undefined;
  if (lease.expiresAt <= now) {
    state.locks.delete(name);
    return undefined;
  }
  return lease;
}

function sweepExpired(state: KvState, now: number): void {
  let seen = 0;
  for (const [name, lease] of state.locks) {
    if (seen++ >= SWEEP_PER_OP) break;
    if (lease.expiresAt <= now) state.locks.delete(name);
  }
}

function checkFence(state: KvState, fence: Fence | undefined, now: number): void {
  if (fence === undefined) return;
  const lease = liveLease(state, fence.lock, now);
  if (lease === undefined || lease.token !== fence.token) {
    throw new FencingError(`lock "${fence.lock}" is not held with token ${fence.token}` + (lease ? ` (current token ${lease.token})` : ' (not held)'));
  }
}

/** Apply one request to the state (exported for direct unit tests; the replicas call it through the service). */
export function applyKv(state: KvState, req: KvRequest, ctx: Pick<ApplyContext, 'time' | 'clientId'>): KvReply {
  const now = ctx.time;
  switch (req.op) {
    case 'get':
      return { kind: 'value', key: req.key, value: state.data.get(req.key) ?? null };
    case 'set':
      checkFence(state, req.fence, now);
      state.data.set(req.key, req.value);
      return { kind: 'value', key: req.key, value: req.value };
    case 'append': {
      checkFence(state, req.fence, now);
      const v = (state.data.get(req.key) ?? '') + req.value;
      state.data.set(req.key, v);
      return { kind: 'value', key: req.key, value: v };
    }
    case 'delete': {
      checkFence(state, req.fence, now);
      return { kind: 'deleted', key: req.key, existed: state.data.delete(req.key) };
    }
    case 'cas': {
      checkFence(state, req.fence, now);
      const current = state.data.get(req.key) ?? null;
      if (current !== req.expected) return { kind: 'cas', key: req.key, ok: false, value: current };
      state.data.set(req.key, req.value);
      return { kind: 'cas', key: req.key, ok: true, value: req.value };
    }
    case 'incr': {
      const current = state.data.get(req.key);
      const n = current === undefined ? 0 : Number(current);
      if (!Number.isSafeInteger(n) || (current !== undefined && !/^-?\d+$/.test(current))) {
        throw new NotAnIntegerError(`value of "${req.key}" is not an integer`);
      }
      const next = String(n + (req.by ?? 1));
      state.data.set(req.key, next);
      return { kind: 'value', key: req.key, value: next };
    }
    case 'scan': {
      const limit = req.limit ?? DEFAULT_SCAN_LIMIT;
      const keys: string[] = [];
      for (const k of state.data.keys()) {
        if (k.startsWith(req.prefix) && (req.after === undefined || k > req.after)) keys.push(k);
      }
      keys.sort();
      const page = keys.slice(0, limit);
      return { kind: 'scan', entries: page.map((k) => [k, state.data.get(k)!] as [string, string]), more: keys.length > limit };
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
      if (lease === undefined || lease.token !== req.token) throw new LockLostError(`lock "${req.name}" is no longer held with token ${req.token}`);
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

export function initialKvState(): KvState {
  return { data: new Map(), locks: new Map(), lastToken: 0 };
}

/** The kv service definition (pass it to createReplica / createClient). */
export const kvService: ServiceDefinition<KvState, KvRequest, KvReply> = defineService<KvState, KvRequest, KvReply>({
  name: KV_SERVICE_NAME,
  version: 1,
  request: kvRequestSchema,
  reply: kvReplySchema,
  initialState: initialKvState,
  apply: applyKv,
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
