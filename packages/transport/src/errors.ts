/**
 * Typed transport errors. One convention for all of them: a flat class extending Error, with a static
 * `name` and the same instance `name`, a stable `code` (`ERR_…`) and the `address` involved. Callers
 * recognise them with `isTransportError(err, 'TimeoutError')`, which checks the name against the closed
 * list below together with its code and so survives two copies of this package in one install;
 * `instanceof` works too when there is only one copy.
 */
export type TransportErrorName =
  | 'ConnectionRefusedError'
  | 'TimeoutError'
  | 'MessageTooLargeError'
  | 'ConnectionClosedError'
  | 'ProtocolError'
  | 'UnsupportedSchemeError'
  | 'InvalidAddressError'
  | 'AddressInUseError'
  | 'AbortError'
  | 'SendQueueFullError';

/** Options shared by every transport error: the cause and the address involved. */
export interface TransportErrorOptions {
  /** The underlying error (a Node socket error…), kept as the error's `cause`. */
  cause?: unknown;
  /** The address involved, when there is one. */
  address?: string;
}

/** Options of ConnectionRefusedError: whether the refusal proves that nothing listens at the address. */
export interface RefusedOptions extends TransportErrorOptions {
  /** True when the refusal proves that nothing listens there (ECONNREFUSED, an unknown in-memory address):
   * the process that listened is gone. False (default) for refusals by a live listener (its connection
   * limit, a rejected certificate or key) and for unreachable hosts — those prove nothing about the peer. */
  nothingListens?: boolean;
}

const causeOf = (options: TransportErrorOptions): ErrorOptions | undefined =>
  options.cause === undefined ? undefined : { cause: options.cause };

/** Nothing listens at the address (ECONNREFUSED, unknown in-memory address…), or the listener refused the connection (its limit, a rejected client key or certificate). */
export class ConnectionRefusedError extends Error {
  static override readonly name = 'ConnectionRefusedError';
  override readonly name = 'ConnectionRefusedError';
  readonly code = 'ERR_CONNECTION_REFUSED';
  readonly address: string | undefined;
  /** See RefusedOptions.nothingListens: only then does the refusal prove the peer process gone. */
  readonly nothingListens: boolean;
  constructor(message = 'connection refused', options: RefusedOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
    this.nothingListens = options.nothingListens === true;
  }
}

