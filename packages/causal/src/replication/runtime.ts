/**
 * The serving side of a causal service: the @tandem/core ReplicaHooks that hold a request until its causal
 * predecessors were applied (admit), and send the outbound messages of each applied entry (afterApply) —
 * plus, when this replica starts serving (first start or takeover), the re-issue of every outbound message
 * in its replicated outbox that the target has not confirmed. Confirmations go through the service's own
 * log (a `k` request), so the outbox — and what a future new primary re-issues — is replicated state.
 */
import type { Client, Env, Replica, ReplicaHooks, ReplicaOptions, ReplicationConfig } from '@tandem/core';
import { createClient, createReplica } from '@tandem/core';
import { z } from 'zod';
import {
  type CausalReply,
  type CausalRequest,
  type CausalService,
  type CausalState,
  causallyReady,
  memberIndex,
  type OutboxItem,
} from './service.js';

/** Options of a CausalRuntime: the Env, the member services' pairs, this service's pair, client settings. */
export interface CausalRuntimeOptions {
  env: Env;
  /** Every other member service's replica pair, by service name (the targets of outbound messages). */
  members: Readonly<Record<string, readonly [string, string]>>;
  /** This service's own pair (listen, peer): confirmations are requests to it. */
  self: readonly [string, string];
  /** Configuration of the clients that carry outbound messages and confirmations. */
  clientConfig?: Partial<ReplicationConfig>;
  /** How long a request may wait for its causal predecessors (ReplicaHooks.holdTimeoutMs; default 10 s). */
  holdTimeoutMs?: number;
  /** Confirmations are batched: recorded at most this often per target (default 25 ms; 0 = at once). A
   * larger value means fewer entries in this service's log and more (harmless, deduplicated) re-issues after
   * a takeover. */
  confirmDelayMs?: number;
  /** An outbound message or confirmation failed (it is retried while this replica serves). */
  onError?(error: Error, what: { to: string; n?: number; confirm?: boolean }): void;
}

type AnyClient = Client<unknown, unknown>;

const RETRY_MIN_MS = 20;
const RETRY_MAX_MS = 1000;
const DEFAULT_CONFIRM_DELAY_MS = 25;

/** Runs a causal service's outbound messages; `hooks` go into the replica's options, then `attach(replica)`. */
export class CausalRuntime {
  readonly hooks: ReplicaHooks;
  readonly #service: CausalService<unknown, unknown, unknown>;
  readonly #opts: CausalRuntimeOptions;
  readonly #self: number;
  readonly #names: readonly string[];
  #serving = false;
  /** Bumped at every start and stop of serving: callbacks of an older term do nothing. */
  #term = 0;
  readonly #issued = new Map<number, number>();
  readonly #answered = new Map<number, number>();
  readonly #confirmedSent = new Map<number, number>();
  readonly #confirming = new Set<number>();
  #waiters: { to: number; n: number; resolve: () => void }[] = [];
  #clients = new Map<number, AnyClient>();
  #selfClient: AnyClient | undefined;
  #stats = { issued: 0, reissued: 0, answered: 0, duplicates: 0, confirmations: 0 };

