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
import type WebSocket from 'ws';
import type { FrameWatch } from './frame-watch.js';
import type { ResolvedWebSocketOptions } from './options.js';

/** WebSocket close codes used here (RFC 6455 §7.4.1). */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_ABNORMAL = 1006;
const CLOSE_MESSAGE_TOO_BIG = 1009;

/**
 * Default send high-water mark: while less than this many bytes wait in ws and the socket, a send counts
 * as handed on at once; above it, each send waits for its write to reach the kernel, which is what stalls
 * a sender whose peer does not read.
 */
const SEND_BUFFER_BYTES = 1024 * 1024;

/**
 * While reading is paused a peer's close (FIN) goes unnoticed; a write to a closed peer fails, so a
 * paused connection probes with a ping this often (a few bytes) to notice a vanished peer promptly.
 */
const PAUSED_PROBE_MS = 200;

/** One open WebSocket as a Tandem connection: binary messages only, pings for liveness. */
export class WebSocketConnection extends BaseConnection {
  readonly #ws: WebSocket;
  readonly #options: ResolvedWebSocketOptions;
  /** This side is ending the socket (close/abort/failure): its 'close' event is not the peer's doing. */
  #endingLocally = false;
  #receivePaused = false;
  #lastHeard = performance.now();
  #lastCheck = performance.now();
  #pausedProbeTimer: NodeJS.Timeout | undefined;
  #socketClosed: Promise<void>;

