/**
 * The caller's side (Pro1): a `CausalSession` is the causal context of one process that calls causal
 * services; every call carries it and merges the reply's, so a request to Pro3 made after Pro2's reply
 * depends on Pro2's message to Pro3 (FIG. 4b). Ordinary clients stay outside the group: no member index,
 * no counters, only the context (docs/CAUSAL.md).
 */
import type { CallResult, Client } from '@tandem/core';
import { CausalContext } from './context.js';
import { type CausalReply, type CausalRequest, memberIndex } from './service.js';

/** A client of one member service that carries and merges the session's causal context on every call. */
export interface CausalClient<Req, Rep> {
  readonly target: string;
  /** Call the member; resolves with its reply once it applied every message in this session's causal past addressed to it. */
  call(request: Req): Promise<Rep>;
  /** Like `call`, with the sequence number and epoch the reply was applied at. */
  callWithInfo(request: Req): Promise<CallResult<Rep>>;
  /** Close the underlying core client. */
  close(): Promise<void>;
}

/** A client-side causal session across the member services: one causal context shared by its clients. */
export class CausalSession {
  readonly members: readonly string[];
  readonly context = new CausalContext();
  /** Bytes of context sent and received so far (for overhead measurements). */
  bytes = { sent: 0, received: 0 };

  constructor(members: readonly string[]) {
    this.members = [...members];
  }

  /** Calls to member `target` through `client` (a core client built with the causal service's schemas). */
  client<Req, Rep>(client: Client<CausalRequest<Req>, CausalReply<Rep>>, target: string): CausalClient<Req, Rep> {
    const to = memberIndex(this.members, target);
    const callWithInfo = async (request: Req): Promise<CallResult<Rep>> => {
      const sent = this.context.size > 0 ? this.context.clone() : undefined;
      const body: CausalRequest<Req> = { b: request };
      if (sent !== undefined) {
        body.c = sent.encode();
        this.bytes.sent += body.c.length;
      }
      const r = await client.callWithInfo(body);
      this.bytes.received += r.reply.c.length;
      // The reply proves `target` applied every message to it in what we sent.
      if (sent !== undefined)
        for (const [d, s, n] of sent.entries()) if (d === to && this.context.get(d, s) <= n) this.context.delete(d, s);
      this.context.merge(CausalContext.decode(r.reply.c, this.members.length), to);
      return { reply: r.reply.b as Rep, seq: r.seq, epoch: r.epoch };
    };
    return {
      target,
      callWithInfo,
      call: async (request) => (await callWithInfo(request)).reply,
      close: () => client.close(),
    };
  }
}
