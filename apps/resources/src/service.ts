/**
 * The two replicated services of the first patent's FIG. 4a/4b: the resource handler (Pro2) allocates a
 * resource and tells the resource (Pro3) to initialise it; the resource serves uses of initialised
 * resources only. Both are members of one causal group (@tandem/causal/replication), each run as a
 * primary/backup pair (@tandem/core).
 */
import { causalService } from '@tandem/causal/replication';
import { defineService } from '@tandem/core';
import { z } from 'zod';

/** The resource handler's service name (Pro2). */
export const HANDLER = 'resource-handler';
/** The resource's service name (Pro3). */
export const RESOURCE = 'resource';
/** The causal group: the same list, in the same order, in every process. */
export const MEMBERS = [HANDLER, RESOURCE] as const;

/** FIG. 4a (the handler replies after the resource answered) or FIG. 4b (it replies at once). */
export type Flow = '4a' | '4b';

/** The resource handler's request schema: allocate a resource (by flow), or list allocations. */
export const handlerRequest = z.discriminatedUnion('op', [
  /** Allocate resource `id`. 4b: reply at once, initialise concurrently; 4a: reply after the resource answered. */
  z.object({ op: z.literal('alloc'), id: z.string().min(1).max(256), flow: z.enum(['4a', '4b']) }),
  z.object({ op: z.literal('list') }),
]);
/** A request to the resource handler. */
export type HandlerRequest = z.infer<typeof handlerRequest>;
/** The resource handler's reply schema: whether the resource was available, its id, the count allocated. */
export const handlerReply = z.object({ available: z.boolean(), id: z.string().optional(), allocated: z.number() });
/** A reply of the resource handler. */
export type HandlerReply = z.infer<typeof handlerReply>;

/** The resource handler's state: the allocated resource ids. */
export interface HandlerState {
  allocated: Set<string>;
}

/** Thrown (as an application error) for a second allocation of the same id. */
export class AlreadyAllocatedError extends Error {
  static override readonly name = 'AlreadyAllocatedError';
  override readonly name = 'AlreadyAllocatedError';
}

/** Thrown (as an application error) when a resource is used before its initialisation was applied. */
export class NotInitialisedError extends Error {
  static override readonly name = 'NotInitialisedError';
  override readonly name = 'NotInitialisedError';
}

/** The resource handler (Pro2): allocates a resource and tells the resource service to initialise it. */
export const handlerService = causalService<HandlerState, HandlerRequest, HandlerReply>(
  {
    name: HANDLER,
    request: handlerRequest,
    reply: handlerReply,
    initialState: () => ({ allocated: new Set() }),
    apply(state, req, ctx) {
      if (req.op === 'list') return { available: false, allocated: state.allocated.size };
      if (state.allocated.has(req.id)) throw new AlreadyAllocatedError(`resource ${req.id} is already allocated`);
      state.allocated.add(req.id);
      // Sent before the reply (step 408 before 407): Pro1's next message to the resource depends on it.
      ctx.send(RESOURCE, { op: 'init', id: req.id, by: HANDLER }, { awaitReply: req.flow === '4a' });
      return { available: true, id: req.id, allocated: state.allocated.size };
    },
    snapshot: (s) => ({ allocated: [...s.allocated] }),
    restore: (v) => ({ allocated: new Set((v as { allocated: string[] }).allocated) }),
  },
  { members: MEMBERS },
);

/** The resource's request schema: initialise, use, or inspect a resource. */
export const resourceRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('init'), id: z.string().min(1).max(256), by: z.string().max(256) }),
  z.object({ op: z.literal('use'), id: z.string().min(1).max(256), data: z.string().max(4096).optional() }),
  /** How many times `id` was initialised and used, and where its initialisation is in the order. */
  z.object({ op: z.literal('inspect'), id: z.string().min(1).max(256) }),
]);
/** A request to the resource service. */
export type ResourceRequest = z.infer<typeof resourceRequest>;
/** The resource's reply schema: how often the resource was initialised and used, and where in the order. */
export const resourceReply = z.object({
  id: z.string(),
  inits: z.number(),
  uses: z.number(),
  /** inspect: the position (seq) of the first initialisation and of the first use, 0 if none. */
  initSeq: z.number().optional(),
  firstUseSeq: z.number().optional(),
});
/** A reply of the resource service. */
export type ResourceReply = z.infer<typeof resourceReply>;

/** What the resource service knows of one resource: initialisations, uses, and their seqs. */
export interface ResourceRecord {
  inits: number;
  uses: number;
  initSeq: number;
  firstUseSeq: number;
}

/** The resource service's state: a record per resource id. */
export interface ResourceState {
  resources: Map<string, ResourceRecord>;
}

/** The resource (Pro3): serves uses of initialised resources only. */
export const resourceService = causalService<ResourceState, ResourceRequest, ResourceReply>(
  {
    name: RESOURCE,
    request: resourceRequest,
    reply: resourceReply,
    initialState: () => ({ resources: new Map() }),
    apply(state, req, ctx) {
      let r = state.resources.get(req.id);
      if (req.op === 'inspect')
        return { id: req.id, inits: r?.inits ?? 0, uses: r?.uses ?? 0, initSeq: r?.initSeq ?? 0, firstUseSeq: r?.firstUseSeq ?? 0 };
      if (req.op === 'init') {
        if (r === undefined) {
          r = { inits: 0, uses: 0, initSeq: ctx.seq, firstUseSeq: 0 };
          state.resources.set(req.id, r);
        }
        if (r.initSeq === 0) r.initSeq = ctx.seq;
        r.inits++; // counted, not capped: a second application would show
        return { id: req.id, inits: r.inits, uses: r.uses };
      }
      if (r === undefined || r.inits === 0) {
        // Recorded, so a use that overtook the initialisation is visible in `inspect`.
        state.resources.set(req.id, { inits: 0, uses: 0, initSeq: 0, firstUseSeq: ctx.seq });
        throw new NotInitialisedError(`resource ${req.id} used before its initialisation`);
      }
      r.uses++;
      if (r.firstUseSeq === 0) r.firstUseSeq = ctx.seq;
      return { id: req.id, inits: r.inits, uses: r.uses };
    },
    snapshot: (s) => [...s.resources],
    restore: (v) => ({ resources: new Map((v as [string, ResourceRecord][]).map(([k, r]) => [k, { ...r }])) }),
  },
  { members: MEMBERS },
);

/** A plain counter (no causal layer), and the same counter as a one-member causal service: the benchmark's
 * measure of what the causal metadata and hooks cost on a plain replicated call. */
const counterDefinition = {
  name: 'counter',
  request: z.object({ op: z.literal('incr'), by: z.number().int() }),
  reply: z.object({ value: z.number() }),
  initialState: () => ({ value: 0 }),
  apply: (state: { value: number }, req: { op: 'incr'; by: number }) => {
    state.value += req.by;
    return { value: state.value };
  },
  snapshot: (s: { value: number }) => s.value,
  restore: (v: unknown) => ({ value: v as number }),
};
/** A plain replicated counter (no causal layer), for the benchmark. */
export const counterService = defineService(counterDefinition);
/** The same counter as a one-member causal service, to measure the causal layer's cost. */
export const causalCounterService = causalService(counterDefinition, { members: ['counter'] });