/** A dial, handshake, liveness check or half-received frame did not complete in time. */
export class TimeoutError extends Error {
  static override readonly name = 'TimeoutError';
  override readonly name = 'TimeoutError';
  readonly code = 'ERR_TIMEOUT';
  readonly address: string | undefined;
  constructor(message = 'timed out', options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/** A message exceeds the maximum message size (on send, or announced by the peer on receive). */
export class MessageTooLargeError extends Error {
  static override readonly name = 'MessageTooLargeError';
  override readonly name = 'MessageTooLargeError';
  readonly code = 'ERR_MESSAGE_TOO_LARGE';
  readonly address: string | undefined;
  /** The message's size, in bytes. */
  readonly size: number;
  /** The maximum message size in force, in bytes. */
  readonly limit: number;
  constructor(size: number, limit: number, options: TransportErrorOptions = {}) {
    super(`message of ${size} bytes exceeds the limit of ${limit} bytes`, causeOf(options));
    this.address = options.address;
    this.size = size;
    this.limit = limit;
  }
}

/** The connection is closed: pending and later sends fail with this. */
export class ConnectionClosedError extends Error {
  static override readonly name = 'ConnectionClosedError';
  override readonly name = 'ConnectionClosedError';
  readonly code = 'ERR_CONNECTION_CLOSED';
  readonly address: string | undefined;
  constructor(message = 'connection closed', options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/** The peer sent bytes that do not follow the framing (garbage, truncated frame, bad handshake). */
export class ProtocolError extends Error {
  static override readonly name = 'ProtocolError';
  override readonly name = 'ProtocolError';
  readonly code = 'ERR_PROTOCOL';
  readonly address: string | undefined;
  constructor(message = 'protocol error', options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/** No transport is registered for the address scheme. */
export class UnsupportedSchemeError extends Error {
  static override readonly name = 'UnsupportedSchemeError';
  override readonly name = 'UnsupportedSchemeError';
  readonly code = 'ERR_UNSUPPORTED_SCHEME';
  readonly address: string | undefined;
  constructor(scheme: string, options: TransportErrorOptions = {}) {
    super(`no transport registered for scheme "${scheme}"`, causeOf(options));
    this.address = options.address;
  }
}

/** The address cannot be parsed or lacks a part the transport needs. */
export class InvalidAddressError extends Error {
  static override readonly name = 'InvalidAddressError';
  override readonly name = 'InvalidAddressError';
  readonly code = 'ERR_INVALID_ADDRESS';
  readonly address: string | undefined;
  constructor(message: string, options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/** `listen` failed because the address is taken. */
export class AddressInUseError extends Error {
  static override readonly name = 'AddressInUseError';
  override readonly name = 'AddressInUseError';
  readonly code = 'ERR_ADDRESS_IN_USE';
  readonly address: string | undefined;
  constructor(message = 'address in use', options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/** The operation was cancelled through an AbortSignal. */
export class AbortError extends Error {
  static override readonly name = 'AbortError';
  override readonly name = 'AbortError';
  readonly code = 'ERR_ABORTED';
  readonly address: string | undefined;
  constructor(message = 'aborted', options: TransportErrorOptions = {}) {
    super(message, causeOf(options));
    this.address = options.address;
  }
}

/**
 * More bytes were queued for sending on one connection (sends not yet handed on, typically not awaited,
 * to a peer that does not read) than its `maxSendQueueBytes`: the connection is aborted with this error,
 * the send that overflowed rejects with it, the other pending sends with ConnectionClosedError.
 */
export class SendQueueFullError extends Error {
  static override readonly name = 'SendQueueFullError';
  override readonly name = 'SendQueueFullError';
  readonly code = 'ERR_SEND_QUEUE_FULL';
  readonly address: string | undefined;
  /** Bytes the queue would have held with the refused message (each message counts 32 bytes extra). */
  readonly queued: number;
  /** The connection's `maxSendQueueBytes`. */
  readonly limit: number;
  constructor(queued: number, limit: number, options: TransportErrorOptions = {}) {
    super(`${queued} bytes queued for sending exceed the limit of ${limit} bytes (is the peer reading?)`, causeOf(options));
    this.address = options.address;
    this.queued = queued;
    this.limit = limit;
  }
}

/** Any of the typed transport errors above (a type: recognise one with `isTransportError`). */
export type TransportError =
  | ConnectionRefusedError
  | TimeoutError
  | MessageTooLargeError
  | ConnectionClosedError
  | ProtocolError
  | UnsupportedSchemeError
  | InvalidAddressError
  | AddressInUseError
  | AbortError
  | SendQueueFullError;

/** Each transport error's name and its code: the closed list `isTransportError` recognises. */
const TRANSPORT_ERROR_CODES: Readonly<Record<TransportErrorName, string>> = {
  ConnectionRefusedError: 'ERR_CONNECTION_REFUSED',
  TimeoutError: 'ERR_TIMEOUT',
  MessageTooLargeError: 'ERR_MESSAGE_TOO_LARGE',
  ConnectionClosedError: 'ERR_CONNECTION_CLOSED',
  ProtocolError: 'ERR_PROTOCOL',
  UnsupportedSchemeError: 'ERR_UNSUPPORTED_SCHEME',
  InvalidAddressError: 'ERR_INVALID_ADDRESS',
  AddressInUseError: 'ERR_ADDRESS_IN_USE',
  AbortError: 'ERR_ABORTED',
  SendQueueFullError: 'ERR_SEND_QUEUE_FULL',
};

/**
 * True when `err` is one of the transport errors above (optionally the one named `name`): its `name` is
 * in the closed list and its `code` is that error's. Works across package copies. Node's own errors
 * (`ERR_SOCKET_BAD_PORT`, `ERR_SSL_…`) and namesakes from elsewhere (a DOMException `AbortError`, Node's
 * `AbortError` with code `ABORT_ERR`) are not transport errors: adapters map them to one.
 */
export function isTransportError(err: unknown, name?: TransportErrorName): err is TransportError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (typeof e.name !== 'string' || !Object.hasOwn(TRANSPORT_ERROR_CODES, e.name)) return false;
  if (e.code !== TRANSPORT_ERROR_CODES[e.name as TransportErrorName]) return false;
  return name === undefined || e.name === name;
}
