/**
 * The service side: `defineService` and `ServiceRunner`, which owns the state, the applied sequence
 * number and the dedup window, and applies entries deterministically with the recorded ctx. The same
 * runner is used by the primary (to sequence) and the backup (to replay), so both compute identical
 * replies, digests and dedup tables.
 */
import type { ApplyContext, ServiceDefinition } from './api.js';
import { encodeValue } from './codec.js';
import { DedupTable, type DedupRecord } from './dedup.js';
import { invariant } from './errors.js';
import { fnv1a64 } from './hash.js';
import type { Entry, RemoteError } from './messages.js';
import { mulberry32 } from './prng.js';

/** Identity helper that fixes the type parameters of a service definition. */
export function defineService<State, Req, Rep>(definition: ServiceDefinition<State, Req, Rep>): ServiceDefinition<State, Req, Rep> {
  if (typeof definition.name !== 'string' || definition.name.length === 0) throw new TypeError('service name must be a non-empty string');
  return definition;
}

/** What applying one entry produced. */
export interface Outcome {
  body?: unknown;
  error?: RemoteError;
  digest: string;
}

/** The digest of a reply as it is recorded and compared (claims 3/8). */
export function replyDigest(body: unknown, error: RemoteError | undefined): string {
  return fnv1a64(encodeValue(error === undefined ? [0, body ?? null] : [1, error.name, error.message]));
}

