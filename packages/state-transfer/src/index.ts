/**
 * @tandem/state-transfer — bring a restarted or upgraded replica up to date while the other keeps serving: a
 * snapshot streamed in checksummed chunks, the log after it from a bounded backlog, a digest check,
 * resumption, versioned state with migrations, progress events.
 *
 * @packageDocumentation
 */
export { StateTransferServer, type StateTransferServerOptions, type StateTransferServerEvent } from './protocol/server.js';
export { StateTransferClient, type StateTransferClientOptions, type StateTransferClientEvent, type JoinResult } from './protocol/client.js';
export { ServiceHost, type HostedService, type HostEntry, type ServiceHostOptions } from './host.js';
export { SnapshotMap, type MapRecord, type SnapshotMapOptions } from './maps/snapshot-map.js';
export { mapSnapshotSupport, slabMapSupport, type MapSnapshotSupport } from './maps/map-service.js';
export { SlabMap, RECORD_HEADER, type SlabMapOptions, type SlabMapBuilder } from './maps/slab-map.js';
export type { PackedSlice, TextSlice } from './maps/record-codec.js';
export { ReplicationBacklog, type BacklogOptions, type BacklogView, type LogEntry } from './backlog.js';
export type { TransferSource, TransferSink, CapturedState, CapturedStateBody, InstalledState, StateHead } from './source.js';
export {
  serviceVersion,
  supportsChunks,
  isPackedCursor,
  type PackedSnapshotCursor,
  type PackedResult,
  type SnapshotCursor,
  type StateBuilder,
  type StateMigration,
  type TransferableService,
} from './transferable.js';
export { migrationPath, migrateRecords, migrateSnapshot, type TransferFormat } from './migrations.js';
export {
  ProgressMeter,
  formatProgress,
  progressBar,
  type TransferProgress,
  type TransferPhase,
  type ProgressOutput,
} from './protocol/progress.js';
export { chunkChecksum, WholeStateChecksum } from './protocol/checksum.js';
export { decodeMessage, encodeMessage, transferMessageSchema, type TransferMessage } from './protocol/messages.js';
export type { TransferEnv } from './env.js';
export * from './errors.js';
export { nodeTransferEnv, withImmediateYield } from './node-env.js';
export { lowerJoinerPriority, JOINER_NICE_DELTA } from './node-priority.js';
export { yieldToEventLoop } from './env.js';
export { versionedStateSync } from './replica/replica-sync.js';
export {
  streamingStateSync,
  type StreamingStateSync,
  type StreamingStateSyncOptions,
  type StreamingStateSyncEvent,
  type StreamingServerSettings,
  type StreamingClientSettings,
} from './replica/streaming-state-sync.js';
export {
  serveTransfersInWorker,
  type TransferWorker,
  type TransferWorkerOptions,
  type WorkerServerSettings,
  type WorkerThreadSettings,
  type WorkerTransportSpec,
} from './worker/worker-server.js';
export { isShareableCursor, type ShareableSnapshotCursor, type SharedSnapshotPlan } from './maps/slab-cursor.js';
