/**
 * A raw byte pipe into a memory listener — the memory transport's equivalent of opening a plain socket to
 * a TCP port. The accepted side (`MemoryStreamConnection`) speaks the stream framing of `framing.ts`, so
 * it is held to the same rules as a byte-stream adapter: bad preamble or oversized frame → typed error,
 * connection closed.
 */
import { BaseConnection, type BaseConnectionInit } from '../base-connection.js';
import { encodeFrame, FrameDecoder, STREAM_PREAMBLE } from '../framing.js';
import { cancellable, type Schedule } from './faults.js';

/** The raw end: write arbitrary bytes, read what the listener side writes, see when it closes. */
export class RawMemoryPeer {
  /** Bytes written by the listener side (its preamble, then frames). */
  readonly received: Uint8Array[] = [];
  /** Settles when the listener side closed the pipe, with its reason. */
  readonly closed: Promise<string>;
  #resolveClosed!: (reason: string) => void;
  #isClosed = false;
  #schedule: Schedule;
  /** @internal */
  conn: MemoryStreamConnection | undefined;

  constructor(schedule: Schedule) {
    this.#schedule = schedule;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** True once the listener side closed the pipe (`closed` has settled). */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Send bytes to the listener side (asynchronously, in order). */
  write(bytes: Uint8Array): void {
    if (this.#isClosed) return;
    const copy = bytes.slice();
    cancellable(this.#schedule, 0, () => this.conn?.receiveBytes(copy));
  }

  /** End the pipe from this side. */
  end(): void {
    if (this.#isClosed) return;
    cancellable(this.#schedule, 0, () => this.conn?.receiveEnd());
  }

  /** @internal the listener side wrote bytes */
  push(bytes: Uint8Array): void {
    if (!this.#isClosed) this.received.push(bytes);
  }

  /** @internal the listener side closed the pipe */
  shut(reason: string): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#resolveClosed(reason);
  }
}

export class MemoryStreamConnection extends BaseConnection {
  #peer: RawMemoryPeer;
  #decoder: FrameDecoder;
  #schedule: Schedule;

  constructor(peer: RawMemoryPeer, schedule: Schedule, init: BaseConnectionInit) {
    super({ idPrefix: 'mem-raw', ...init });
    this.#peer = peer;
    this.#schedule = schedule;
    this.#decoder = new FrameDecoder({ maxMessageSize: this.maxMessageSize, expectPreamble: true });
    peer.conn = this;
    peer.push(STREAM_PREAMBLE.slice());
    // like an accepted socket: the peer owes its preamble from now on
    this.expectPeerBytes();
  }

  protected override startTimer(ms: number, fn: () => void): { cancel(): void } {
    return cancellable(this.#schedule, ms, fn);
  }

  /** Virtual time: timers are never late. */
  protected override wallClock(): undefined {
    return undefined;
  }

  receiveBytes(bytes: Uint8Array): void {
    this.deliverFrames(this.#decoder, bytes);
  }

  receiveEnd(): void {
    if (this.isClosed) return;
    try {
      this.#decoder.finish();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.#peer.shut('closed by peer');
    this.terminate({ by: 'remote', reason: 'closed by peer' });
  }

  protected writeMessage(message: Uint8Array): void {
    this.#peer.push(encodeFrame(message));
  }

  protected endTransport(): void {
    this.#peer.shut('closed');
  }

  protected destroyTransport(error: Error | undefined): void {
    this.#peer.shut(error ? `reset: ${error.message}` : 'reset');
  }
}
