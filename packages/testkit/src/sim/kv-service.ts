/**
 * A small deterministic key-value service for simulation runs: get / put / append on string values.
 * It also counts how many times each (clientId, requestId) was applied — inside the replicated state, so
 * the count survives failover — which is how a run proves that nothing was applied twice.
 */
import { defineService, type ServiceDefinition } from '@tandem/core';
import { z } from 'zod';

/** The simulated key-value service's request schema: get, put, append. */
export const simKvRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('get'), key: z.string() }),
  z.object({ op: z.literal('put'), key: z.string(), value: z.string() }),
  z.object({ op: z.literal('append'), key: z.string(), value: z.string() }),
]);
/** A request of the simulated key-value service. */
export type SimKvRequest = z.infer<typeof simKvRequest>;

/** The value of the key after the operation (for get: the value read); null = absent. */
export const simKvReply = z.object({ value: z.string().nullable() });
/** A reply of the simulated key-value service. */
export type SimKvReply = z.infer<typeof simKvReply>;

/** The simulated key-value service's state: the data and how often each request was applied. */
export interface SimKvState {
  data: Map<string, string>;
  /** "clientId/requestId" → times applied. */
  applications: Map<string, number>;
}

interface SimKvSnapshot {
  data: [string, string][];
  applications: [string, number][];
}

/** The key-value service the simulator replicates (get/put/append, counting applications to catch duplicates). */
export function createSimKvService(name = 'sim-kv'): ServiceDefinition<SimKvState, SimKvRequest, SimKvReply> {
  return defineService<SimKvState, SimKvRequest, SimKvReply>({
    name,
    version: 1,
    request: simKvRequest,
    reply: simKvReply,
    initialState: () => ({ data: new Map(), applications: new Map() }),
    apply(state, req, ctx) {
      const id = `${ctx.clientId}/${ctx.requestId}`;
      state.applications.set(id, (state.applications.get(id) ?? 0) + 1);
      switch (req.op) {
        case 'get':
          return { value: state.data.get(req.key) ?? null };
        case 'put':
          state.data.set(req.key, req.value);
          return { value: req.value };
        case 'append': {
          const v = (state.data.get(req.key) ?? '') + req.value;
          state.data.set(req.key, v);
          return { value: v };
        }
      }
    },
    snapshot: (state): SimKvSnapshot => ({ data: [...state.data], applications: [...state.applications] }),
    restore(snapshot) {
      const s = snapshot as SimKvSnapshot;
      return { data: new Map(s.data), applications: new Map(s.applications) };
    },
  });
}

/** Requests applied more than once, from a replica's state. */
export function duplicateApplications(state: SimKvState): { request: string; times: number }[] {
  const out: { request: string; times: number }[] = [];
  for (const [request, times] of state.applications) if (times > 1) out.push({ request, times });
  return out;
}