function toRemoteError(err: unknown): RemoteError {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

/** The fields of an entry the apply context is made of. */
export type ContextFields = Pick<Entry, 'seq' | 'epoch' | 'time' | 'seed' | 'clientId' | 'requestId'>;

/**
 * The deterministic context of one entry, as `apply` sees it: the recorded time, and `random()` from
 * mulberry32(seed) — created on first use, so a service that never draws pays nothing. `random` is a
 * bound function (a service may destructure it).
 */
export function applyContext(e: ContextFields): ApplyContext {
  let rng: (() => number) | undefined;
  return {
    seq: e.seq,
    epoch: e.epoch,
    time: e.time,
    clientId: e.clientId,
    requestId: e.requestId,
    random: () => (rng ??= mulberry32(e.seed))(),
  };
}

/** The seed a primary records for a new entry (ctx.random() replays from it): a uint32 from `random`. */
export function drawSeed(random: () => number): number {
  return Math.floor(random() * 0x100000000) >>> 0;
}

/** The 64-bit FNV-1a of a value's msgpack encoding, as 16 hex digits: the hash the core uses for reply and
 * state digests — for a service's own `digest(state)`. Deterministic across processes; not cryptographic. */
export function valueDigest(value: unknown): string {
  return fnv1a64(encodeValue(value));
}

/** The digest of a service's state alone: `service.digest(state)`, else the 64-bit FNV-1a of its encoded
 * snapshot. (A replica's state digest adds appliedSeq and the dedup window, ServiceRunner.stateDigest.) */
export function serviceDigest<State>(
  service: Pick<ServiceDefinition<State, unknown, unknown>, 'digest' | 'snapshot'>,
  state: State,
): string {
  return service.digest ? service.digest(state) : valueDigest(service.snapshot(state));
}

export type EntryFields = Pick<Entry, 'seq' | 'epoch' | 'time' | 'seed' | 'clientId' | 'requestId' | 'body'>;

export interface Snapshot {
  seq: number;
  version: number;
  snapshot: unknown;
  dedup: [string, DedupRecord][];
}

export class ServiceRunner<State, Req, Rep> {
  readonly service: ServiceDefinition<State, Req, Rep>;
  readonly dedup: DedupTable;
  state: State;
  appliedSeq = 0;
  /** ctx.time of the last applied entry: the primary never hands out an earlier time (monotonic ctx.time
   * across a failover even when the new primary's clock is behind). */
  lastTime = 0;

  constructor(service: ServiceDefinition<State, Req, Rep>, dedupWindow: number, dedupMaxBytes?: number) {
    this.service = service;
    this.dedup = new DedupTable(dedupWindow, dedupMaxBytes);
    this.state = service.initialState();
  }

  get version(): number {
    return this.service.version ?? 1;
  }

  /** Validate a request body with the service's schema; returns the error message when invalid. */
  parseRequest(body: unknown): { ok: true; request: Req } | { ok: false; message: string } {
    const r = this.service.request.safeParse(body);
    return r.success
      ? { ok: true, request: r.data }
      : { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ') };
  }

  /**
   * Apply one entry (seq must be appliedSeq + 1): run the service with the recorded ctx, record the
   * reply in the dedup window, advance appliedSeq. Returns the reply and its digest.
   */
  apply(entry: EntryFields): Outcome {
    const parsed = this.service.request.safeParse(entry.body);
    if (!parsed.success) return this.#finish(entry, undefined, { name: 'InvalidRequestError', message: parsed.error.message });
    return this.applyParsed(entry, parsed.data);
  }

  /** As `apply`, with the request already parsed by the service's schema (the primary's fast path). */
  applyParsed(entry: EntryFields, request: Req): Outcome {
    let body: unknown;
    let error: RemoteError | undefined;
    try {
      body = this.service.apply(this.state, request, applyContext(entry));
    } catch (err) {
      error = toRemoteError(err);
    }
    return this.#finish(entry, body, error);
  }

  #finish(entry: EntryFields, body: unknown, error: RemoteError | undefined): Outcome {
    invariant(entry.seq > this.appliedSeq, 'applied-seq-forward', () => `applying seq ${entry.seq} after ${this.appliedSeq}`);
    const digest = replyDigest(body, error);
    this.appliedSeq = entry.seq;
    if (entry.time > this.lastTime) this.lastTime = entry.time;
    const rec: DedupRecord = { seq: entry.seq, epoch: entry.epoch, digest, time: entry.time, seed: entry.seed };
    if (error === undefined) rec.body = body;
    else rec.error = error;
    this.dedup.record(entry.clientId, entry.requestId, rec);
    return error === undefined ? { body, digest } : { error, digest };
  }

  takeSnapshot(): Snapshot {
    return { seq: this.appliedSeq, version: this.version, snapshot: this.service.snapshot(this.state), dedup: this.dedup.export() };
  }

  restore(snap: Snapshot): void {
    this.#generation++;
    this.state = this.service.restore(snap.snapshot);
    this.appliedSeq = snap.seq;
    this.dedup.import(snap.dedup);
  }

  /** Install a state already restored by the service (a streamed transfer), with every entry ≤ seq
   * applied and the dedup window fixed at seq. */
  installState(state: State, seq: number, dedup: readonly (readonly [string, DedupRecord])[]): void {
    this.#generation++;
    this.state = state;
    this.appliedSeq = seq;
    this.dedup.import(dedup);
    let last = 0;
    for (const [, rec] of dedup) if (rec.time > last) last = rec.time;
    this.lastTime = last;
  }

  /** Start over from the initial state (a stepped-down primary before its state copy). */
  reset(): void {
    this.#generation++;
    this.state = this.service.initialState();
    this.appliedSeq = 0;
    this.lastTime = 0;
    this.dedup.import([]);
  }

  /** Digest of the state plus the dedup window: equal on primary and backup at equal appliedSeq. */
  stateDigest(): string {
    const cached = this.#digestCache;
    if (cached !== undefined && cached.seq === this.appliedSeq && cached.generation === this.#generation) return cached.digest;
    const digest = this.#computeStateDigest();
    this.#digestCache = { seq: this.appliedSeq, generation: this.#generation, digest };
    return digest;
  }

  /** Bumped whenever the state is replaced (restore/reset), so cached digests are not reused. */
  #generation = 0;
  #digestCache: { seq: number; generation: number; digest: string } | undefined;

  #computeStateDigest(): string {
    return fnv1a64(encodeValue([this.appliedSeq, serviceDigest(this.service, this.state), this.dedup.export()]));
  }
}
