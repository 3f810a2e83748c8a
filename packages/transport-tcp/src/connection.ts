/**
 * A Tandem connection over a node:net (or node:tls) socket: the stream framing of @tandem/transport
 * (8-byte preamble, then 4-byte big-endian length + payload per message), TCP_NODELAY, and backpressure in
 * both directions — a send settles when the socket's write buffer is below the send high-water mark (by
 * default Node's own 16 KiB: write returned true), else after 'drain', and reading pauses while the
 * application leaves more than the receive high-water mark unread. A peer that stops inside a frame (or,
 * on an accepted socket, before its preamble) for `partialFrameTimeoutMs` is cut off with a TimeoutError.
 */
import type { Socket } from 'node:net';
import {
  BaseConnection,
  ConnectionRefusedError,
  encodeFrameHeader,
  FrameDecoder,
  STREAM_PREAMBLE,
  type BaseConnectionInit,
} from '@tandem/transport';

/** Messages up to this size are written as one buffer (header + payload copied); larger ones as two writes. */
const COALESCE_BELOW = 16 * 1024;
/** The reused read buffer of a dialled socket (see DirectReads). */
const READ_BYTES = 64 * 1024;

/**
 * Where the reads of a dialled plain-TCP socket land (`net.connect({ onread })`): while a message
 * longer than what has arrived is being assembled, the kernel copies the next bytes straight into the
 * rest of it; otherwise they go to one reused 64 KiB buffer, and messages found whole in it are copied
 * out (the next read overwrites it). With Node's default reads every read allocated a fresh 64 KiB
 * buffer and every large message was copied once more from those into its own: for a joiner receiving
 * 116 MB, 1 800 allocations (external memory, so more garbage collections) and 116 MB of copying.
 */
export class DirectReads {
  readonly scratch: Buffer = Buffer.allocUnsafeSlow(READ_BYTES);
  #reader: DirectReader | undefined;
  /** Reads that arrived before a connection attached (copies). */
  #early: Buffer[] = [];

