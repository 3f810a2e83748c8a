/**
 * The two seams of the transfer engine: the serving side's `TransferSource` (captures a consistent
 * snapshot at its current seq, keeps the catch-up backlog, reports its digest) and the joiner's
 * `TransferSink` (installs the snapshot, applies log entries, reports its digest). `ServiceHost`
 * implements both for a service run outside @tandem/core; the replica integration implements them
 * over the replica's own state.
 */
import type { BacklogView, LogEntry } from './backlog.js';
import type { TransferFormat } from './migrations.js';
import type { SnapshotCursor } from './transferable.js';

/** A captured state's body: a record cursor, or an encoded blob. */
export type CapturedStateBody = { format: 'records'; cursor: SnapshotCursor } | { format: 'blob'; bytes: Uint8Array };

/** A snapshot fixed at `seq`: the state (a cursor or an encoded blob) and auxiliary replicated data. */
export interface CapturedState {
  seq: number;
  epoch: number;
  /** State format version of what the cursor/blob yields. */
  version: number;
  body: CapturedStateBody;
  /** Other replicated data fixed at `seq` (e.g. the exactly-once window), msgpack-encodable. */
  aux?: unknown;
}

/** The seq and state digest of a replica at one instant. */
export interface StateHead {
  seq: number;
  digest: string;
}

/** What a transfer server reads from: service identity, snapshots at a seq, the head, and the backlog. */
export interface TransferSource {
  readonly serviceName: string;
  readonly version: number;
  /** True when `capture('records')` is possible (the service has snapshotChunks/restoreChunks). */
  readonly canStreamRecords: boolean;
  /** Entries after any captured seq, for catch-up. Every applied entry must be appended to it. */
  readonly backlog: BacklogView<LogEntry>;
  /** Fix S = the current seq and open a consistent view of the state at S. Synchronous. */
  capture(format: TransferFormat): CapturedState;
  /** The current seq and state digest. Synchronous (called right after the last log entry is sent). */
  head(): StateHead;
  /**
   * Optional, for a source whose state moves on another thread (serveTransfersInWorker): the entries
   * after `seq` and the head, taken at one instant. `head` is undefined when more than `max` entries
   * follow `seq` (then only the first `max` are returned). Without it, the server reads the backlog
   * up to its last seq and calls head() in the same turn.
   */
  headAfter?(seq: number, max: number): { entries: LogEntry[]; head?: StateHead };
}

/** What the joiner receives, in order: one snapshot, then log entries, then a digest check. */
export interface InstalledState<State> {
  seq: number;
  epoch: number;
  /** The version of `state` (the joiner's version: migrations have run). */
  version: number;
  /** The version the server sent (older when migrated). */
  sourceVersion: number;
  state: State;
  aux: unknown;
}

/** Where a joiner puts the transferred state and the entries after it. */
export interface TransferSink<State> {
  /** Replace the state with a transferred one. */
  install(installed: InstalledState<State>): void;
  /** Apply entries (contiguous, in seq order, starting at the current seq + 1). */
  apply(entries: readonly LogEntry[]): void;
  /** The current seq, epoch and digest. */
  head(): StateHead;
}
