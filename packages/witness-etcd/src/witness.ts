// A Witness (packages/core/src/api.ts) on etcd v3. Two keys per replica pair:
//   `${prefix}/owner`  {"nodeId","epoch"} attached to the holder's lease: gone when the lease expires;
//   `${prefix}/epoch`  the highest epoch ever granted (no lease: it outlives every holder).
// A grant is ONE transaction fenced on the mod revisions of both keys as read just before, so of two
// replicas racing only one can commit; the loser re-reads and sees the winner. While a grant is in force
// its lease is kept alive; `holds()` is true only while etcd certainly has not expired it yet.
import type { Logger, Witness, WitnessRequest } from '@tandem/core';
import type { Etcd3, IKeyValue } from 'etcd3';
import { createEtcdClient, DEFAULT_CALL_TIMEOUT_MS } from './client.js';
import { WitnessClosedError, WitnessUnavailableError } from './errors.js';
import { KeepaliveLoop, keepaliveOnce } from './keepalive.js';
import { type EtcdTlsOptions, parseWitnessUrl } from './url.js';

/** The default lease TTL (s). etcd counts leases in whole seconds and raises a TTL below its minimum
 * (1.5 × its election timeout, rounded up: 2 s with etcd's default 1 s election timeout). */
export const DEFAULT_LEASE_TTL_S = 2;
/** Of a lease's TTL, the part `holds()` counts on after a keepalive is sent (slack for clock-rate drift). */
export const HOLD_FRACTION = 0.9;
/** Keepalives per TTL (etcd's own clients use 3; 4 leaves three tries inside the 0.9 × TTL window). */
export const KEEPALIVES_PER_TTL = 4;
/** Grant attempts when the fenced transaction loses a race (each attempt re-reads). */
const MAX_TXN_ATTEMPTS = 3;

/** Options of `new EtcdWitness`. */
export interface EtcdWitnessOptions {
  /** etcd client endpoints, `host:port` (or `http(s)://host:port`). */
  endpoints: string[];
  /** Key prefix of this replica pair, e.g. `/tandem/kv-1` (both replicas of a pair use the same). */
  prefix: string;
  /** Lease TTL in whole seconds (default 2). Must be shorter than the pair's takeover bound. */
  leaseTtlS?: number;
  /** Deadline of each etcd call (default 1000 ms): past it the request is rejected (WitnessUnavailableError). */
  dialTimeoutMs?: number;
  /** TLS to etcd (`etcds://` URLs). */
  tls?: EtcdTlsOptions;
  /** How often the lease is kept alive (default TTL / 4; at most TTL / 2). */
  keepaliveIntervalMs?: number;
  /** Where grants, refusals and lost leases are logged (default: nowhere). The core's `Logger` shape. */
  log?: Logger;
  /** Monotonic milliseconds (default `performance.now`). */
  clock?: () => number;
}

/** What the witness currently holds (for status lines and tests). */
export interface EtcdWitnessStatus {
  /** The grant in force or last held (undefined: none since the start or the last release). */
  grant: { nodeId: string; epoch: number; leaseId: string } | undefined;
  /** `holds()` is true until this local time (ms, `clock`); -Infinity without a grant. */
  holdsUntil: number;
  /** Local send time of the last keepalive (or grant) etcd confirmed. */
  lastRenewalSentAt: number | undefined;
  /** The lease TTL etcd granted (ms). */
  leaseMs: number;
  /** The last etcd failure since the last success, if any. */
  unreachable: string | undefined;
}

interface Owner {
  nodeId: string;
  epoch: number;
}

