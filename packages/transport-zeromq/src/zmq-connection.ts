import {
  BaseConnection,
  ConnectionClosedError,
  isTransportError,
  MessageTooLargeError,
  ProtocolError,
  TimeoutError,
  type CloseInfo,
  type ConnectionOptions,
} from '@tandem/transport';
import type { ResolvedZmqOptions } from './options.js';
import {
  CloseCode,
  Kind,
  MESSAGE_OVERHEAD,
  decodeClose,
  decodeNumber,
  encodeClose,
  encodeNumber,
  kindFrame,
  type Greeting,
} from './wire.js';

/**
 * The socket side of one connection: a DEALER socket for a dialler, a routing id on the listener's
 * ROUTER for an accepted connection.
 */
export interface ZmqLink {
  /** Queue frames ([kind] or [kind, payload]) to the peer; rejects if the peer is unreachable. */
  send(frames: Array<Buffer | Uint8Array>): Promise<void>;
  /** The connection is over: let go of the socket / routing entry. Called once. */
  release(): void;
}

/** How far past its window a peer may go before it counts as ignoring flow control. */
const WINDOW_SLACK = 64 * 1024;

/** One Tandem connection over ZeroMQ, with credit-based flow control and its own pings. */
export class ZmqConnection extends BaseConnection {
  readonly #link: ZmqLink;
  readonly #options: ResolvedZmqOptions;
  readonly #peer: Greeting;
  /** Bytes sent and not yet credited back by the peer. */
  #inFlight = 0;
  /** Most bytes in flight: the peer's window, at most this side's send high-water mark. */
  readonly #sendWindow: number;
  #creditWaiter: (() => void) | undefined;
  /** Bytes received and not yet granted back (read or unread). */
  #ungranted = 0;
  /** Bytes the application has read since the last grant. */
  #readSinceGrant = 0;
  #lastHeard = performance.now();
  #lastCheck = performance.now();
  #closeAcked: (() => void) | undefined;
  #released = false;
  #endingLocally = false;

