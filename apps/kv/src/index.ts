/**
 * @tandem/kv — a replicated key-value store and lock/lease arbiter built only on the public API of
 * @tandem/core; the library behind the `tandem-kv` command.
 *
 * @packageDocumentation
 */
export * from './schema.js';
export {
  kvService,
  applyKv,
  initialKvState,
  KV_SERVICE_NAME,
  FencingError,
  LockLostError,
  NotAnIntegerError,
  type KvState,
  type Lease,
} from './service.js';
export {
  kvServiceV2,
  applyKvV2,
  kvMigrationV1toV2,
  kvServiceVersion,
  KV_SERVICE_VERSIONS,
  type KvStateV2,
  type StoredValue,
  type LockState,
  type KvServiceDefinition,
  type KvServiceVariant,
} from './service.js';
export {
  rollingUpgrade,
  UpgradeError,
  type UpgradeControl,
  type UpgradeOptions,
  type UpgradePhase,
  type UpgradeResult,
} from './commands/upgrade.js';
export { probeReplica } from './role-probe.js';
export { createTransportRegistry, addressFor, UsageError } from './transports.js';
export { requestFromWords } from './commands/call.js';
export { kvShardKey, hashTag } from './shards.js';
