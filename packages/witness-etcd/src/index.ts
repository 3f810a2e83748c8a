/**
 * @tandem/witness-etcd — a replica `Witness` backed by etcd v3 (ownership of a pair's key, fenced by epoch
 * and revision in one transaction, held by a lease), and a shard map kept in an etcd key and watched.
 *
 * @packageDocumentation
 */
export {
  EtcdWitness,
  DEFAULT_LEASE_TTL_S,
  HOLD_FRACTION,
  KEEPALIVES_PER_TTL,
  type EtcdWitnessOptions,
  type EtcdWitnessStatus,
} from './witness.js';
export {
  EtcdShardMap,
  writeShardMap,
  validateShardMap,
  ShardMapError,
  parseShardMap,
  type Shard,
  type ShardMap,
  type ShardMapSource,
  type EtcdShardMapOptions,
} from './shard-map.js';
export { parseWitnessUrl, type WitnessUrl, type EtcdTlsOptions } from './url.js';
export {
  WitnessUnavailableError,
  WitnessUrlError,
  WitnessClosedError,
  WITNESS_ETCD_ERROR_NAMES,
  isWitnessEtcdError,
  type WitnessEtcdErrorName,
} from './errors.js';