  /** `frames`: the frame boundaries of the socket's bytes, for the partial-frame deadline. */
  constructor(
    ws: WebSocket,
    addresses: { local: string; remote: string },
    options: ResolvedWebSocketOptions,
    connectionOptions: ConnectionOptions,
    frames?: FrameWatch,
  ) {
    super({
      localAddress: addresses.local,
      remoteAddress: addresses.remote,
      maxMessageSize: connectionOptions.maxMessageSize,
      receiveHighWaterMark: connectionOptions.receiveHighWaterMark,
      sendHighWaterMark: connectionOptions.sendHighWaterMark ?? SEND_BUFFER_BYTES,
      maxSendQueueBytes: connectionOptions.maxSendQueueBytes,
      partialFrameTimeoutMs: connectionOptions.partialFrameTimeoutMs,
      idPrefix: 'ws',
    });
    this.#ws = ws;
    this.#options = options;
    ws.binaryType = 'nodebuffer';
    this.#socketClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('ping', () => this.#heard());
    ws.on('pong', () => this.#heard());
    ws.on('error', (err) => this.#onError(err));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
    this.repeatWhileOpen(options.pingIntervalMs, () => this.#checkLiveness());
    void this.closed.then(() => {
      clearInterval(this.#pausedProbeTimer);
      frames?.onChunk(undefined);
    });
    if (frames && this.partialFrameTimeoutMs > 0) {
      frames.onChunk((midFrame) => this.noteReceived(midFrame));
      if (frames.chunks > 0) this.noteReceived(frames.midFrame);
    }
  }

  protected writeMessage(message: Uint8Array): void | Promise<void> {
    if (this.#ws.bufferedAmount < this.sendHighWaterMark) {
      this.#ws.send(message, { binary: true }, swallow);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      this.#ws.send(message, { binary: true }, (err) => (err ? reject(err) : resolve()));
    });
  }

  protected async endTransport(reason: string): Promise<void> {
    this.#endingLocally = true;
    // Read again so the peer's close frame can arrive even if the receive queue is full.
    this.#ws.resume();
    // ws sends the close frame after every frame already queued: sends handed on are flushed first.
    this.#ws.close(CLOSE_NORMAL, truncateReason(reason));
    this.#terminateLater();
    await this.#socketClosed;
  }

  protected destroyTransport(error: Error | undefined): void {
    this.#endingLocally = true;
    const protocolError = isTransportError(error, 'ProtocolError');
    const code = protocolError ? CLOSE_PROTOCOL_ERROR : undefined;
    if (protocolError && /text frame/.test(error.message)) {
      this.#closeWith(CLOSE_UNSUPPORTED_DATA, error.message);
    } else if (code !== undefined || isTransportError(error, 'MessageTooLargeError')) {
      // ws already sent its close frame for frames it rejected itself; otherwise send ours. Then do not
      // wait long for a misbehaving peer.
      this.#closeWith(code ?? CLOSE_MESSAGE_TOO_BIG, error?.message ?? '');
    } else {
      this.#ws.terminate();
    }
  }

  protected override pauseSource(): void {
    this.#receivePaused = true;
    this.#ws.pause();
    this.#pausedProbeTimer ??= setInterval(() => this.#ping(), PAUSED_PROBE_MS);
    this.#pausedProbeTimer.unref();
  }

  protected override resumeSource(): void {
    // While paused the peer could not be heard; do not count that time against it.
    this.#receivePaused = false;
    clearInterval(this.#pausedProbeTimer);
    this.#pausedProbeTimer = undefined;
    this.#lastHeard = performance.now();
    this.#ws.resume();
  }

  #closeWith(code: number, reason: string): void {
    try {
      this.#ws.close(code, truncateReason(reason));
    } catch {
      this.#ws.terminate();
      return;
    }
    this.#terminateLater();
  }

  #terminateLater(): void {
    const timer = setTimeout(() => this.#ws.terminate(), this.#options.closeTimeoutMs);
    timer.unref();
    void this.#socketClosed.then(() => clearTimeout(timer));
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#heard();
    if (this.isClosed || this.#endingLocally) return;
    if (!isBinary) {
      this.fail(
        new ProtocolError('received a text frame; this transport carries binary messages only', { address: this.remoteAddress }),
        'protocol error',
      );
      return;
    }
    this.deliver(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  #onError(err: Error & { code?: string }): void {
    if (this.isClosed) return;
    const code = err.code ?? '';
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      // ws stops at the frame header, so the exact size is unknown: report "more than the limit".
      this.fail(
        new MessageTooLargeError(this.maxMessageSize + 1, this.maxMessageSize, { address: this.remoteAddress, cause: err }),
        'message too large',
      );
    } else if (code.startsWith('WS_ERR_')) {
      this.fail(new ProtocolError(`invalid WebSocket data: ${err.message}`, { address: this.remoteAddress, cause: err }), 'protocol error');
    } else if (!this.#endingLocally) {
      this.#endingLocally = true;
      this.#ws.terminate();
      this.terminate({
        by: 'remote',
        reason: 'reset',
        error: new ConnectionClosedError(`connection reset: ${err.message}`, { address: this.remoteAddress, cause: err }),
      });
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.isClosed || this.#endingLocally) return;
    this.terminate(remoteCloseInfo(code, reason, this.remoteAddress));
  }

  #heard(): void {
    this.#lastHeard = performance.now();
  }

  #checkLiveness(): void {
    if (this.isClosed || this.#endingLocally) return;
    const now = performance.now();
    // A timer that fires far too late means this process was busy (or paused): the peer's messages may
    // be waiting unread, so the silence is ours, not the peer's.
    if (now - this.#lastCheck > 2 * this.#options.pingIntervalMs) this.#lastHeard = now;
    this.#lastCheck = now;
    if (this.#receivePaused) {
      // Reading is paused: the peer's pings sit unread in the socket, so silence proves nothing.
      this.#lastHeard = performance.now();
    } else if (performance.now() - this.#lastHeard >= this.#options.livenessTimeoutMs) {
      this.fail(
        new TimeoutError(`peer silent for ${this.#options.livenessTimeoutMs} ms`, { address: this.remoteAddress }),
        'liveness timeout',
      );
      return;
    }
    // Every end pings on its own timer, so a peer whose own reader is paused still proves it is alive.
    this.#ping();
  }

  #ping(): void {
    if (this.isClosed) return;
    try {
      this.#ws.ping();
    } catch {
      // not open any more; 'close' follows
    }
  }
}

function remoteCloseInfo(code: number, reason: string, address: string): CloseInfo {
  const detail = reason ? `: ${reason}` : '';
  switch (code) {
    case CLOSE_NORMAL:
    case CLOSE_GOING_AWAY:
      return { by: 'remote', reason: reason || 'closed by peer' };
    case CLOSE_ABNORMAL:
      return { by: 'remote', reason: 'reset', error: new ConnectionClosedError('connection reset (no close frame)', { address }) };
    case CLOSE_MESSAGE_TOO_BIG:
      return {
        by: 'remote',
        reason: `peer refused a message as too large${detail}`,
        error: new ConnectionClosedError(`peer closed with code 1009 (message too big)${detail}`, { address }),
      };
    case CLOSE_PROTOCOL_ERROR:
    case CLOSE_UNSUPPORTED_DATA:
      return {
        by: 'remote',
        reason: `peer reported a protocol error${detail}`,
        error: new ProtocolError(`peer closed with code ${code}${detail}`, { address }),
      };
    default:
      return {
        by: 'remote',
        reason: reason || `closed by peer (code ${code})`,
        error: new ConnectionClosedError(`peer closed with code ${code}${detail}`, { address }),
      };
  }
}

function swallow(): void {
  // a failed write surfaces as the socket's 'error'/'close', which ends the connection
}

/** Close reasons are limited to 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.byteLength <= 123) return reason;
  return (
    bytes
      .subarray(0, 120)
      .toString('utf8')
      .replace(/\uFFFD$/, '') + '…'
  );
}