  constructor(
    link: ZmqLink,
    addresses: { local: string; remote: string },
    peer: Greeting,
    options: ResolvedZmqOptions,
    connectionOptions: ConnectionOptions,
  ) {
    super({
      localAddress: addresses.local,
      remoteAddress: addresses.remote,
      maxMessageSize: connectionOptions.maxMessageSize,
      receiveHighWaterMark: connectionOptions.receiveHighWaterMark,
      sendHighWaterMark: connectionOptions.sendHighWaterMark,
      maxSendQueueBytes: connectionOptions.maxSendQueueBytes,
      idPrefix: 'zmq',
    });
    this.#link = link;
    this.#options = options;
    this.#peer = peer;
    // The peer announces its window, but this side decides how much it holds for it: a peer announcing
    // 4 GiB and never reading must not make libzmq queue 4 GiB here.
    this.#sendWindow = Math.min(peer.window, this.sendHighWaterMark);
    this.repeatWhileOpen(options.pingIntervalMs, () => this.#checkLiveness());
    void this.closed.then(() => {
      this.#creditWaiter?.();
      this.#release();
    });
  }

  /** The window this side grants the peer (announced in the greeting). */
  get window(): number {
    return this.receiveHighWaterMark;
  }

  // ---- from the socket ------------------------------------------------------------------------------

  /** One ZeroMQ message for this connection, routing id removed. */
  handleFrames(kindFrameIn: Buffer | undefined, payload: Buffer | undefined, extra: boolean): void {
    this.#lastHeard = performance.now();
    if (this.isClosed) return;
    const kind = kindFrameIn?.byteLength === 1 ? kindFrameIn[0]! : -1;
    if (extra) return this.#protocolError(`unexpected extra frames in a kind-${kind} message`);
    switch (kind) {
      case Kind.Data: {
        if (this.#endingLocally) return;
        const data = payload ?? EMPTY;
        if (data.byteLength > this.maxMessageSize) {
          return this.#failWith(new MessageTooLargeError(data.byteLength, this.maxMessageSize, { address: this.remoteAddress }));
        }
        this.#ungranted += data.byteLength + MESSAGE_OVERHEAD;
        if (this.#ungranted > this.window + this.maxMessageSize + WINDOW_SLACK) {
          return this.#protocolError('peer ignored flow control (sent past its window)');
        }
        this.deliver(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        return;
      }
      case Kind.Credit: {
        const n = decodeNumber(payload);
        if (n === undefined) return this.#protocolError('malformed credit frame');
        this.#inFlight = Math.max(0, this.#inFlight - n);
        this.#wakeSender();
        return;
      }
      case Kind.Ping:
        this.#sendControl(Kind.Pong);
        return;
      case Kind.Pong:
        return;
      case Kind.TooLarge: {
        const size = decodeNumber(payload);
        if (size === undefined) return this.#protocolError('malformed too-large frame');
        return this.#failWith(new MessageTooLargeError(size, this.maxMessageSize, { address: this.remoteAddress }));
      }
      case Kind.Close: {
        this.#sendControl(Kind.CloseAck);
        if (this.#endingLocally) {
          this.#closeAcked?.(); // both closed at once: theirs answers ours
          return;
        }
        const { code, reason } = decodeClose(payload);
        this.terminate(remoteCloseInfo(code, reason, this.remoteAddress));
        return;
      }
      case Kind.CloseAck:
        this.#closeAcked?.();
        return;
      case Kind.Hello:
      case Kind.Welcome:
        return this.#protocolError('greeting on an open connection');
      default:
        return this.#protocolError(`unknown frame kind ${kind}`);
    }
  }

  /** The socket or routing entry is gone (peer disconnected, unroutable). */
  linkLost(detail: string): void {
    this.#closeAcked?.();
    if (this.isClosed || this.#endingLocally) return;
    this.terminate({
      by: 'remote',
      reason: 'reset',
      error: new ConnectionClosedError(`connection reset: ${detail}`, { address: this.remoteAddress }),
    });
  }

  /** Send a ping now (used when the listener suspects a peer is gone). */
  probe(): void {
    this.#sendControl(Kind.Ping);
  }

  // ---- BaseConnection hooks --------------------------------------------------------------------------

  protected writeMessage(message: Uint8Array): void | Promise<void> {
    if (message.byteLength > this.#peer.maxMessageSize) {
      // Announce the size instead of shipping a payload the peer must refuse (as a TCP length prefix would).
      return this.#linkSend([kindFrame(Kind.TooLarge), encodeNumber(message.byteLength)]);
    }
    if (this.#inFlight >= this.#sendWindow) return this.#waitForCredit().then(() => this.writeMessage(message));
    this.#inFlight += message.byteLength + MESSAGE_OVERHEAD;
    return this.#linkSend([kindFrame(Kind.Data), message]);
  }

  protected async endTransport(reason: string): Promise<void> {
    this.#endingLocally = true;
    const acked = new Promise<void>((resolve) => (this.#closeAcked = resolve));
    const timer = setTimeout(() => this.#closeAcked?.(), this.#options.closeTimeoutMs);
    timer.unref();
    this.#sendControl(Kind.Close, encodeClose(CloseCode.Normal, reason));
    await acked;
    clearTimeout(timer);
    this.#release();
  }

  protected destroyTransport(error: Error | undefined): void {
    this.#endingLocally = true;
    const code = isTransportError(error, 'MessageTooLargeError')
      ? CloseCode.MessageTooLarge
      : isTransportError(error, 'ProtocolError')
        ? CloseCode.ProtocolError
        : isTransportError(error, 'TimeoutError')
          ? CloseCode.Timeout
          : CloseCode.Normal;
    this.#sendControl(Kind.Close, encodeClose(code, error ? error.message : 'aborted'));
    this.#release();
  }

  override [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const inner = super[Symbol.asyncIterator]();
    return {
      next: async () => {
        const r = await inner.next();
        if (!r.done) this.#consumed(r.value.byteLength + MESSAGE_OVERHEAD);
        return r;
      },
      return: async () => (inner.return ? inner.return() : { done: true, value: undefined }),
    };
  }

  // ---- internals -------------------------------------------------------------------------------------

  #consumed(bytes: number): void {
    if (this.isClosed) return;
    this.#readSinceGrant += bytes;
    if (this.#readSinceGrant >= this.window / 4 || this.#readSinceGrant >= this.#ungranted) {
      const grant = Math.min(this.#readSinceGrant, this.#ungranted);
      this.#readSinceGrant = 0;
      this.#ungranted -= grant;
      if (grant > 0) this.#sendControl(Kind.Credit, encodeNumber(grant));
    }
  }

  #waitForCredit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#creditWaiter = () => {
        this.#creditWaiter = undefined;
        if (this.isClosed) reject(new ConnectionClosedError('connection closed', { address: this.remoteAddress }));
        else resolve();
      };
    });
  }

  #wakeSender(): void {
    if (this.#inFlight < this.#sendWindow) this.#creditWaiter?.();
  }

  #linkSend(frames: Array<Buffer | Uint8Array>): Promise<void> {
    return this.#link.send(frames).catch((err: unknown) => {
      const e = err as { code?: string; message?: string };
      this.linkLost(`${e.code ?? 'send failed'}: ${e.message ?? ''}`);
      throw new ConnectionClosedError('connection closed', { address: this.remoteAddress, cause: err });
    });
  }

  /** Fire-and-forget control frame; a failure means the link is gone. */
  #sendControl(kind: Kind, payload?: Buffer): void {
    if (this.#released) return;
    const frames = payload ? [kindFrame(kind), payload] : [kindFrame(kind)];
    this.#link.send(frames).catch((err: unknown) => {
      const e = err as { code?: string; message?: string };
      this.linkLost(`${e.code ?? 'send failed'}: ${e.message ?? ''}`);
    });
  }

  #protocolError(message: string): void {
    this.#failWith(new ProtocolError(message, { address: this.remoteAddress }));
  }

  /** Ends the connection for a fault of the peer's; destroyTransport sends the matching CLOSE code. */
  #failWith(error: Error): void {
    this.fail(
      error,
      isTransportError(error, 'TimeoutError')
        ? 'liveness timeout'
        : isTransportError(error, 'MessageTooLargeError')
          ? 'message too large'
          : 'protocol error',
    );
  }

  #checkLiveness(): void {
    if (this.isClosed || this.#endingLocally) return;
    const now = performance.now();
    // A timer that fires far too late means this process was busy (or paused): the peer's messages may
    // be waiting unread, so the silence is ours, not the peer's.
    if (now - this.#lastCheck > 2 * this.#options.pingIntervalMs) this.#lastHeard = now;
    this.#lastCheck = now;
    if (performance.now() - this.#lastHeard >= this.#options.livenessTimeoutMs) {
      this.#failWith(new TimeoutError(`peer silent for ${this.#options.livenessTimeoutMs} ms`, { address: this.remoteAddress }));
      return;
    }
    this.#sendControl(Kind.Ping);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#link.release();
  }
}

const EMPTY = Buffer.alloc(0);

function remoteCloseInfo(code: number, reason: string, address: string): CloseInfo {
  const detail = reason ? `: ${reason}` : '';
  switch (code) {
    case CloseCode.Normal:
      return { by: 'remote', reason: reason || 'closed by peer' };
    case CloseCode.MessageTooLarge:
      return {
        by: 'remote',
        reason: `peer refused a message as too large${detail}`,
        error: new ConnectionClosedError(`peer closed: message too large${detail}`, { address }),
      };
    case CloseCode.Timeout:
      return {
        by: 'remote',
        reason: `peer timed out${detail}`,
        error: new ConnectionClosedError(`peer closed: liveness timeout${detail}`, { address }),
      };
    default:
      return {
        by: 'remote',
        reason: `peer reported a protocol error${detail}`,
        error: new ProtocolError(`peer closed with a protocol error${detail}`, { address }),
      };
  }
}
