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

/**
 * Default send high-water mark: the most bytes a connection hands on to its transport (socket buffer,
 * peer queue, bytes in flight) that have not yet left for the peer; past it a `send` settles only once
 * they drain. Some adapters hold less by default (tcp: Node's 16 KiB socket buffer; ws: 1 MiB).
 */
export const DEFAULT_SEND_HIGH_WATER_MARK = 4 * 1024 * 1024;

/**
 * Default hard limit on the bytes queued in a connection for sending (sends accepted and not yet handed
 * on, e.g. not awaited while the peer does not read): past it the connection is aborted with
 * SendQueueFullError. The effective default is the larger of this and 4 × maxMessageSize.
 */
export const DEFAULT_MAX_SEND_QUEUE_BYTES = 64 * 1024 * 1024;

/**
 * Default deadline for a half-received frame (or handshake): a peer that has sent part of one and then
 * nothing for this long is cut off with a TimeoutError (slow loris).
 */
export const DEFAULT_PARTIAL_FRAME_TIMEOUT_MS = 10_000;

/** Default limit on the open connections of one listener; more are refused at once. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Throws a RangeError for a size, limit or deadline that is not a non-negative number. Adapters call it
 * at the start of `listen` and `dial`, so that a bad option fails there and not in a socket callback.
 */
export function checkConnectionOptions(options: ConnectionOptions & { maxConnections?: number; timeoutMs?: number }): void {
  for (const name of [
    'maxMessageSize',
    'receiveHighWaterMark',
    'sendHighWaterMark',
    'maxSendQueueBytes',
    'partialFrameTimeoutMs',
    'maxConnections',
    'timeoutMs',
  ] as const) {
    const value = options[name];
    if (value !== undefined && !(typeof value === 'number' && value >= 0)) {
      throw new RangeError(`${name} must be a non-negative number, got ${String(value)}`);
    }
  }
}

/** The effective send-queue limit for a connection: `maxSendQueueBytes`, or its default. */
export function resolveMaxSendQueueBytes(maxSendQueueBytes: number | undefined, maxMessageSize: number): number {
  return maxSendQueueBytes ?? Math.max(DEFAULT_MAX_SEND_QUEUE_BYTES, 4 * maxMessageSize);
}

/** Why and how a connection ended. */
export interface CloseInfo {
  /** Who ended it: this side (`close()`/`abort()`), or the peer/network. */
  readonly by: 'local' | 'remote';
  /** Human-readable reason, e.g. "closed by peer", "reset", "liveness timeout", or the string given to close(). */
  readonly reason: string;
  /** The error that ended it, when it ended abnormally (a ProtocolError, MessageTooLargeError, TimeoutError…). */
  readonly error?: Error;
}

/** Limits shared by dialling and listening: message size, receive and send buffering, partial-frame deadline. */
export interface ConnectionOptions {
  /** Largest message accepted or sent, in bytes. Default DEFAULT_MAX_MESSAGE_SIZE. */
  maxMessageSize?: number;
  /** Bytes received but not yet read at which reading from the network pauses. Default DEFAULT_RECEIVE_HIGH_WATER_MARK. */
  receiveHighWaterMark?: number;
  /**
   * The most bytes handed on to the transport and not yet sent to the peer (socket buffer, bytes in
   * flight); while more are, a `send` waits (settles later). Default DEFAULT_SEND_HIGH_WATER_MARK; tcp
   * holds at most Node's 16 KiB socket buffer unless given, ws 1 MiB.
   */
  sendHighWaterMark?: number;
  /**
   * Hard limit on the bytes queued in the connection for sending (accepted by `send`, not yet handed on;
   * each message counts 32 bytes extra). A send that would exceed it aborts the connection with
   * SendQueueFullError; a send to an empty queue is always accepted. Default: the larger of
   * DEFAULT_MAX_SEND_QUEUE_BYTES and 4 × maxMessageSize.
   */
  maxSendQueueBytes?: number;
  /**
   * A peer that has sent part of a frame (or of the transport's handshake) and then nothing for this long
   * is cut off: the connection closes with a TimeoutError. 0 = no deadline. Default
   * DEFAULT_PARTIAL_FRAME_TIMEOUT_MS. Time spent with reading paused (this side's receive queue full) does
   * not count.
   */
  partialFrameTimeoutMs?: number;
}

/** Options of `Transport.dial`: the connection limits plus a dial timeout and an abort signal. */
export interface DialOptions extends ConnectionOptions {
  /** Give up dialling after this many ms with a TimeoutError. Default 10 000. */
  timeoutMs?: number;
  /** Abort the dial while it is in progress: it rejects with AbortError. */
  signal?: AbortSignal;
}

/** Options of `Transport.listen`: the connection limits plus a connection cap and an abort signal. */
export interface ListenOptions extends ConnectionOptions {
  /** Already aborted: `listen` rejects with AbortError; aborted later: the listener closes. */
  signal?: AbortSignal;
  /**
   * Most open connections of this listener at once (accepted, not yet closed, taken or not); more are
   * refused or closed at once, without affecting the open ones: the dialler's `dial` fails with
   * ConnectionRefusedError. Default DEFAULT_MAX_CONNECTIONS.
   */
  maxConnections?: number;
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
  /** The largest message this connection sends or accepts, in bytes. */
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

/** A pluggable network transport: listens on and dials addresses of its URL schemes. */
export interface Transport {
  /** Short name for logs, e.g. "tcp". */
  readonly name: string;
  /** URL schemes this transport serves, without the colon: e.g. ["tcp", "tls"]. */
  readonly schemes: readonly string[];
  /** Listen at an address of one of `schemes`; port 0 picks a free port (see `Listener.address`). */
  listen(address: string, options?: ListenOptions): Promise<Listener>;
  /** Open a connection to a listening address; rejects with a TransportError (refused, timeout, invalid address…). */
  dial(address: string, options?: DialOptions): Promise<Connection>;
}
