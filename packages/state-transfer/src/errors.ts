/**
 * Typed errors of state transfer. One convention for all of them (the same as @tandem/transport's): a
 * flat class extending Error, with a static `name` and the same instance `name`, and a stable `code`.
 * Recognise them with `isStateTransferError(err, 'DigestMismatchError')`, which checks the name and
 * its code and survives two copies of the package in one install; `instanceof` works too when there is
 * only one copy.
 */
export type StateTransferErrorName =
  | 'TransferProtocolError'
  | 'ChecksumMismatchError'
  | 'BacklogOverrunError'
  | 'DigestMismatchError'
  | 'VersionMismatchError'
  | 'MigrationError'
  | 'TransferAbortedError'
  | 'TransferFailedError'
  | 'TransferWorkerError';

interface CauseOptions {
  cause?: unknown;
}

/** A message that is not valid for the transfer protocol (bad bytes, bad shape, wrong order). */
export class TransferProtocolError extends Error {
  static override readonly name = 'TransferProtocolError';
  override readonly name = 'TransferProtocolError';
  readonly code = 'ERR_TRANSFER_PROTOCOL';
  constructor(message: string, options?: CauseOptions) {
    super(message, options);
  }
}

/** A chunk, or the whole snapshot, does not match its checksum. */
export class ChecksumMismatchError extends Error {
  static override readonly name = 'ChecksumMismatchError';
  override readonly name = 'ChecksumMismatchError';
  readonly code = 'ERR_CHECKSUM_MISMATCH';
  constructor(message: string) {
    super(message);
  }
}

/** The log after the snapshot seq is no longer in the bounded catch-up backlog. */
export class BacklogOverrunError extends Error {
  static override readonly name = 'BacklogOverrunError';
  override readonly name = 'BacklogOverrunError';
  readonly code = 'ERR_BACKLOG_OVERRUN';
  readonly neededSeq: number;
  readonly firstSeq: number;
  constructor(neededSeq: number, firstSeq: number) {
    super(`catch-up needs seq ${neededSeq} but the backlog starts at ${firstSeq}`);
    this.neededSeq = neededSeq;
    this.firstSeq = firstSeq;
  }
}

/** Joiner and server disagree on the state digest at the agreed seq. */
export class DigestMismatchError extends Error {
  static override readonly name = 'DigestMismatchError';
  override readonly name = 'DigestMismatchError';
  readonly code = 'ERR_DIGEST_MISMATCH';
  readonly seq: number;
  readonly expected: string;
  readonly actual: string;
  constructor(seq: number, expected: string, actual: string) {
    super(`state digest at seq ${seq}: server ${expected}, joiner ${actual}`);
    this.seq = seq;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The joiner cannot take the server's state version (older joiner, or another service). */
export class VersionMismatchError extends Error {
  static override readonly name = 'VersionMismatchError';
  override readonly name = 'VersionMismatchError';
  readonly code = 'ERR_VERSION_MISMATCH';
  constructor(message: string) {
    super(message);
  }
}

/** No migration path between two versions, or a migration threw. */
export class MigrationError extends Error {
  static override readonly name = 'MigrationError';
  override readonly name = 'MigrationError';
  readonly code = 'ERR_MIGRATION';
  constructor(message: string, options?: CauseOptions) {
    super(message, options);
  }
}

/** The transfer was stopped by its owner (close()/abort signal). */
export class TransferAbortedError extends Error {
  static override readonly name = 'TransferAbortedError';
  override readonly name = 'TransferAbortedError';
  readonly code = 'ERR_TRANSFER_ABORTED';
  constructor(message = 'state transfer aborted') {
    super(message);
  }
}

/** The transfer gave up (too many reconnects, fresh transfers, or a fatal answer from the server). */
export class TransferFailedError extends Error {
  static override readonly name = 'TransferFailedError';
  override readonly name = 'TransferFailedError';
  readonly code = 'ERR_TRANSFER_FAILED';
  constructor(message: string, options?: CauseOptions) {
    super(message, options);
  }
}

/** The transfer worker thread (`serveTransfersInWorker`) could not start, or its owner cannot answer it. */
export class TransferWorkerError extends Error {
  static override readonly name = 'TransferWorkerError';
  override readonly name = 'TransferWorkerError';
  readonly code = 'ERR_TRANSFER_WORKER';
  constructor(message: string, options?: CauseOptions) {
    super(message, options);
  }
}

/** Any of the typed errors above (a type: recognise one with `isStateTransferError`). */
export type StateTransferError =
  | TransferProtocolError
  | ChecksumMismatchError
  | BacklogOverrunError
  | DigestMismatchError
  | VersionMismatchError
  | MigrationError
  | TransferAbortedError
  | TransferFailedError
  | TransferWorkerError;

/** Each error's name and its code: the closed list `isStateTransferError` recognises. */
const STATE_TRANSFER_ERROR_CODES: Readonly<Record<StateTransferErrorName, string>> = {
  TransferProtocolError: 'ERR_TRANSFER_PROTOCOL',
  ChecksumMismatchError: 'ERR_CHECKSUM_MISMATCH',
  BacklogOverrunError: 'ERR_BACKLOG_OVERRUN',
  DigestMismatchError: 'ERR_DIGEST_MISMATCH',
  VersionMismatchError: 'ERR_VERSION_MISMATCH',
  MigrationError: 'ERR_MIGRATION',
  TransferAbortedError: 'ERR_TRANSFER_ABORTED',
  TransferFailedError: 'ERR_TRANSFER_FAILED',
  TransferWorkerError: 'ERR_TRANSFER_WORKER',
};

/**
 * True when `err` is one of the errors above (optionally the one named `name`): its `name` is in the
 * closed list and its `code` is that error's. Node's own errors (`ERR_BUFFER_OUT_OF_BOUNDS` …) are not.
 */
export function isStateTransferError(err: unknown, name?: StateTransferErrorName): err is StateTransferError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (typeof e.name !== 'string' || !Object.hasOwn(STATE_TRANSFER_ERROR_CODES, e.name)) return false;
  if (e.code !== STATE_TRANSFER_ERROR_CODES[e.name as StateTransferErrorName]) return false;
  return name === undefined || e.name === name;
}
