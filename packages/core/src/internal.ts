/**
 * `@tandem/core/internal` — INTERNAL: what the sibling packages of this repository (@tandem/state-transfer,
 * @tandem/testkit, apps/kv, tools) share with the core so that there is one implementation of each:
 * the msgpack codec, the hashes and PRNG, the wire schemas, the apply context and service runner, the
 * handshake, and the simulator's fault hooks. No stability promise: it changes with the core.
 */
export { codec, encodeValue, decodeValue, decodeValues, packEncoded, decodeEntries, type Codec } from './codec.js';
export { fnv1a64 } from './hash.js';
export { mulberry32 } from './prng.js';
export * from './messages.js';
export {
  ServiceRunner,
  applyContext,
  drawSeed,
  serviceDigest,
  replyDigest,
  type ContextFields,
  type EntryFields,
  type Outcome,
  type Snapshot,
} from './service.js';
export { DedupTable, isExpired, type DedupRecord } from './dedup.js';
export { dialHandshake, type DialAuth } from './handshake.js';
export { remainderOf } from './link.js';
export { invariant } from './errors.js';
export { BROKEN_VARIANTS, faultHooksFor, installFaultHooks, NO_FAULT_HOOKS, type BrokenVariant, type FaultHooks } from './fault-hooks.js';
