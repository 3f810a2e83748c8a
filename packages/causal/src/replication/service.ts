/**
 * `causalService`: a replicated service (a @tandem/core ServiceDefinition) that is a member of a static
 * group of replicated services, may send outbound messages to the others from `apply`, and carries causal
 * contexts on its requests and replies. Everything causal lives in the replicated state — the context,
 * what it delivered from each member, its outbox — so the backup, replaying the log in sequence order, has
 * the primary's causal state at every seq, and a new primary continues from it (docs/CAUSAL.md).
 */
import type { ApplyContext, ServiceDefinition } from '@tandem/core';
import { z } from 'zod';
import { CausalProtocolError } from '../errors.js';
import { CausalContext, MAX_MEMBERS } from './context.js';

/** What a causal service's `apply` sees: the core's context plus `send`. */
export interface CausalApplyContext extends ApplyContext {
  /**
   * Send `message` (a request body of `target`'s own service) to the member service `target`. Recorded in
   * the replicated state with the entry (the backup computes the same), sent by the primary after the
   * entry is applied, re-issued by a new primary until `target` confirmed it, applied by `target` exactly
   * once and only after everything in this entry's causal past addressed to it. `awaitReply`: the reply to
   * the current request goes out only after `target` answered (FIG. 4a). Discarded if `apply` throws.
   */
  send(target: string, message: unknown, options?: { awaitReply?: boolean }): void;
  /** The member that sent this request, when it is another service's outbound message. */
  readonly fromService: string | undefined;
}

/**
 * A causal service as the application writes it: like a core ServiceDefinition, but `apply` gets a context to send messages to other
 * member services.
 */
export interface CausalServiceDefinition<State, Req, Rep> {
  name: string;
  version?: number;
  request: z.ZodType<Req>;
  reply: z.ZodType<Rep>;
  /** The state of a fresh replica. */
  initialState(): State;
  /** Apply one request deterministically; messages to other services go through `ctx.send`. */
  apply(state: State, request: Req, ctx: CausalApplyContext): Rep;
  /** A serialisable copy of the state (for state transfer and snapshots). */
  snapshot(state: State): unknown;
  /** The state from a `snapshot` result. */
  restore(snapshot: unknown): State;
  /** A digest of the state, to compare replicas (optional). */
  digest?(state: State): string;
}

/** One outbound message, recorded in the sender's state until the target confirmed it. */
export interface OutboxItem {
  /** Target member index. */
  to: number;
  /** Its number on the (this service → target) pair: 1, 2, 3, … (the callee's dedup and FIFO key). */
  n: number;
  /** The id of the entry that emitted it, and its index among that entry's sends. */
  seq: number;
  index: number;
  body: unknown;
  /** The causal context it carries (this service's, at the send). */
  c: Uint8Array;
  /** The reply to the emitting request waits for the target's answer (FIG. 4a). */
  wait: boolean;
}

/** The state a causal service's replicas hold: the application's state plus causal context, delivered and sent counts, and the outbox. */
export interface CausalState<State> {
  inner: State;
  /** This service's causal past (entries for itself are dropped: satisfied). */
  known: CausalContext;
  /** Per member: the highest message number from it applied here. */
  delivered: number[];
  /** Per member: how many messages this service sent it. */
  sent: number[];
  /** Per member: the highest message number it confirmed (through a `k` request). */
  confirmed: number[];
  /** Sent, not confirmed, in (to, n) order of emission. */
  outbox: OutboxItem[];
}

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const index = z
  .number()
  .int()
  .min(0)
  .max(MAX_MEMBERS - 1);
const count = z.number().int().min(1);

/** The wire body of a request to a causal service. */
export interface CausalRequest<Req> {
  /** The service's own request (absent in a confirmation). */
  b?: Req;
  /** The caller's causal context. */
  c?: Uint8Array;
  /** An outbound message: [sender member, n, sender's entry seq, index in that entry]. */
  o?: [number, number, number, number];
  /** A confirmation (the primary's runtime calling its own service): member `to` applied our messages up to `upTo`. */
  k?: { to: number; upTo: number };
}

/** The wire body of a reply from a causal service. */
export interface CausalReply<Rep> {
  b?: Rep;
  /** The service's causal context after the entry (its sends included). */
  c: Uint8Array;
  /** An outbound message already applied (a re-issue): the sender's messages here are applied up to `d`. */
  d?: number;
}

/** The wire schema of a causal request around the application's request schema (body, context, outbound message, confirmation). */
export function causalRequestSchema<Req>(inner: z.ZodType<Req>): z.ZodType<CausalRequest<Req>> {
  return z.object({
    b: inner.optional(),
    c: bytes.optional(),
    o: z.tuple([index, count, count, z.number().int().min(0)]).optional(),
    k: z.object({ to: index, upTo: count }).optional(),
  }) as unknown as z.ZodType<CausalRequest<Req>>;
}

/** The wire schema of a causal reply around the application's reply schema (body, context, delivered count). */
export function causalReplySchema<Rep>(inner: z.ZodType<Rep>): z.ZodType<CausalReply<Rep>> {
  return z.object({ b: inner.optional(), c: bytes, d: z.number().int().min(0).optional() }) as unknown as z.ZodType<CausalReply<Rep>>;
}

/** A causal service as @tandem/core runs it, plus the group it belongs to. */
export interface CausalService<State, Req, Rep> extends ServiceDefinition<CausalState<State>, CausalRequest<Req>, CausalReply<Rep>> {
  readonly causal: { readonly members: readonly string[]; readonly self: number };
}

/** The member services of a causal group. */
export interface CausalGroupSpec {
  /** The member services' names, in the same order everywhere (static membership). */
  members: readonly string[];
}