function parseOwner(kv: IKeyValue | undefined): Owner | undefined | 'malformed' {
  if (!kv) return undefined;
  try {
    const v = JSON.parse(kv.value.toString('utf8')) as Partial<Owner>;
    if (typeof v.nodeId === 'string' && Number.isSafeInteger(v.epoch)) return { nodeId: v.nodeId, epoch: v.epoch as number };
  } catch {
    /* below */
  }
  return 'malformed';
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A `Witness` on etcd v3 (see the file header and README): grants serving alone to one replica of a pair at a
 * time, at an epoch never below one already granted, for as long as it keeps its lease alive.
 */
export class EtcdWitness implements Witness {
  /** `new EtcdWitness` from `etcd://host:port[,…]/prefix` (or `etcds://…?ca=…`), see `parseWitnessUrl`. */
  static fromUrl(url: string, options: Omit<EtcdWitnessOptions, 'endpoints' | 'prefix' | 'tls'> = {}): EtcdWitness {
    const parsed = parseWitnessUrl(url);
    return new EtcdWitness({ ...options, endpoints: parsed.endpoints, prefix: parsed.prefix, ...(parsed.tls && { tls: parsed.tls }) });
  }

  /** This pair's key prefix (`<prefix>/owner`, `<prefix>/epoch`). */
  readonly prefix: string;
  readonly #client: Etcd3;
  readonly #ownerKey: Buffer;
  readonly #epochKey: Buffer;
  readonly #requestedTtlS: number;
  readonly #callTimeoutMs: number;
  readonly #keepaliveIntervalMs: number | undefined;
  readonly #clock: () => number;
  readonly #log: Logger | undefined;
  readonly #endpoints: string;
  #ttlS: number;
  #grant: { nodeId: string; epoch: number; leaseId: string } | undefined;
  #holdsUntil = Number.NEGATIVE_INFINITY;
  #lastRenewalSentAt: number | undefined;
  #lastRenewalAt: number | undefined;
  #keepalive: KeepaliveLoop | undefined;
  #unreachable: string | undefined;
  #lastRefusal: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: EtcdWitnessOptions) {
    const ttl = options.leaseTtlS ?? DEFAULT_LEASE_TTL_S;
    if (!Number.isInteger(ttl) || ttl < 1) throw new RangeError(`leaseTtlS must be a whole number of seconds >= 1, got ${ttl}`);
    if (!options.prefix.startsWith('/') || options.prefix.endsWith('/'))
      throw new RangeError(`prefix must start with / and not end with / (got ${JSON.stringify(options.prefix)})`);
    this.prefix = options.prefix;
    this.#ownerKey = Buffer.from(`${options.prefix}/owner`);
    this.#epochKey = Buffer.from(`${options.prefix}/epoch`);
    this.#requestedTtlS = ttl;
    this.#ttlS = ttl;
    this.#callTimeoutMs = options.dialTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const interval = options.keepaliveIntervalMs;
    if (interval !== undefined && !(interval > 0 && interval <= (ttl * 1000) / 2))
      throw new RangeError(`keepaliveIntervalMs must be > 0 and at most half the lease TTL (${(ttl * 1000) / 2} ms), got ${interval}`);
    this.#keepaliveIntervalMs = interval;
    this.#clock = options.clock ?? (() => performance.now());
    this.#log = options.log;
    this.#endpoints = options.endpoints.join(',');
    this.#client = createEtcdClient({
      endpoints: options.endpoints,
      callTimeoutMs: this.#callTimeoutMs,
      ...(options.tls && { tls: options.tls }),
    });
  }

  /** The lease TTL in ms (as etcd granted it, once it has: etcd may raise a TTL below its minimum). */
  get leaseMs(): number {
    return this.#ttlS * 1000;
  }

  /** True while the last grant is certainly in force for `marginMs` more: before 0.9 × TTL − marginMs after
   * the sending of the last keepalive (or grant) etcd confirmed. The core passes its forward window, so what
   * a solo primary answers reaches its peer before etcd can grant the peer. False before any grant, after
   * `release`, a lost lease or `close`. */
  holds(marginMs = 0): boolean {
    return !this.#closed && this.#grant !== undefined && this.#clock() < this.#holdsUntil - marginMs;
  }

  /** The grant, its renewal times and the last etcd failure, as data. */
  status(): EtcdWitnessStatus {
    return {
      grant: this.#grant && { ...this.#grant },
      holdsUntil: this.#grant ? this.#holdsUntil : Number.NEGATIVE_INFINITY,
      lastRenewalSentAt: this.#lastRenewalSentAt,
      leaseMs: this.leaseMs,
      unreachable: this.#unreachable,
    };
  }

  /** One line for logs and status: the grant and its last renewal, "etcd unreachable: …", or the last refusal. */
  describe(): string {
    if (this.#closed) return 'witness closed';
    const g = this.#grant;
    const unreachable = this.#unreachable ? `etcd unreachable: ${this.#unreachable}` : undefined;
    if (g) {
      const ago = this.#lastRenewalAt === undefined ? '?' : `${Math.round(this.#clock() - this.#lastRenewalAt)} ms ago`;
      const state = this.holds() ? 'holds' : 'lapsed';
      return `${g.nodeId} owns ${this.prefix} at epoch ${g.epoch}, lease ${this.#ttlS} s renewed ${ago} (${state})${unreachable ? `; ${unreachable}` : ''}`;
    }
    return unreachable ?? (this.#lastRefusal ? `no grant: ${this.#lastRefusal}` : `no grant (etcd ${this.#endpoints})`);
  }

  /**
   * Grants (true) iff the owner key is absent or `request.nodeId`'s and `request.epoch` is not below the highest
   * epoch granted, in one transaction fenced on both keys' revisions; refuses (false) otherwise. Rejects with
   * `WitnessUnavailableError` when etcd does not answer in time. Requests run one at a time.
   */
  mayServeAlone(request: WitnessRequest): Promise<boolean> {
    return this.#serialized(() => this.#decide(request));
  }

  /** Gives the grant up: stops the keepalive and revokes the lease (the owner key goes with it). Never rejects;
   * with etcd unreachable the lease lapses by its TTL. */
  release(request: { nodeId: string; epoch: number }): Promise<void> {
    return this.#serialized(async () => {
      const g = this.#grant;
      if (!g || g.nodeId !== request.nodeId) return;
      this.#dropGrant();
      try {
        await this.#client.leaseClient.leaseRevoke({ ID: g.leaseId });
        this.#info('witness.released', { nodeId: g.nodeId, epoch: g.epoch });
      } catch (err) {
        this.#warn('witness.release-failed', { nodeId: g.nodeId, error: messageOf(err), note: `the lease expires within ${this.#ttlS} s` });
      }
    }).catch(() => undefined);
  }

  /** Stops the keepalive and closes the etcd client. Does NOT revoke the lease (call `release` first for a
   * prompt handover): a grant in force lapses by its TTL, like a holder that crashed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keepalive?.stop();
    this.#keepalive = undefined;
    await this.#queue.catch(() => undefined);
    this.#client.close();
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #decide(req: WitnessRequest): Promise<boolean> {
    if (this.#closed) throw new WitnessClosedError('the witness is closed');
    for (let attempt = 0; attempt < MAX_TXN_ATTEMPTS; attempt++) {
      const outcome = await this.#attempt(req);
      if (outcome !== 'raced') return outcome;
    }
    return this.#refuse(req, 'lost the race for the owner key repeatedly');
  }

  /** One read–decide–transaction round: true/false, or 'raced' when the fenced transaction failed. */
  async #attempt(req: WitnessRequest): Promise<boolean | 'raced'> {
    const read = await this.#call('read the owner key', () =>
      this.#client.kv.txn({
        success: [{ request_range: { key: this.#ownerKey } }, { request_range: { key: this.#epochKey } }],
      }),
    );
    const ownerKv = read.responses[0]?.response_range.kvs[0];
    const epochKv = read.responses[1]?.response_range.kvs[0];
    // Our grant is in force only while the owner key sits on our lease: if it does not any more, it is over.
    this.#forgetGrantNotOwned(ownerKv);
    const owner = parseOwner(ownerKv);
    if (owner === 'malformed')
      return this.#refuse(req, `the owner key holds something else: ${ownerKv?.value.toString('utf8').slice(0, 80)}`);
    const granted = parseEpochRecord(epochKv);
    if (granted === 'malformed')
      return this.#refuse(req, `the epoch key holds something else: ${epochKv?.value.toString('utf8').slice(0, 40)}`);
    // The highest epoch granted, and to whom: an epoch belongs to one replica — granting it to another would
    // let two replicas serve different histories under one epoch (the simulator found that).
    const top = owner && owner.epoch >= granted.epoch ? { epoch: owner.epoch, nodeId: owner.nodeId } : granted;
    if (owner && owner.nodeId !== req.nodeId) return this.#refuse(req, `${owner.nodeId} owns it at epoch ${owner.epoch}`);
    if (req.epoch < top.epoch) return this.#refuse(req, `epoch ${req.epoch} is below the granted epoch ${top.epoch}`);
    if (req.epoch === top.epoch && top.nodeId !== undefined && top.nodeId !== req.nodeId)
      return this.#refuse(req, `epoch ${req.epoch} was granted to ${top.nodeId}`);

    // The lease: ours, still attached to the owner key and confirmed alive now, or a fresh one.
    let lease: { id: string; sentAt: number; ttlS: number; fresh: boolean } | undefined;
    const mine = this.#grant;
    if (ownerKv && mine && ownerKv.lease === mine.leaseId) {
      const renewed = await this.#call('renew the lease', () =>
        keepaliveOnce(this.#client, mine.leaseId, this.#callTimeoutMs, this.#clock),
      );
      if (renewed) lease = { id: mine.leaseId, sentAt: renewed.sentAt, ttlS: renewed.ttlS, fresh: false };
      else {
        this.#dropGrant(); // expired since the read: its key is being deleted; read again
        return 'raced';
      }
    }
    if (!lease) {
      const sentAt = this.#clock();
      const g = await this.#call('grant a lease', () => this.#client.leaseClient.leaseGrant({ TTL: this.#requestedTtlS }));
      if (!(Number(g.TTL) > 0)) throw new WitnessUnavailableError(`etcd granted no lease: ${g.error || `TTL ${g.TTL}`}`);
      lease = { id: g.ID, sentAt, ttlS: Number(g.TTL), fresh: true };
    }

    let committed: boolean;
    try {
      const owned = Buffer.from(JSON.stringify({ nodeId: req.nodeId, epoch: req.epoch }));
      const res = await this.#call('write the owner key', () =>
        this.#client.kv.txn({
          compare: [
            { key: this.#ownerKey, target: 'Mod', result: 'Equal', mod_revision: ownerKv?.mod_revision ?? 0 },
            { key: this.#epochKey, target: 'Mod', result: 'Equal', mod_revision: epochKv?.mod_revision ?? 0 },
          ],
          success: [
            { request_put: { key: this.#ownerKey, value: owned, lease: lease.id } },
            { request_put: { key: this.#epochKey, value: Buffer.from(JSON.stringify({ epoch: req.epoch, nodeId: req.nodeId })) } },
          ],
        }),
      );
      committed = res.succeeded;
    } catch (err) {
      // Unknown outcome: the transaction may have committed. Revoking a fresh lease undoes it either way.
      if (lease.fresh) this.#revokeQuietly(lease.id);
      throw err;
    }
    if (!committed) {
      // Someone wrote either key since our read (the other replica won, or our key expired): read again.
      this.#log?.log('debug', 'witness.raced', { prefix: this.prefix, nodeId: req.nodeId, epoch: req.epoch });
      if (lease.fresh) this.#revokeQuietly(lease.id);
      return 'raced';
    }
    // Closed while the transaction was under way: no keepalive any more, the lease lapses by its TTL.
    if (this.#closed) throw new WitnessClosedError('the witness was closed during the request');
    this.#granted(req, lease);
    if (!this.holds()) {
      // The round trips took longer than the lease lasts: the grant may already have expired at etcd.
      const g = this.#grant;
      this.#dropGrant();
      if (g) this.#revokeQuietly(g.leaseId);
      this.#warn('witness.too-slow', { nodeId: req.nodeId, ttlS: lease.ttlS, note: 'etcd answers too slowly for the lease TTL' });
      return this.#refuse(req, `the grant lapsed before it was confirmed (etcd answered too slowly for a ${lease.ttlS} s lease)`);
    }
    return true;
  }

  #granted(req: WitnessRequest, lease: { id: string; sentAt: number; ttlS: number; fresh: boolean }): void {
    const previous = this.#grant;
    this.#ttlS = lease.ttlS;
    this.#grant = { nodeId: req.nodeId, epoch: req.epoch, leaseId: lease.id };
    this.#lastRefusal = undefined;
    if (previous?.leaseId !== lease.id) {
      // A new lease: the keepalive follows it; the old one (if any) carries no key any more.
      this.#keepalive?.stop();
      this.#holdsUntil = Number.NEGATIVE_INFINITY;
      if (previous) this.#revokeQuietly(previous.leaseId);
      this.#keepalive = this.#startKeepalive(lease.id);
    }
    this.#renewed(lease.id, lease.sentAt, lease.ttlS);
    this.#info('witness.granted', { nodeId: req.nodeId, epoch: req.epoch, reason: req.reason, lease: lease.id, ttlS: lease.ttlS });
  }

  #startKeepalive(leaseId: string): KeepaliveLoop {
    const interval = this.#keepaliveIntervalMs ?? (this.#ttlS * 1000) / KEEPALIVES_PER_TTL;
    return new KeepaliveLoop(this.#client, leaseId, interval, Math.max(interval, this.#callTimeoutMs), this.#clock, {
      renewed: (sentAt, ttlS) => this.#renewed(leaseId, sentAt, ttlS),
      lost: () => {
        if (this.#grant?.leaseId !== leaseId) return;
        this.#warn('witness.lease-lost', { nodeId: this.#grant.nodeId, epoch: this.#grant.epoch, lease: leaseId });
        this.#dropGrant();
      },
      trouble: (message) => {
        if (this.#unreachable === undefined) this.#warn('witness.keepalive-trouble', { lease: leaseId, error: message });
        this.#unreachable = message;
      },
    });
  }

  #renewed(leaseId: string, sentAt: number, ttlS: number): void {
    if (this.#grant?.leaseId !== leaseId) return;
    const until = sentAt + HOLD_FRACTION * Math.min(ttlS, this.#ttlS) * 1000;
    if (until > this.#holdsUntil) {
      this.#holdsUntil = until;
      this.#lastRenewalSentAt = sentAt;
    }
    this.#lastRenewalAt = this.#clock();
    this.#unreachable = undefined;
  }

  /** Our grant is over (released, lost, or the owner key is someone else's / gone): stop renewing it. */
  #dropGrant(): void {
    this.#keepalive?.stop();
    this.#keepalive = undefined;
    this.#grant = undefined;
    this.#holdsUntil = Number.NEGATIVE_INFINITY;
  }

  /** If the owner key (as just read) is not attached to our grant's lease, the grant is over: drop it. */
  #forgetGrantNotOwned(ownerKv: IKeyValue | undefined): void {
    const g = this.#grant;
    if (!g || ownerKv?.lease === g.leaseId) return;
    this.#dropGrant();
    this.#revokeQuietly(g.leaseId);
  }

  #refuse(req: WitnessRequest, why: string): false {
    this.#lastRefusal = why;
    this.#info('witness.refused', { nodeId: req.nodeId, epoch: req.epoch, reason: req.reason, why });
    return false;
  }

  #revokeQuietly(leaseId: string): void {
    if (this.#closed) return;
    this.#client.leaseClient.leaseRevoke({ ID: leaseId }).catch((err: unknown) => {
      this.#log?.log('debug', 'witness.revoke-failed', { lease: leaseId, error: messageOf(err) });
    });
  }

  /** One etcd call; any failure becomes a WitnessUnavailableError (the caller treats it as "refused, ask later"). */
  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new WitnessClosedError('the witness is closed');
    try {
      const result = await fn();
      this.#unreachable = undefined;
      return result;
    } catch (err) {
      const message = `${what}: ${messageOf(err)}`;
      this.#unreachable = message;
      this.#warn('witness.unreachable', { endpoints: this.#endpoints, error: message });
      throw new WitnessUnavailableError(`etcd unreachable (${this.#endpoints}): ${message}`, { cause: err });
    }
  }

  #info(event: string, fields: Record<string, unknown>): void {
    this.#log?.log('info', event, { prefix: this.prefix, ...fields });
  }

  #warn(event: string, fields: Record<string, unknown>): void {
    this.#log?.log('warn', event, { prefix: this.prefix, ...fields });
  }
}

/** The epoch key: `{"epoch":N,"nodeId":"…"}` (a bare number, from before the node id was kept, is read too). */
function parseEpochRecord(kv: { value: Buffer } | undefined): { epoch: number; nodeId: string | undefined } | 'malformed' {
  if (kv === undefined) return { epoch: 0, nodeId: undefined };
  const text = kv.value.toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'malformed';
  }
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? { epoch: v, nodeId: undefined } : 'malformed';
  const r = v as { epoch?: unknown; nodeId?: unknown } | null;
  if (typeof r !== 'object' || r === null || typeof r.epoch !== 'number' || !Number.isSafeInteger(r.epoch) || typeof r.nodeId !== 'string')
    return 'malformed';
  return { epoch: r.epoch, nodeId: r.nodeId };
}
