/**
 * Typed errors of state transfer. Recognise them by `err.name` (survives two copies of the package).
 */
export type StateTransferErrorName =
  | 'TransferProtocolError'
  | 'ChecksumMismatchError'
  | 'BacklogOverrunError'
  | 'DigestMismatchError'
  | 'VersionMismatchError'
  | 'MigrationError'
  | 'TransferAbortedError'
  | 'TransferFailedError';

export class StateTransferError extends Error {
  readonly code: string;
  constructor(name: StateTransferErrorName, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = name;
    this.code = code;
  }
}

/** A message that is not valid for the transfer protocol (bad bytes, bad shape, wrong order). */
export class TransferProtocolError extends StateTransferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TransferProtocolError', 'ERR_TRANSFER_PROTOCOL', message, options);
  }
}

/** A chunk, or the whole snapshot, does not match its checksum. */
export class ChecksumMismatchError extends StateTransferError {
  constructor(message: string) {
    super('ChecksumMismatchError', 'ERR_CHECKSUM_MISMATCH', message);
  }
}

/** The log after the snapshot seq is no longer in the bounded catch-up backlog. */
export class BacklogOverrunError extends StateTransferError {
  readonly neededSeq: number;
  readonly firstSeq: number;
  constructor(neededSeq: number, firstSeq: number) {
    super('BacklogOverrunError', 'ERR_BACKLOG_OVERRUN', `catch-up needs seq ${neededSeq} but the backlog starts at ${firstSeq}`);
    this.neededSeq = neededSeq;
    this.firstSeq = firstSeq;
  }
}

/** Joiner and server disagree on the state digest at the agreed seq. */
export class DigestMismatchError extends StateTransferError {
  readonly seq: number;
  readonly expected: string;
  readonly actual: string;
  constructor(seq: number, expected: string, actual: string) {
    super('DigestMismatchError', 'ERR_DIGEST_MISMATCH', `state digest at seq ${seq}: server ${expected}, joiner ${actual}`);
    this.seq = seq;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The joiner cannot take the server's state version (older joiner, or another service). */
export class VersionMismatchError extends StateTransferError {
  constructor(message: string) {
    super('VersionMismatchError', 'ERR_VERSION_MISMATCH', message);
  }
}

/** No migration path between two versions, or a migration threw. */
export class MigrationError extends StateTransferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MigrationError', 'ERR_MIGRATION', message, options);
  }
}

/** The transfer was stopped by its owner (close()/abort signal). */
export class TransferAbortedError extends StateTransferError {
  constructor(message = 'state transfer aborted') {
    super('TransferAbortedError', 'ERR_TRANSFER_ABORTED', message);
  }
}

/** The transfer gave up (too many reconnects, fresh transfers, or a fatal answer from the server). */
export class TransferFailedError extends StateTransferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TransferFailedError', 'ERR_TRANSFER_FAILED', message, options);
  }
}

export function isStateTransferError(err: unknown, name?: StateTransferErrorName): err is StateTransferError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (typeof e.name !== 'string' || typeof e.code !== 'string') return false;
  return name === undefined ? e.code.startsWith('ERR_') : e.name === name;
}
