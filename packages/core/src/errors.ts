/**
 * Typed errors of @tandem/core. One convention: flat classes (each `extends Error` directly) with a static
 * and an instance `name`, and a stable `code` where callers branch on more than the class. Recognise them
 * by name — `isCoreError(err, 'StoppedError')` or `err.name` — which survives two copies of the package in
 * one install; `instanceof` works as well when there is a single copy.
 */

/** The logical server did not answer within `callDeadlineMs` (both replicas unreachable or not serving).
 * `cause`: a `StaleEpochError` when the only answers the call met came from a deposed primary. */
export class ServiceUnavailableError extends Error {
  static override readonly name = 'ServiceUnavailableError';
  override readonly name = 'ServiceUnavailableError';
  constructor(message = 'service unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The service's `apply` threw; the error was recorded and replicated like any reply. */
export class ApplicationError extends Error {
  static override readonly name = 'ApplicationError';
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
  static override readonly name = 'InvalidRequestError';
  override readonly name = 'InvalidRequestError';
  constructor(message: string) {
    super(message);
  }
}

/** A peer sent bytes that are not a valid protocol message (or a message not allowed in this state). */
export class ProtocolViolationError extends Error {
  static override readonly name = 'ProtocolViolationError';
  override readonly name = 'ProtocolViolationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Invalid replication configuration; `issues` lists every bad field. */
export class ConfigError extends Error {
  static override readonly name = 'ConfigError';
  override readonly name = 'ConfigError';
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: readonly { path: string; message: string }[]) {
    super(`invalid replication config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

/**
 * A reply from an epoch older than one the client already saw (a deposed primary). The client never
 * accepts such a reply and goes on waiting for the current primary; when the call's deadline passes with
 * only stale answers, it is the `cause` of the `ServiceUnavailableError`.
 */
export class StaleEpochError extends Error {
  static override readonly name = 'StaleEpochError';
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
  static override readonly name = 'StoppedError';
  override readonly name = 'StoppedError';
  constructor(message = 'stopped') {
    super(message);
  }
}

/**
 * Replaying an entry gave another reply digest than the primary recorded: the service is not
 * deterministic given (state, request, ctx), or the replicas' states differ. Thrown to a state-sync
 * strategy by `JoinTarget.apply` (the replica also reports a `divergence` event).
 */
export class DivergenceError extends Error {
  static override readonly name = 'DivergenceError';
  override readonly name = 'DivergenceError';
  readonly code = 'DIVERGENCE';
  readonly seq: number;
  /** The primary's reply digest. */
  readonly expectedDigest: string;
  /** The digest this replica computed. */
  readonly actualDigest: string;
  constructor(seq: number, expectedDigest: string, actualDigest: string, message?: string) {
    super(message ?? `reply digest mismatch at seq ${seq} (primary ${expectedDigest}, here ${actualDigest})`);
    this.seq = seq;
    this.expectedDigest = expectedDigest;
    this.actualDigest = actualDigest;
  }
}

/**
 * A protocol invariant does not hold (appliedSeq went backwards, a role or epoch moved in a way the
 * protocol does not allow, …): a bug in this package, never a peer's fault. The replica logs it
 * (`INVARIANT`) and lets it escape to its environment, so a simulator stops at the cause and a
 * production process fails stop instead of serving a state it cannot vouch for. `code` names the
 * invariant.
 */
export class InvariantError extends Error {
  static override readonly name = 'InvariantError';
  override readonly name = 'InvariantError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(`invariant ${code}: ${message}`);
    this.code = code;
  }
}

/** Assert a protocol invariant; `message` is built only when it fails. */
export function invariant(condition: boolean, code: string, message: () => string): asserts condition {
  if (!condition) throw new InvariantError(code, message());
}

/** Every error class name @tandem/core throws (the closed list `isCoreError` checks). */
export const CORE_ERROR_NAMES = [
  'ServiceUnavailableError',
  'ApplicationError',
  'InvalidRequestError',
  'ProtocolViolationError',
  'ConfigError',
  'StaleEpochError',
  'StoppedError',
  'DivergenceError',
  'InvariantError',
  'AuthenticationError',
  'KeyError',
  'InsecureListenError',
  'ShardMapError',
] as const;

/** One of CORE_ERROR_NAMES. */
export type CoreErrorName = (typeof CORE_ERROR_NAMES)[number];

const coreErrorNames: ReadonlySet<string> = new Set(CORE_ERROR_NAMES);

/** True when `err` is an error of @tandem/core (by name, so also from another copy of the package);
 * with `name`, when it is that one. */
export function isCoreError(err: unknown, name?: CoreErrorName): err is Error & { name: CoreErrorName } {
  const n = errorName(err);
  if (n === undefined || !(err instanceof Error || typeof (err as { message?: unknown }).message === 'string')) return false;
  return name === undefined ? coreErrorNames.has(n) : n === name;
}

/** The `name` of an error-like value, or undefined. */
export function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : undefined;
}
