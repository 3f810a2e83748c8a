/**
 * @tandem/causal/replication — replicated services that call replicated services (FIG. 4b), on the
 * generic hooks of @tandem/core (ReplicaHooks: admit, afterApply). Needs @tandem/core and zod (optional
 * peer dependencies of @tandem/causal: the main entry point works without them). docs/CAUSAL.md.
 *
 * @packageDocumentation
 */
export { CausalContext, MAX_MEMBERS } from './context.js';
export {
  causalService,
  causallyReady,
  causalReplySchema,
  causalRequestSchema,
  memberIndex,
  type CausalApplyContext,
  type CausalGroupSpec,
  type CausalReply,
  type CausalRequest,
  type CausalService,
  type CausalServiceDefinition,
  type CausalState,
  type OutboxItem,
} from './service.js';
export { CausalRuntime, createCausalReplica, type CausalReplicaOptions, type CausalRuntimeOptions } from './runtime.js';
export { CausalSession, type CausalClient } from './client.js';
