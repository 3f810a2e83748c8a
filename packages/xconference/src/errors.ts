/**
 * The errors this package throws or rejects with: flat classes, each with a static and an instance `name`
 * and a stable `code`. Recognise them with `isXconferenceError(err, name?)`, which tests `err.name` against
 * a closed list (so it works with two copies of the package in one install), never with `instanceof`.
 */

/** Every error name this package uses. */
export const XCONFERENCE_ERROR_NAMES = ['XProtocolError', 'JoinError', 'FocusTriggerError'] as const;
/** One of XCONFERENCE_ERROR_NAMES. */
export type XconferenceErrorName = (typeof XCONFERENCE_ERROR_NAMES)[number];

/** Why a connection's byte stream was rejected. */
export type XProtocolErrorCode =
  | 'bad-byte-order'
  | 'bad-length'
  | 'too-large'
  | 'truncated'
  | 'malformed-setup'
  | 'malformed-request'
  | 'setup-refused'
  | 'upstream-failed';

/**
 * Malformed, truncated or refused X11 input. The connection that produced it is closed; nothing else is
 * affected.
 */
export class XProtocolError extends Error {
  static override readonly name = 'XProtocolError';
  override readonly name = 'XProtocolError';
  constructor(
    readonly code: XProtocolErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Why a participant could not join: `closed` (the conference or application is closed, or closed while it
 * joined), `duplicate` (the name is already a participant), `unreachable` (its server could not be
 * connected, refused the connection setup or did not answer it), `failed` (the join began but did not
 * complete: the server left, did not answer in time, or too much was queued meanwhile).
 */
export type JoinErrorCode = 'closed' | 'duplicate' | 'unreachable' | 'unsupported-visual' | 'failed';

/** A participant could not join a conference or one of its applications; nothing else was disturbed. */
export class JoinError extends Error {
  static override readonly name = 'JoinError';
  override readonly name = 'JoinError';
  constructor(
    readonly code: JoinErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What is wrong with a focus-trigger specification (see parseFocusTrigger). */
export type FocusTriggerErrorCode = 'empty' | 'unknown-modifier' | 'unsupported-key';

/** A focus-trigger specification that parseFocusTrigger does not accept. */
export class FocusTriggerError extends Error {
  static override readonly name = 'FocusTriggerError';
  override readonly name = 'FocusTriggerError';
  constructor(
    readonly code: FocusTriggerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Any error of this package. */
export type XconferenceError = XProtocolError | JoinError | FocusTriggerError;

const NAMES: ReadonlySet<string> = new Set(XCONFERENCE_ERROR_NAMES);

/** True when `err` is one of this package's errors (of the given name, if one is given). */
export function isXconferenceError(err: unknown): err is XconferenceError;
export function isXconferenceError<N extends XconferenceErrorName>(
  err: unknown,
  name: N,
): err is Extract<XconferenceError, { readonly name: N }>;
export function isXconferenceError(err: unknown, name?: XconferenceErrorName): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const n = (err as { name?: unknown }).name;
  if (typeof n !== 'string' || typeof (err as { code?: unknown }).code !== 'string') return false;
  return name === undefined ? NAMES.has(n) : n === name;
}