  /** For `net.connect({ onread })`: the buffer of the next read, and each read (Node hands back that buffer). */
  readonly onread = {
    buffer: (): Uint8Array => {
      const rest = this.#reader?.rest();
      return rest !== undefined && rest.byteLength > 0 ? rest : this.scratch;
    },
    callback: (n: number, buf: Uint8Array): boolean => {
      if (!this.#reader) this.#early.push(Buffer.from(buf.subarray(0, n)));
      else if (buf === this.scratch) this.#reader.bytes(buf.subarray(0, n));
      else this.#reader.filled(n);
      return true;
    },
  };

  attach(reader: DirectReader): void {
    this.#reader = reader;
    for (const b of this.#early.splice(0)) reader.bytes(b);
  }
}

/** What a connection does with DirectReads' reads. */
export interface DirectReader {
  /** The unfilled rest of the message being assembled, if any (the next read goes there). */
  rest(): Uint8Array | undefined;
  /** Bytes read into the reused buffer (overwritten by the next read). */
  bytes(chunk: Uint8Array): void;
  /** `n` bytes were read straight into `rest()`. */
  filled(n: number): void;
}

/** `closeTimeoutMs` also bounds how long after a graceful close the socket waits for the peer's FIN. */
export interface TcpConnectionInit extends BaseConnectionInit {
  /** An accepted socket: the peer owes its preamble at once (the partial-frame deadline runs from the start). */
  accepted?: boolean;
}

export class TcpConnection extends BaseConnection {
  /** The underlying Node socket (a TLSSocket for `tls://`). */
  readonly socket: Socket;
  /** Settles when the peer's preamble arrived (rejects if the connection ends first). */
  readonly ready: Promise<void>;
  #decoder: FrameDecoder;
  #socketError: Error | undefined;
  #readyResolve!: () => void;
  #readyReject!: (err: Error) => void;
  #drainWaiters: (() => void)[] = [];

  /** `reads`: the socket was made with `onread: reads.onread` (dialled plain TCP); else it emits 'data'. */
  constructor(socket: Socket, init: TcpConnectionInit, reads?: DirectReads) {
    super({
      idPrefix: 'tcp',
      ...init,
      // Node's socket buffer (16 KiB) is the least this side holds; more only when asked for.
      sendHighWaterMark:
        init.sendHighWaterMark === undefined
          ? socket.writableHighWaterMark
          : Math.max(init.sendHighWaterMark, socket.writableHighWaterMark),
    });
    this.socket = socket;
    // Reads into DirectReads' reused buffer: whole messages found in it are copied out.
    this.#decoder = new FrameDecoder({ maxMessageSize: this.maxMessageSize, expectPreamble: true, reusedChunks: reads !== undefined });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => undefined);
    void this.closed.then((info) => {
      this.#readyReject(
        info.error ??
          new ConnectionRefusedError(`the peer closed the connection before the handshake completed (${info.reason})`, {
            address: this.remoteAddress,
          }),
      );
      this.#releaseDrainWaiters();
    });

    socket.setNoDelay(true);
    if (reads) {
      reads.attach({
        rest: () => this.#decoder.partialRest(),
        bytes: (chunk) => this.#onData(chunk),
        filled: (n) => this.#onFilled(n),
      });
    } else socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err) => {
      this.#socketError ??= err;
    });
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#releaseDrainWaiters());
    socket.write(STREAM_PREAMBLE);
    if (init.accepted) this.expectPeerBytes();
  }

  protected writeMessage(message: Uint8Array): void | Promise<void> {
    const socket = this.socket;
    if (socket.destroyed) return;
    const header = encodeFrameHeader(message.byteLength);
    if (message.byteLength < COALESCE_BELOW) {
      const frame = new Uint8Array(header.byteLength + message.byteLength);
      frame.set(header, 0);
      frame.set(message, header.byteLength);
      socket.write(frame);
    } else {
      socket.cork();
      socket.write(header);
      socket.write(message);
      process.nextTick(() => socket.uncork());
    }
    // Handed on while the socket buffers less than the mark. At or above it, write returned false (the
    // mark is at least the socket's own high-water mark), so 'drain' follows.
    if (socket.writableLength < this.sendHighWaterMark) return;
    return new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
  }

  protected endTransport(): Promise<void> {
    const socket = this.socket;
    return new Promise<void>((resolve) => {
      if (socket.destroyed) return resolve();
      const timer = setTimeout(() => socket.destroy(), this.closeTimeoutMs);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
      socket.resume(); // keep reading so the peer's FIN (and anything before it) is consumed
      socket.end(() => resolve());
      socket.once('close', () => resolve());
    });
  }

  protected destroyTransport(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    try {
      socket.resetAndDestroy(); // RST: the peer learns at once that this was not a graceful close
    } catch {
      socket.destroy();
    }
  }

  protected override pauseSource(): void {
    this.socket.pause();
  }

  protected override resumeSource(): void {
    this.socket.resume();
  }

  #onData(chunk: Uint8Array): void {
    if (this.deliverFrames(this.#decoder, chunk) && this.#decoder.preambleReceived) this.#readyResolve();
  }

  /** `n` bytes were read straight into the rest of the message being assembled (DirectReads). */
  #onFilled(n: number): void {
    if (this.isClosed) return;
    let message: Uint8Array | undefined;
    try {
      message = this.#decoder.filled(n);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (message) this.deliver(message);
    this.noteReceived(this.#decoder.isMidFrame);
  }

  #onEnd(): void {
    if (this.isClosed) return;
    try {
      this.#decoder.finish();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.terminate({ by: 'remote', reason: 'closed by peer' });
  }

  #onClose(): void {
    if (this.isClosed) return;
    const err = this.#socketError;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    this.terminate({
      by: 'remote',
      reason: err ? (code === 'ECONNRESET' ? 'reset by peer' : `socket error: ${err.message}`) : 'closed by peer',
      ...(err ? { error: err } : {}),
    });
  }

  #releaseDrainWaiters(): void {
    for (const f of this.#drainWaiters.splice(0)) f();
  }
}
