/**
 * Typed transport errors. Callers recognise them by `err.name` (or `err.code`), which survives two
 * copies of this package in one install; `instanceof` works too when there is only one copy.
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
  | 'AbortError';

export interface TransportErrorOptions {
  cause?: unknown;
  /** The address involved, when there is one. */
  address?: string;
}

export class TransportError extends Error {
  /** Stable machine-readable code, e.g. `ERR_CONNECTION_REFUSED`. */
  readonly code: string;
  readonly address: string | undefined;
  constructor(name: TransportErrorName, code: string, message: string, options: TransportErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.code = code;
    this.address = options.address;
  }
}

/** Nothing listens at the address (ECONNREFUSED, unknown in-memory address, …). */
export class ConnectionRefusedError extends TransportError {
  constructor(message = 'connection refused', options?: TransportErrorOptions) {
    super('ConnectionRefusedError', 'ERR_CONNECTION_REFUSED', message, options);
  }
}

/** A dial, handshake or liveness check did not complete in time. */
export class TimeoutError extends TransportError {
  constructor(message = 'timed out', options?: TransportErrorOptions) {
    super('TimeoutError', 'ERR_TIMEOUT', message, options);
  }
}

/** A message exceeds the maximum message size (on send, or announced by the peer on receive). */
export class MessageTooLargeError extends TransportError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, options?: TransportErrorOptions) {
    super('MessageTooLargeError', 'ERR_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit} bytes`, options);
    this.size = size;
    this.limit = limit;
  }
}

/** The connection is closed: pending and later sends fail with this. */
export class ConnectionClosedError extends TransportError {
  constructor(message = 'connection closed', options?: TransportErrorOptions) {
    super('ConnectionClosedError', 'ERR_CONNECTION_CLOSED', message, options);
  }
}

/** The peer sent bytes that do not follow the framing (garbage, truncated frame, bad handshake). */
export class ProtocolError extends TransportError {
  constructor(message = 'protocol error', options?: TransportErrorOptions) {
    super('ProtocolError', 'ERR_PROTOCOL', message, options);
  }
}

/** No transport is registered for the address scheme. */
export class UnsupportedSchemeError extends TransportError {
  constructor(scheme: string, options?: TransportErrorOptions) {
    super('UnsupportedSchemeError', 'ERR_UNSUPPORTED_SCHEME', `no transport registered for scheme "${scheme}"`, options);
  }
}

/** The address cannot be parsed or lacks a part the transport needs. */
export class InvalidAddressError extends TransportError {
  constructor(message: string, options?: TransportErrorOptions) {
    super('InvalidAddressError', 'ERR_INVALID_ADDRESS', message, options);
  }
}

/** `listen` failed because the address is taken. */
export class AddressInUseError extends TransportError {
  constructor(message = 'address in use', options?: TransportErrorOptions) {
    super('AddressInUseError', 'ERR_ADDRESS_IN_USE', message, options);
  }
}

/** The operation was cancelled through an AbortSignal. */
export class AbortError extends TransportError {
  constructor(message = 'aborted', options?: TransportErrorOptions) {
    super('AbortError', 'ERR_ABORTED', message, options);
  }
}

/** True when `err` is a transport error, optionally of the given name. Works across package copies. */
export function isTransportError(err: unknown, name?: TransportErrorName): err is TransportError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (typeof e.name !== 'string' || typeof e.code !== 'string' || !e.code.startsWith('ERR_')) return false;
  return name === undefined ? true : e.name === name;
}
