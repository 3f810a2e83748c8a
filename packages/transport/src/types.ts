/**
 * The transport contract. Every adapter (memory, tcp, ws, zeromq, …) implements `Transport`, and the
 * compliance suite (`@tandem/transport/compliance`) holds each of them to the same behaviour.
 */

/** Default maximum message size: 16 MiB. Both ends enforce it. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/**
 * Default receive buffer bound: when this many bytes have arrived but not been read by the
 * application, the connection stops reading from the network (so the sender's `send` stops settling).
 */
export const DEFAULT_RECEIVE_HIGH_WATER_MARK = 4 * 1024 * 1024;

/** Why and how a connection ended. */
export interface CloseInfo {
  /** Who ended it: this side (`close()`/`abort()`), or the peer/network. */
  readonly by: 'local' | 'remote';
  /** Human-readable reason, e.g. "closed by peer", "reset", "liveness timeout", or the string given to close(). */
  readonly reason: string;
  /** The error that ended it, when it ended abnormally (a ProtocolError, MessageTooLargeError, TimeoutError…). */
  readonly error?: Error;
}

export interface ConnectionOptions {
  /** Largest message accepted or sent, in bytes. Default DEFAULT_MAX_MESSAGE_SIZE. */
  maxMessageSize?: number;
  /** Bytes received but not yet read at which reading from the network pauses. */
  receiveHighWaterMark?: number;
}

export interface DialOptions extends ConnectionOptions {
  /** Give up dialling after this many ms with a TimeoutError. Default 10 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ListenOptions extends ConnectionOptions {
  signal?: AbortSignal;
}

/**
 * A message-framed, ordered, reliable (while open) connection.
 *
 * Receive side: a connection is an async iterable of whole messages, in order; iteration ends when
 * the connection closes (after every message that arrived before the close has been yielded). Only one
 * iterator may be active. Unread messages are bounded by the receive high-water mark.
 */
export interface Connection extends AsyncIterable<Uint8Array> {
  /** Unique per process, for logs. */
  readonly id: string;
  /** This end's address, in the transport's URL form. */
  readonly localAddress: string;
  /** The peer's address, in the transport's URL form. */
  readonly remoteAddress: string;
  readonly maxMessageSize: number;
  /** True once the connection has closed (for any reason). */
  readonly isClosed: boolean;
  /** Settles (never rejects) when the connection has closed, with why. */
  readonly closed: Promise<CloseInfo>;

  /**
   * Send one whole message. Settles when the message has been handed on (to the socket, peer queue…)
   * so that awaiting each send bounds the sender's memory. Rejects with MessageTooLargeError (the
   * connection stays open), or ConnectionClosedError if the connection is or becomes closed before the
   * message was handed on. Sends are delivered in call order.
   */
  send(message: Uint8Array): Promise<void>;

  /**
   * Graceful close: messages already handed to `send` are flushed, then the connection ends. Pending
   * receives end. Idempotent; settles when closed.
   */
  close(reason?: string): Promise<void>;

  /** Immediate close: pending sends fail with ConnectionClosedError (or the given error). Idempotent. */
  abort(error?: Error): void;
}

/** Yields accepted connections until closed. */
export interface Listener extends AsyncIterable<Connection> {
  /** The bound address, with a concrete port when port 0 was asked for. */
  readonly address: string;
  /** Stop accepting; connections already accepted stay open. Idempotent. */
  close(): Promise<void>;
}

export interface Transport {
  /** Short name for logs, e.g. "tcp". */
  readonly name: string;
  /** URL schemes this transport serves, without the colon: e.g. ["tcp", "tls"]. */
  readonly schemes: readonly string[];
  listen(address: string, options?: ListenOptions): Promise<Listener>;
  dial(address: string, options?: DialOptions): Promise<Connection>;
}
