/**
 * A Link is one transport connection speaking the protocol: it encodes/decodes with the codec, runs
 * the read loop, bounds the sends in flight, and turns bad input into a ProtocolViolationError that
 * aborts only this connection.
 */
import type { CloseInfo, Connection } from '@tandem/transport';
import { codec } from './codec.js';
import type { Logger } from './env.js';
import { ProtocolViolationError } from './errors.js';
import type { Hello, Message } from './messages.js';
import type { ConnectionKind } from './metrics.js';

export interface LinkHandlers {
  onMessage(link: Link, message: Message): void;
  onClose(link: Link, info: CloseInfo): void;
  onViolation(link: Link, error: ProtocolViolationError): void;
  /** Optional: protocol bytes read (`in`) or handed to the transport (`out`) on this link. */
  onBytes?(direction: 'in' | 'out', count: number): void;
}

/** Sends handed to the transport but not yet settled, per connection, before the link is aborted. */
export const MAX_SENDS_IN_FLIGHT = 65_536;

let nextLinkNo = 1;

export class Link {
  readonly conn: Connection;
  readonly no = nextLinkNo++;
  /** 'out' = this side dialled; 'in' = accepted. */
  readonly direction: 'in' | 'out';
  /** The remote's hello (accepted links) — undefined until it arrives. */
  hello: Hello | undefined;
  /** The kind it is counted as in the replica's connection metrics (set when admitted). */
  kind: ConnectionKind | undefined;
  #inFlight = 0;
  readonly #handlers: LinkHandlers;
  readonly #logger: Logger;
  readonly #settled = (): void => {
    this.#inFlight--;
  };
  readonly #failed = (err: unknown): void => {
    this.#inFlight--;
    this.#logger.log('debug', 'send-failed', { link: this.conn.id, error: err instanceof Error ? err.message : String(err) });
  };

  constructor(conn: Connection, direction: 'in' | 'out', handlers: LinkHandlers, logger: Logger) {
    this.conn = conn;
    this.direction = direction;
    this.#handlers = handlers;
    this.#logger = logger;
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  get remote(): string {
    return this.hello?.nodeId ?? this.conn.remoteAddress;
  }

  /** Start the read loop (and the close watcher); `from`: an iterator of the connection already in use
   * (the dialler's handshake read the first messages). */
  start(from?: AsyncIterator<Uint8Array>): this {
    void this.#readLoop(from);
    void this.conn.closed.then((info) => this.#handlers.onClose(this, info));
    return this;
  }

  send(message: Message): boolean {
    if (this.conn.isClosed) return false;
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(message);
    } catch (err) {
      this.#logger.log('error', 'encode-failed', { t: message.t, error: (err as Error).message });
      return false;
    }
    return this.sendBytes(bytes);
  }

  sendBytes(bytes: Uint8Array): boolean {
    if (this.conn.isClosed) return false;
    if (this.#inFlight >= MAX_SENDS_IN_FLIGHT) {
      this.conn.abort(new ProtocolViolationError(`peer not reading: ${this.#inFlight} sends in flight`));
      return false;
    }
    if (bytes.length > this.conn.maxMessageSize) {
      this.#logger.log('error', 'message-too-large', { size: bytes.length, limit: this.conn.maxMessageSize });
      return false;
    }
    this.#inFlight++;
    this.#handlers.onBytes?.('out', bytes.length);
    this.conn.send(bytes).then(this.#settled, this.#failed);
    return true;
  }

  abort(error?: Error): void {
    this.conn.abort(error);
  }

  /**
   * Stop reading this connection as the replication protocol once the current message is handled, and
   * give it — with every message after that one — to `to` (a state-transfer connection after its hello).
   */
  handOff(to: (conn: Connection) => void): void {
    this.#handOffTo = to;
  }

  #handOffTo: ((conn: Connection) => void) | undefined;

  async #readLoop(from: AsyncIterator<Uint8Array> | undefined): Promise<void> {
    const it = from ?? this.conn[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        const bytes = next.value;
        this.#handlers.onBytes?.('in', bytes.length);
        let message: Message;
        try {
          message = codec.decode(bytes);
        } catch (err) {
          this.#violation(err instanceof ProtocolViolationError ? err : new ProtocolViolationError(String(err)));
          return;
        }
        try {
          this.#handlers.onMessage(this, message);
        } catch (err) {
          if (err instanceof ProtocolViolationError) {
            this.#violation(err);
            return;
          }
          // A bug in a handler must not take the process down: log it, drop this connection.
          this.#logger.log('error', 'handler-failed', {
            link: this.conn.id,
            t: message.t,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          });
          this.conn.abort(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        const to = this.#handOffTo;
        if (to !== undefined) {
          this.#handOffTo = undefined;
          to(remainderOf(this.conn, it));
          return;
        }
      }
    } catch (err) {
      this.#logger.log('debug', 'read-ended', { link: this.conn.id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  #violation(error: ProtocolViolationError): void {
    this.conn.abort(error);
    this.#handlers.onViolation(this, error);
  }
}

/** The same connection, whose iteration continues from an iterator already in use. */
export function remainderOf(conn: Connection, it: AsyncIterator<Uint8Array>): Connection {
  return {
    get id() {
      return conn.id;
    },
    get localAddress() {
      return conn.localAddress;
    },
    get remoteAddress() {
      return conn.remoteAddress;
    },
    get maxMessageSize() {
      return conn.maxMessageSize;
    },
    get isClosed() {
      return conn.isClosed;
    },
    get closed() {
      return conn.closed;
    },
    send: (message) => conn.send(message),
    close: (reason) => conn.close(reason),
    abort: (error) => conn.abort(error),
    [Symbol.asyncIterator]: () => it,
  };
}