  constructor(service: CausalService<unknown, unknown, unknown>, options: CausalRuntimeOptions) {
    this.#service = service;
    this.#opts = options;
    this.#self = service.causal.self;
    this.#names = service.causal.members;
    for (const name of Object.keys(options.members)) memberIndex(this.#names, name);
    const members = this.#names.length;
    this.hooks = {
      admit: (request, state) => causallyReady(request.body, state as CausalState<unknown>, this.#self, members),
      ...(options.holdTimeoutMs !== undefined ? { holdTimeoutMs: options.holdTimeoutMs } : {}),
      afterApply: (entry, state) => this.#afterApply(entry.seq, state as CausalState<unknown>),
    };
  }

  /** Follow the replica's roles (call once, before `start`). */
  attach(replica: Replica<CausalState<unknown>>): void {
    replica.on((e) => {
      if (e.type !== 'role') return;
      if (e.role === 'primary' || e.role === 'solo-primary') this.#startServing(replica.state);
      else this.#stopServing();
    });
  }

  /** Counters: messages issued (and re-issued at a takeover), answers, answers saying "already applied", confirmations. */
  stats(): { issued: number; reissued: number; answered: number; duplicates: number; confirmations: number } {
    return { ...this.#stats };
  }

  /** Stop serving: no more outbound messages or confirmations are sent from this replica. */
  async close(): Promise<void> {
    this.#stopServing();
  }

  #afterApply(seq: number, state: CausalState<unknown>): Promise<void> | undefined {
    if (!this.#serving) this.#startServing(state);
    const out = state.outbox;
    let i = out.length;
    while (i > 0 && out[i - 1]!.seq === seq) i--;
    if (i === out.length) return undefined;
    const fresh = out.slice(i);
    const term = this.#term;
    queueMicrotask(() => {
      if (term === this.#term) for (const item of fresh) this.#issue(item, false);
    });
    const waits = fresh.filter((o) => o.wait);
    if (waits.length === 0) return undefined;
    return Promise.all(waits.map((o) => this.#whenAnswered(o.to, o.n))).then(() => undefined);
  }

  #startServing(state: CausalState<unknown>): void {
    if (this.#serving) return;
    this.#serving = true;
    this.#term++;
    this.#issued.clear();
    this.#answered.clear();
    this.#confirmedSent.clear();
    this.#confirming.clear();
    // Re-issue what the target has not confirmed (after a takeover: what the old primary may not have sent).
    for (const item of [...state.outbox]) this.#issue(item, true);
  }

  #stopServing(): void {
    if (!this.#serving) return;
    this.#serving = false;
    this.#term++;
    const clients = [...this.#clients.values()];
    if (this.#selfClient) clients.push(this.#selfClient);
    this.#clients = new Map();
    this.#selfClient = undefined;
    for (const c of clients) void c.close().catch(() => undefined);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve(); // the delayed replies go (a stepped-down primary's are refused anyway)
  }

  #client(to: number): AnyClient {
    let c = this.#clients.get(to);
    if (c === undefined) {
      const name = this.#names[to]!;
      const servers = this.#opts.members[name];
      if (servers === undefined) throw new TypeError(`no replica addresses for member service "${name}"`);
      c = createClient({
        service: { name, request: z.any(), reply: z.any() },
        env: this.#opts.env,
        servers: [servers[0], servers[1]],
        ...(this.#opts.clientConfig ? { config: this.#opts.clientConfig } : {}),
      });
      this.#clients.set(to, c);
    }
    return c;
  }

  #ownClient(): AnyClient {
    this.#selfClient ??= createClient({
      service: { name: this.#service.name, request: z.any(), reply: z.any() },
      env: this.#opts.env,
      servers: [this.#opts.self[0], this.#opts.self[1]],
      ...(this.#opts.clientConfig ? { config: this.#opts.clientConfig } : {}),
    });
    return this.#selfClient;
  }

  #issue(item: OutboxItem, reissue: boolean): void {
    if ((this.#issued.get(item.to) ?? 0) >= item.n) return;
    this.#issued.set(item.to, item.n);
    if (reissue) this.#stats.reissued++;
    else this.#stats.issued++;
    const term = this.#term;
    const body: CausalRequest<unknown> = { b: item.body, c: item.c, o: [this.#self, item.n, item.seq, item.index] };
    let delay = RETRY_MIN_MS;
    const attempt = (): void => {
      if (term !== this.#term) return;
      this.#client(item.to)
        .call(body)
        .then(
          (rep) => {
            if (term !== this.#term) return;
            if ((rep as CausalReply<unknown>).d !== undefined) this.#stats.duplicates++;
            this.#onAnswered(item.to, item.n);
          },
          (err: unknown) => {
            if (term !== this.#term) return;
            this.#opts.onError?.(err as Error, { to: this.#names[item.to]!, n: item.n });
            this.#opts.env.setTimer(delay, attempt);
            delay = Math.min(RETRY_MAX_MS, delay * 2);
          },
        );
    };
    attempt();
  }

  #whenAnswered(to: number, n: number): Promise<void> {
    if ((this.#answered.get(to) ?? 0) >= n || !this.#serving) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ to, n, resolve }));
  }

  /** The target applied message n (and so, FIFO, every earlier one on the pair). */
  #onAnswered(to: number, n: number): void {
    this.#stats.answered++;
    if ((this.#answered.get(to) ?? 0) < n) this.#answered.set(to, n);
    const done = this.#waiters.filter((w) => w.to === to && w.n <= n);
    if (done.length > 0) {
      this.#waiters = this.#waiters.filter((w) => !(w.to === to && w.n <= n));
      for (const w of done) w.resolve();
    }
    this.#confirm(to);
  }

  /** Record the target's confirmations in our own log (one in flight per target, coalesced, batched). */
  #confirm(to: number): void {
    if (this.#confirming.has(to)) return;
    if ((this.#answered.get(to) ?? 0) <= (this.#confirmedSent.get(to) ?? 0)) return;
    this.#confirming.add(to);
    const term = this.#term;
    const delay = this.#opts.confirmDelayMs ?? DEFAULT_CONFIRM_DELAY_MS;
    if (delay > 0) this.#opts.env.setTimer(delay, () => term === this.#term && this.#sendConfirm(to, term));
    else this.#sendConfirm(to, term);
  }

  #sendConfirm(to: number, term: number): void {
    const upTo = this.#answered.get(to) ?? 0;
    this.#ownClient()
      .call({ k: { to, upTo } } satisfies CausalRequest<unknown>)
      .then(
        () => {
          if (term !== this.#term) return;
          this.#stats.confirmations++;
          this.#confirming.delete(to);
          if ((this.#confirmedSent.get(to) ?? 0) < upTo) this.#confirmedSent.set(to, upTo);
          this.#confirm(to);
        },
        (err: unknown) => {
          if (term !== this.#term) return;
          this.#opts.onError?.(err as Error, { to: this.#names[to]!, confirm: true });
          this.#opts.env.setTimer(RETRY_MAX_MS, () => {
            if (term !== this.#term) return;
            this.#confirming.delete(to);
            this.#confirm(to);
          });
        },
      );
  }
}

/** Options of `createCausalReplica`: a core ReplicaOptions whose service is a causal service, plus the member pairs. */
export type CausalReplicaOptions<State, Req, Rep> = Omit<
  ReplicaOptions<CausalState<State>, CausalRequest<Req>, CausalReply<Rep>>,
  'service' | 'hooks'
> & {
  service: CausalService<State, Req, Rep>;
  /** Every other member service's replica pair, by service name. */
  members: Readonly<Record<string, readonly [string, string]>>;
  clientConfig?: Partial<ReplicationConfig>;
  holdTimeoutMs?: number;
  confirmDelayMs?: number;
  onError?: CausalRuntimeOptions['onError'];
  /** Wrap the hooks (tests: e.g. crash before the outbound messages leave). */
  wrapHooks?(hooks: ReplicaHooks): ReplicaHooks;
};

/** A replica of a causal service, with its runtime attached. */
export function createCausalReplica<State, Req, Rep>(
  options: CausalReplicaOptions<State, Req, Rep>,
): { replica: Replica<CausalState<State>>; runtime: CausalRuntime } {
  const { members, clientConfig, holdTimeoutMs, confirmDelayMs, onError, wrapHooks, ...replicaOptions } = options;
  const runtime = new CausalRuntime(options.service as unknown as CausalService<unknown, unknown, unknown>, {
    env: options.env,
    members,
    self: [options.listen, options.peer],
    ...(clientConfig ? { clientConfig } : {}),
    ...(holdTimeoutMs !== undefined ? { holdTimeoutMs } : {}),
    ...(confirmDelayMs !== undefined ? { confirmDelayMs } : {}),
    ...(onError ? { onError } : {}),
  });
  const hooks = wrapHooks ? wrapHooks(runtime.hooks) : runtime.hooks;
  const replica = createReplica({ ...replicaOptions, hooks });
  runtime.attach(replica as unknown as Replica<CausalState<unknown>>);
  return { replica, runtime };
}
