/**
 * @tandem/transport — the transport contract (dial, listen, message-framed connections, typed errors, an
 * address-scheme registry), stream framing, a connection base for adapters, and an in-memory transport with
 * fault injection.
 *
 * @packageDocumentation
 */
export * from './types.js';
export * from './errors.js';
export * from './registry.js';
export * from './framing.js';
export * from './base-connection.js';
export * from './accept-queue.js';
export {
  MEMORY_SCHEME,
  MemoryNetwork,
  createMemoryNetwork,
  memory,
  parseMemoryAddress,
  type MemoryDialOptions,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
} from './memory/network.js';
export { MemoryConnection } from './memory/connection.js';
export { RawMemoryPeer } from './memory/raw.js';
export {
  NO_FAULTS,
  defaultSchedule,
  hostOf,
  type LinkFaults,
  type RandomSource,
  type Schedule,
  type ScheduledTask,
} from './memory/faults.js';
