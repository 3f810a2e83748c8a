/**
 * Typed errors of @tandem/core. Recognise them by `err.name` (survives two copies of the package in
 * one install); `instanceof` works as well when there is a single copy.
 */

/** The logical server did not answer within `callDeadlineMs` (both replicas unreachable or not serving). */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';
  constructor(message = 'service unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The service's `apply` threw; the error was recorded and replicated like any reply. */
export class ApplicationError extends Error {
  override readonly name = 'ApplicationError';
  /** The `name` of the error the service threw (e.g. "RangeError", or a custom name). */
  readonly remoteName: string;
  readonly remoteMessage: string;
  constructor(remoteName: string, remoteMessage: string) {
    super(`${remoteName}: ${remoteMessage}`);
    this.remoteName = remoteName;
    this.remoteMessage = remoteMessage;
  }
}

/** A request failed the service's request schema (on the client, or on the primary: not sequenced). */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
  constructor(message: string) {
    super(message);
  }
}

/** A peer sent bytes that are not a valid protocol message (or a message not allowed in this state). */
export class ProtocolViolationError extends Error {
  override readonly name = 'ProtocolViolationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Invalid replication configuration; `issues` lists every bad field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: readonly { path: string; message: string }[]) {
    super(`invalid replication config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

/** A reply or message from an epoch older than one already seen (a deposed primary). */
export class StaleEpochError extends Error {
  override readonly name = 'StaleEpochError';
  readonly epoch: number;
  readonly knownEpoch: number;
  constructor(epoch: number, knownEpoch: number) {
    super(`message from epoch ${epoch} is older than the known epoch ${knownEpoch}`);
    this.epoch = epoch;
    this.knownEpoch = knownEpoch;
  }
}

/** The replica or client was stopped/closed while an operation was pending. */
export class StoppedError extends Error {
  override readonly name = 'StoppedError';
  constructor(message = 'stopped') {
    super(message);
  }
}

export function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : undefined;
}
