/**
 * Pro1: ask the resource handler for a resource, then use it at the resource — one causal session, so the
 * use carries the dependency on the handler's initialisation message (FIG. 4b).
 */
import { CausalSession, type CausalClient } from '@tandem/causal/replication';
import { createClient, type Env, type ReplicationConfig } from '@tandem/core';
import {
  type Flow,
  HANDLER,
  type HandlerReply,
  type HandlerRequest,
  handlerService,
  MEMBERS,
  RESOURCE,
  type ResourceReply,
  type ResourceRequest,
  resourceService,
} from './service.js';

/** Pro1 of FIG. 4: one causal session with clients of the handler and of the resource. */
export interface Pro1 {
  readonly session: CausalSession;
  readonly handler: CausalClient<HandlerRequest, HandlerReply>;
  readonly resource: CausalClient<ResourceRequest, ResourceReply>;
  /** Close both clients. */
  close(): Promise<void>;
}

/** A Pro1 whose clients call the handler and resource pairs at these addresses. */
export function createPro1(
  env: Env,
  servers: { handler: readonly [string, string]; resource: readonly [string, string] },
  config?: Partial<ReplicationConfig>,
): Pro1 {
  const session = new CausalSession(MEMBERS);
  const cfg = config ? { config } : {};
  const handler = session.client(
    createClient({ service: handlerService, env, servers: [servers.handler[0], servers.handler[1]], ...cfg }),
    HANDLER,
  );
  const resource = session.client(
    createClient({ service: resourceService, env, servers: [servers.resource[0], servers.resource[1]], ...cfg }),
    RESOURCE,
  );
  return {
    session,
    handler,
    resource,
    close: async () => {
      await Promise.all([handler.close(), resource.close()]);
    },
  };
}

/** One allocate-then-use round: the resource id, the flow, Pro1's latencies, and the use count the resource reported. */
export interface FlowResult {
  id: string;
  flow: Flow;
  /** Pro1's time from asking the handler to having the handler's answer, and to having the resource's answer to its use. */
  allocMs: number;
  totalMs: number;
  uses: number;
}

/** One round: allocate `id` (flow 4a or 4b), then use it. */
export async function allocateAndUse(pro1: Pro1, id: string, flow: Flow, now: () => number): Promise<FlowResult> {
  const t0 = now();
  await pro1.handler.call({ op: 'alloc', id, flow });
  const t1 = now();
  const use = await pro1.resource.call({ op: 'use', id, data: 'hello' });
  const t2 = now();
  return { id, flow, allocMs: t1 - t0, totalMs: t2 - t0, uses: use.uses };
}
