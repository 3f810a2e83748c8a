/**
 * @tandem/core — what an application needs: define a service, run replicas and clients, configure and
 * bound them, recognise errors, secure and operate a pair, plug in a StateSync strategy. Helpers for the
 * sibling packages (codec, hashes, wire schemas, the apply context, fault hooks) are in the explicitly
 * internal entry point `@tandem/core/internal` and may change without notice.
 *
 * @packageDocumentation
 */
export type * from './api.js';
export * from './env.js';
export { nodeEnv, stderrLogger, type NodeEnvOptions } from './node-env.js';
export { createReplica } from './replica.js';
export { createClient, type ClientDiagnostics } from './client.js';
export {
  createShardedClient,
  createShardMapSource,
  rendezvousShard,
  validateShardMap,
  ShardMapError,
  type ShardMap,
  type ShardSpec,
  type ShardMapSource,
  type ShardedClient,
  type ShardedClientOptions,
} from './sharded-client.js';
export { defineService, valueDigest } from './service.js';
export {
  resolveConfig,
  computeTimingBounds,
  computeWitnessBounds,
  replicationConfigSchema,
  DEFAULT_REPLICATION_CONFIG,
  type DerivedTimingBounds,
  type WitnessTimingBounds,
} from './config.js';
export {
  ServiceUnavailableError,
  ApplicationError,
  InvalidRequestError,
  ProtocolViolationError,
  ConfigError,
  StaleEpochError,
  StoppedError,
  DivergenceError,
  InvariantError,
  CORE_ERROR_NAMES,
  isCoreError,
  errorName,
  type CoreErrorName,
} from './errors.js';
export { wholeStateSync } from './state-sync.js';
export type {
  ReplicaMetricsSink,
  ReplicaRequestOutcome,
  ForwardResult,
  ConnectionKind,
  ClientMetricsSink,
  ClientCallOutcome,
} from './metrics.js';
export { coreVersion } from './version.js';
export {
  isLoopbackAddress,
  InsecureListenError,
  resolveSecurity,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type ResolvedSecurity,
} from './security.js';
export { KeyError, KeyRing, MIN_KEY_BYTES, parseKeyFile, formatKeyFile } from './auth.js';
export { AuthenticationError } from './handshake.js';
export { replicaStatus, promoteReplica, type OperatorOptions } from './operator.js';
/** The wire messages' types (their zod schemas are internal). */
export type {
  Message,
  MessageType,
  Entry,
  Hello,
  Req,
  Rep,
  NotPrimary,
  Fwd,
  FwdAck,
  Flush,
  FlushAck,
  StatusReply,
  StateReq,
  StateSnap,
  Drop,
  DropAck,
  AuthChallenge,
  AuthProof,
  AuthRefused,
  AuthRefusalCode,
  RemoteError,
  DedupRecordWire,
} from './messages.js';
