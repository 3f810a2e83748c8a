/**
 * What a service offers state transfer. Every Tandem service has the whole-state `snapshot()` /
 * `restore()` pair (the fallback: one encoded blob, streamed in chunks). A service whose state is large
 * adds the incremental pair `snapshotChunks()` / `restoreChunks()`: a cursor over a consistent view of
 * the state taken in O(1) while the service keeps applying requests (e.g. `SnapshotMap`'s copy-on-write
 * buckets), and a builder that rebuilds a state from the cursor's records.
 *
 * Versioning: `version` is the state format version; `migrations` convert an older version's state
 * (per record for chunked transfers, whole snapshot for blob transfers) so a new-version replica can
 * receive an old-version state (rolling upgrade).
 */
import type { PackedSlice, TextSlice } from './maps/record-codec.js';

/** A consistent, forward-only view of a state at the moment it was opened. */
export interface SnapshotCursor {
  /**
   * The next records (at most `maxRecords`, at least one), or undefined when the view is exhausted.
   * With `recordWidth` W > 1 the array is flat: W consecutive items form one record (k1, v1, k2, v2, …
   * for a map), which encodes and decodes several times faster than an array of small arrays.
   * The array is the caller's only until the next call: a cursor may reuse it (SnapshotMap does, so a
   * transfer allocates no array per slice on the serving replica).
   */
  next(maxRecords: number): unknown[] | undefined;
  /** Items per record in what `next` returns (default 1). */
  readonly recordWidth?: number;
  /** Number of records in the whole view when known (for progress percent). */
  readonly totalRecords?: number;
  /** Release the copy-on-write bookkeeping. Idempotent; a closed cursor yields nothing more. */
  close(): void;
}

/** What `nextPacked` wrote: `records` whole records in `bytes` bytes; `needBytes` when none fit. */
export interface PackedResult {
  records: number;
  bytes: number;
  /** Set when `records` is 0: room the next record needs. */
  needBytes?: number;
}

/** A SnapshotCursor that can also copy its records as packed bytes (SlabMap's cursor). */
export interface PackedSnapshotCursor extends SnapshotCursor {
  /**
   * Copy the next whole records, packed (`keyLength u32 LE, valueLength u32 LE, key, value`, back to
   * back; see record-codec.ts), into `target` from `at` on, at most `room` bytes; undefined when the
   * view is exhausted.
   */
  nextPacked(target: Uint8Array, at: number, room: number): PackedResult | undefined;
}

/** True when the cursor can also produce pre-encoded chunks (`nextPacked`). */
export function isPackedCursor(c: SnapshotCursor): c is PackedSnapshotCursor {
  return typeof (c as Partial<PackedSnapshotCursor>).nextPacked === 'function';
}

/** Rebuilds a state from records, in the order a cursor produced them (flat, like the cursor's). */
export interface StateBuilder<State> {
  /** Items per record `add` expects (must equal the sending cursor's recordWidth; default 1). */
  readonly recordWidth?: number;
  /** Add the next records (flat: recordWidth items per record). */
  add(records: readonly unknown[]): void;
  /**
   * Optional fast path: the same records as one text slice straight from a received chunk (every item
   * an ASCII string; see record-codec.ts). Used instead of `add` when present and no migration runs.
   */
  addText?(slice: TextSlice): void;
  /**
   * Optional fast path: string → string records as a packed slice (keyLength, valueLength, key, value
   * bytes; see record-codec.ts), e.g. copied as is into a SlabMap. Used instead of `add` when present
   * and no migration runs; the strings' UTF-8 is not checked yet (the builder must).
   */
  addPacked?(slice: PackedSlice): void;
  /** Optional: the number of records the snapshot holds (told before the first record), to size once. */
  expect?(totalRecords: number): void;
  /** The rebuilt state, once every record was added. */
  finish(): State;
}

/** Converts state of version `from` to version `from + 1` (chain them for larger gaps). */
export interface StateMigration {
  from: number;
  /** Per record of a chunked transfer; return undefined to drop the record. With a record width W > 1
   * the record is an array of its W items, and the result must be one too. */
  record?(record: unknown): unknown;
  /** The whole `snapshot()` value of a blob transfer. */
  snapshot?(snapshot: unknown): unknown;
}

/** The part of a service definition state transfer uses (a @tandem/core ServiceDefinition fits). */
export interface TransferableService<State> {
  name: string;
  /** State format version, default 1. */
  version?: number;
  /** The whole state as one serialisable value. */
  snapshot(state: State): unknown;
  /** A state from a `snapshot` result. */
  restore(snapshot: unknown): State;
  /** Optional incremental snapshot: open a cursor over `state` as it is now, in O(1). */
  snapshotChunks?(state: State): SnapshotCursor;
  /** Optional incremental restore (required when snapshotChunks is present). */
  restoreChunks?(): StateBuilder<State>;
  /** Migrations from older versions, one per step (from → from + 1). */
  migrations?: readonly StateMigration[];
}

/** A service's state format version: `version`, default 1. */
export function serviceVersion(service: { version?: number }): number {
  return service.version ?? 1;
}

/** True when the service can stream its state as records. */
export function supportsChunks<S>(service: TransferableService<S>): boolean {
  return typeof service.snapshotChunks === 'function' && typeof service.restoreChunks === 'function';
}