/** Index of a member service by name; throws TypeError when it is not in the group. */
export function memberIndex(members: readonly string[], name: string): number {
  const i = members.indexOf(name);
  if (i < 0) throw new TypeError(`service "${name}" is not a member of the causal group [${members.join(', ')}]`);
  return i;
}

/** Wrap a service definition as a member of a causal group of replicated services. */
export function causalService<State, Req, Rep>(
  def: CausalServiceDefinition<State, Req, Rep>,
  group: CausalGroupSpec,
): CausalService<State, Req, Rep> {
  const members = [...group.members];
  if (members.length > MAX_MEMBERS) throw new TypeError(`at most ${MAX_MEMBERS} members`);
  if (new Set(members).size !== members.length) throw new TypeError('member names must be unique');
  const self = memberIndex(members, def.name);
  const m = members.length;
  const zeros = (): number[] => new Array<number>(m).fill(0);

  const apply = (state: CausalState<State>, req: CausalRequest<Req>, ctx: ApplyContext): CausalReply<Rep> => {
    if (req.k !== undefined) {
      const { to, upTo } = req.k;
      if (to >= m || upTo > state.sent[to]!) throw new CausalProtocolError(`confirmation of message ${upTo} to member ${to}`);
      if (upTo > state.confirmed[to]!) state.confirmed[to] = upTo;
      state.outbox = state.outbox.filter((o) => o.to !== to || o.n > upTo);
      if (state.known.get(to, self) <= upTo) state.known.delete(to, self);
      return { c: state.known.encode() };
    }
    if (req.c !== undefined) state.known.merge(CausalContext.decode(req.c, m), self);
    let fromService: string | undefined;
    if (req.o !== undefined) {
      const [sender, n] = req.o;
      if (sender >= m || sender === self) throw new CausalProtocolError(`outbound message from member ${sender}`);
      const have = state.delivered[sender]!;
      if (n <= have) return { c: state.known.encode(), d: have }; // a re-issue: applied once already
      if (n !== have + 1) throw new CausalProtocolError(`message ${n} from ${members[sender]} sequenced after ${have}`);
      state.delivered[sender] = n;
      fromService = members[sender];
    }
    const sends: { to: number; body: unknown; wait: boolean }[] = [];
    const cctx: CausalApplyContext = {
      ...ctx,
      fromService,
      send(target: string, message: unknown, options?: { awaitReply?: boolean }): void {
        const to = memberIndex(members, target);
        if (to === self) throw new TypeError('a service cannot send an outbound message to itself');
        sends.push({ to, body: message, wait: options?.awaitReply === true });
      },
    };
    let body: Rep | undefined;
    if (req.b !== undefined) body = def.apply(state.inner, req.b, cctx);
    // Committed only now (apply did not throw): each message carries the context with its predecessors.
    sends.forEach((s, i) => {
      const n = ++state.sent[s.to]!;
      state.outbox.push({ to: s.to, n, seq: ctx.seq, index: i, body: s.body, c: state.known.encode(), wait: s.wait });
      state.known.raise(s.to, self, n);
    });
    const rep: CausalReply<Rep> = { c: state.known.encode() };
    if (body !== undefined) rep.b = body;
    return rep;
  };

  const service: CausalService<State, Req, Rep> = {
    name: def.name,
    ...(def.version !== undefined ? { version: def.version } : {}),
    request: causalRequestSchema(def.request),
    reply: causalReplySchema(def.reply),
    causal: { members, self },
    initialState: () => ({
      inner: def.initialState(),
      known: new CausalContext(),
      delivered: zeros(),
      sent: zeros(),
      confirmed: zeros(),
      outbox: [],
    }),
    apply,
    snapshot: (s) => ({
      inner: def.snapshot(s.inner),
      known: s.known.entries(),
      delivered: [...s.delivered],
      sent: [...s.sent],
      confirmed: [...s.confirmed],
      outbox: s.outbox.map((o) => ({ ...o })),
    }),
    restore(snap) {
      const s = snap as {
        inner: unknown;
        known: [number, number, number][];
        delivered: number[];
        sent: number[];
        confirmed: number[];
        outbox: OutboxItem[];
      };
      return {
        inner: def.restore(s.inner),
        known: CausalContext.fromEntries(s.known),
        delivered: [...s.delivered],
        sent: [...s.sent],
        confirmed: [...s.confirmed],
        outbox: s.outbox.map((o) => ({ ...o })),
      };
    },
  };
  if (def.digest !== undefined) {
    const innerDigest = def.digest;
    service.digest = (s) =>
      `${innerDigest(s.inner)}:${s.known.encode().join('.')}:${s.delivered.join('.')}:${s.sent.join('.')}:${s.confirmed.join('.')}:${s.outbox.length}`;
  }
  return service;
}

/**
 * The admission rule (ReplicaHooks.admit): a request is sequenced only once every message addressed to this
 * service in its causal past was applied here; an outbound message also only after its predecessor on the
 * same pair (FIFO). A malformed body is admitted (the apply rejects it).
 */
export function causallyReady(body: unknown, state: CausalState<unknown>, self: number, members: number): boolean {
  if (typeof body !== 'object' || body === null) return true;
  const { c, o } = body as { c?: unknown; o?: unknown };
  if (Array.isArray(o) && typeof o[0] === 'number' && typeof o[1] === 'number') {
    const have = state.delivered[o[0]];
    if (have !== undefined && o[1] > have + 1) return false;
  }
  if (c instanceof Uint8Array) {
    let ctx: CausalContext;
    try {
      ctx = CausalContext.decode(c, members);
    } catch {
      return true;
    }
    for (const [d, s, n] of ctx.entries()) if (d === self && n > (state.delivered[s] ?? 0)) return false;
  }
  return true;
}
