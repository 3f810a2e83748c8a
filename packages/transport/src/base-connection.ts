/**
 * The bookkeeping every adapter needs, written once: an ordered send queue whose promises settle when the
 * adapter has handed each message on (bounded: past `maxSendQueueBytes` the connection is aborted with
 * SendQueueFullError), a bounded receive queue that pauses the source above its high-water mark, a single
 * async iterator, the deadline for a half-received frame, and close handling (CloseInfo, pending sends
 * failing with ConnectionClosedError). An adapter subclasses it and implements four small hooks; see
 * docs/TRANSPORTS.md.
 */
import { ConnectionClosedError, MessageTooLargeError, SendQueueFullError, TimeoutError } from './errors.js';
import type { FrameDecoder } from './framing.js';
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_PARTIAL_FRAME_TIMEOUT_MS,
  DEFAULT_RECEIVE_HIGH_WATER_MARK,
  DEFAULT_SEND_HIGH_WATER_MARK,
  resolveMaxSendQueueBytes,
  type CloseInfo,
  type Connection,
} from './types.js';

/** Bytes charged per queued message on top of its length, so that floods of empty messages stay bounded. */
export const RECEIVE_QUEUE_MESSAGE_OVERHEAD = 32;

/** The same charge per message waiting in the send queue (against `maxSendQueueBytes`). */
export const SEND_QUEUE_MESSAGE_OVERHEAD = 32;

/** What an adapter passes to the BaseConnection constructor: the two addresses and the connection's limits. */
export interface BaseConnectionInit {
  /** This end's address, in the transport's URL form. */
  localAddress: string;
  /** The peer's address, in the transport's URL form. */
  remoteAddress: string;
  /** Largest message sent or accepted (default DEFAULT_MAX_MESSAGE_SIZE). */
  maxMessageSize?: number | undefined;
  /** Unread bytes at which reading pauses (default DEFAULT_RECEIVE_HIGH_WATER_MARK). */
  receiveHighWaterMark?: number | undefined;
  /**
   * The most bytes the adapter hands on and holds for the peer (see ConnectionOptions.sendHighWaterMark).
   * BaseConnection only records it (default DEFAULT_SEND_HIGH_WATER_MARK); the adapter's writeMessage
   * enforces it. An adapter with a smaller default passes its own.
   */
  sendHighWaterMark?: number | undefined;
  /** Hard limit on the bytes queued in the connection for sending; see ConnectionOptions.maxSendQueueBytes. */
  maxSendQueueBytes?: number | undefined;
  /**
   * Deadline for a half-received frame, in ms (0 = none); see ConnectionOptions.partialFrameTimeoutMs.
   * Enforced for adapters that report their framing state (`deliverFrames`, `noteReceived`).
   */
  partialFrameTimeoutMs?: number | undefined;
  /** Prefix of the generated id, e.g. "tcp" → "tcp-17". */
  idPrefix?: string;
  /**
   * How long `close()` waits for earlier sends to be handed on (a peer that never reads holds them back)
   * before it gives up and aborts with a TimeoutError. Default DEFAULT_CLOSE_TIMEOUT_MS.
   */
  closeTimeoutMs?: number | undefined;
}

/** Default bound on the flush phase of a graceful close, in ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

interface PendingSend {
  message: Uint8Array;
  resolve: () => void;
  reject: (err: Error) => void;
  settled: boolean;
}

let nextConnectionNumber = 1;

export abstract class BaseConnection implements Connection {
  readonly id: string;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly maxMessageSize: number;
  /** Unread bytes at which the connection stops reading from the network. */
  readonly receiveHighWaterMark: number;
  /** Bytes handed on and not yet sent past which a `send` settles only once they drain. */
  readonly sendHighWaterMark: number;
  /** Bytes queued for sending past which the connection aborts with SendQueueFullError. */
  readonly maxSendQueueBytes: number;
  /** A peer silent this long in the middle of a frame is cut off with TimeoutError (0: never). */
  readonly partialFrameTimeoutMs: number;
  /** How long `close()` waits for queued sends to flush before it aborts. */
  readonly closeTimeoutMs: number;
  readonly closed: Promise<CloseInfo>;

  #resolveClosed!: (info: CloseInfo) => void;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closeInfo: CloseInfo | undefined;
  #closing: Promise<void> | undefined;

  #sendQueue: PendingSend[] = [];
  #sendHead = 0;
  #sendQueueBytes = 0;
  #pumping = false;
  #sendIdle: (() => void)[] = [];

  #recvQueue: Uint8Array[] = [];
  #recvHead = 0;
  #recvBytes = 0;
  #sourcePaused = false;
  #wakeReader: (() => void) | undefined;
  #iterating = false;
  /** Times the source was paused (reading stopped for our own reasons: the peer's silence does not count). */
  #pauses = 0;

  #midFrame = false;
  /** Received chunks, counted: the partial-frame deadline looks for progress since it was armed. */
  #receivedChunks = 0;
  #partialFrameTimer: { cancel(): void } | undefined;

  constructor(init: BaseConnectionInit) {
    this.id = `${init.idPrefix ?? 'conn'}-${nextConnectionNumber++}`;
    this.localAddress = init.localAddress;
    this.remoteAddress = init.remoteAddress;
    this.maxMessageSize = init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.receiveHighWaterMark = init.receiveHighWaterMark ?? DEFAULT_RECEIVE_HIGH_WATER_MARK;
    this.sendHighWaterMark = init.sendHighWaterMark ?? DEFAULT_SEND_HIGH_WATER_MARK;
    this.maxSendQueueBytes = resolveMaxSendQueueBytes(init.maxSendQueueBytes, this.maxMessageSize);
    this.partialFrameTimeoutMs = init.partialFrameTimeoutMs ?? DEFAULT_PARTIAL_FRAME_TIMEOUT_MS;
    for (const [name, value] of [
      ['maxMessageSize', this.maxMessageSize],
      ['receiveHighWaterMark', this.receiveHighWaterMark],
      ['sendHighWaterMark', this.sendHighWaterMark],
      ['maxSendQueueBytes', this.maxSendQueueBytes],
      ['partialFrameTimeoutMs', this.partialFrameTimeoutMs],
    ] as const) {
      if (!(value >= 0)) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
    }
    this.closeTimeoutMs = init.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.closed = new Promise<CloseInfo>((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  // ---- hooks for the adapter ------------------------------------------------------------------------

  /**
   * Hand one message to the underlying channel. Called one at a time, in send order; the next call waits
   * until the returned promise (if any) settles — return a promise when the channel is full (e.g. after
   * `socket.write` returned false, until 'drain'). Throwing/rejecting fails that send and aborts the
   * connection.
   */
  protected abstract writeMessage(message: Uint8Array): void | Promise<void>;

  /**
   * Graceful end: every earlier message has been handed on; flush and end the channel. When this settles
   * the connection is reported closed (by 'local'). The adapter should make sure the channel is released
   * eventually even if the peer never answers (e.g. destroy after a grace period).
   */
  protected abstract endTransport(reason: string): void | Promise<void>;

  /** Immediate end: drop the channel now. Must not throw. */
  protected abstract destroyTransport(error: Error | undefined): void;

  /** Stop reading from the source (the receive queue is above the high-water mark). */
  protected pauseSource(): void {}

  /** Resume reading from the source (the receive queue drained below half the high-water mark). */
  protected resumeSource(): void {}

  /**
   * Timer used for the close timeout. Default setTimeout (unref'd); an adapter on virtual time (the
   * memory transport) overrides it with its scheduler.
   */
  protected startTimer(
    ms: number,
    fn: () => void,
  ): {
    /** Stop the timer if it has not fired. */
    cancel(): void;
  } {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  }

  /**
   * Wall-clock ms, to notice that a timer of `startTimer` fired far too late because this process was busy
   * (the peer's bytes may then be waiting unread: the silence was ours). An adapter on virtual time
   * returns undefined (its timers are never late).
   */
  protected wallClock(): number | undefined {
    return performance.now();
  }

  // ---- calls for the adapter ------------------------------------------------------------------------

  /**
   * Calls `tick` every `intervalMs` (unref'd) until the connection closes, e.g. an adapter's liveness
   * check; `intervalMs` 0 means never.
   */
  protected repeatWhileOpen(intervalMs: number, tick: () => void): void {
    if (intervalMs <= 0) return;
    const t = setInterval(tick, intervalMs);
    t.unref?.();
    void this.closed.then(() => clearInterval(t));
  }

  /** A whole message arrived from the peer. Ignored once closed. */
  protected deliver(message: Uint8Array): void {
    if (this.#state === 'closed') return;
    this.#recvQueue.push(message);
    this.#recvBytes += message.byteLength + RECEIVE_QUEUE_MESSAGE_OVERHEAD;
    if (!this.#sourcePaused && this.#recvBytes > this.receiveHighWaterMark) {
      this.#sourcePaused = true;
      this.#pauses++;
      this.pauseSource();
    }
    this.#wake();
  }

  /**
   * Stream adapters: bytes arrived from the peer, and `midFrame` says whether the stream now stops inside
   * a frame (or inside the handshake). While it does, a peer that sends nothing more for
   * `partialFrameTimeoutMs` fails the connection with a TimeoutError (slow loris). `deliverFrames` calls
   * it; call it yourself for bytes you decode otherwise.
   */
  protected noteReceived(midFrame: boolean): void {
    this.#receivedChunks++;
    this.#midFrame = midFrame;
    if (midFrame && this.#partialFrameTimer === undefined) this.#armPartialFrameTimer();
  }

  /**
   * The peer owes this side bytes from now on (an accepted stream waiting for the peer's preamble): the
   * partial-frame deadline runs until `noteReceived(false)`.
   */
  protected expectPeerBytes(): void {
    this.#midFrame = true;
    if (this.#partialFrameTimer === undefined) this.#armPartialFrameTimer();
  }

  /**
   * Stream adapters: feed received bytes through the connection's frame decoder and deliver every whole
   * message; a framing error (garbage, oversized frame) fails the connection. False when it failed.
   */
  protected deliverFrames(decoder: FrameDecoder, bytes: Uint8Array): boolean {
    if (this.#state === 'closed') return false;
    let messages: Uint8Array[];
    try {
      messages = decoder.push(bytes);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    for (const m of messages) this.deliver(m);
    this.noteReceived(decoder.isMidFrame);
    return true;
  }

  /**
   * The channel has ended (peer closed, reset, network error) or the adapter decided so. Settles
   * `closed`, fails pending sends, and ends iteration after the queued messages. Idempotent.
   */
  protected terminate(info: CloseInfo): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closeInfo = info;
    this.#partialFrameTimer?.cancel();
    this.#partialFrameTimer = undefined;
    this.#sendQueueBytes = 0;
    const err = new ConnectionClosedError(`connection ${this.id} closed: ${info.reason}`, {
      address: this.remoteAddress,
      ...(info.error ? { cause: info.error } : {}),
    });
    for (let i = this.#sendHead; i < this.#sendQueue.length; i++) this.#settle(this.#sendQueue[i]!, err);
    this.#sendQueue = [];
    this.#sendHead = 0;
    for (const f of this.#sendIdle.splice(0)) f();
    this.#wake();
    this.#resolveClosed(info);
  }

  /**
   * The peer broke the protocol (oversized frame, garbage): drop the channel and report the error.
   * `by` is 'remote' because the peer caused it.
   */
  protected fail(error: Error, reason = error.message): void {
    if (this.#state === 'closed') return;
    this.destroyTransport(error);
    this.terminate({ by: 'remote', reason, error });
  }

  // ---- Connection -----------------------------------------------------------------------------------

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Why the connection closed, once it has. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Bytes received and not yet read by the application (with a small per-message overhead). */
  get bufferedReceiveBytes(): number {
    return this.#recvBytes;
  }

  /** Sends accepted but not yet handed on. */
  get pendingSends(): number {
    return this.#sendQueue.length - this.#sendHead;
  }

  /** Bytes of the sends accepted but not yet handed on (each counting SEND_QUEUE_MESSAGE_OVERHEAD extra). */
  get queuedSendBytes(): number {
    return this.#sendQueueBytes;
  }

  send(message: Uint8Array): Promise<void> {
    if (this.#state !== 'open') {
      return Promise.reject(
        new ConnectionClosedError(`connection ${this.id} is ${this.#state}`, {
          address: this.remoteAddress,
          ...(this.#closeInfo?.error ? { cause: this.#closeInfo.error } : {}),
        }),
      );
    }
    if (!(message instanceof Uint8Array)) return Promise.reject(new TypeError('send expects a Uint8Array'));
    if (message.byteLength > this.maxMessageSize) {
      return Promise.reject(new MessageTooLargeError(message.byteLength, this.maxMessageSize, { address: this.remoteAddress }));
    }
    const cost = message.byteLength + SEND_QUEUE_MESSAGE_OVERHEAD;
    if (this.pendingSends > 0 && this.#sendQueueBytes + cost > this.maxSendQueueBytes) {
      // The peer is not taking what was sent (or the application does not await its sends): rather than
      // grow without bound, give up on this connection.
      const error = new SendQueueFullError(this.#sendQueueBytes + cost, this.maxSendQueueBytes, { address: this.remoteAddress });
      this.abort(error);
      return Promise.reject(error);
    }
    this.#sendQueueBytes += cost;
    return new Promise<void>((resolve, reject) => {
      this.#sendQueue.push({ message, resolve, reject, settled: false });
      if (!this.#pumping) this.#pump();
    });
  }

  close(reason = 'closed'): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    if (this.#closing) return this.#closing;
    this.#state = 'closing';
    this.#closing = (async () => {
      if (this.#pumping || this.pendingSends > 0) {
        let timedOut = false;
        const timer = this.startTimer(this.closeTimeoutMs, () => {
          timedOut = true;
          for (const f of this.#sendIdle.splice(0)) f();
        });
        await this.#whenSendsHandedOn();
        timer.cancel();
        if (timedOut && this.#state !== 'closed') {
          const error = new TimeoutError(`close: earlier sends were not handed on within ${this.closeTimeoutMs} ms`, {
            address: this.remoteAddress,
          });
          this.destroyTransport(error);
          this.terminate({ by: 'local', reason: `${reason} (flush timed out)`, error });
          return;
        }
      }
      if (this.#state === 'closed') return;
      try {
        await this.endTransport(reason);
      } catch (err) {
        this.destroyTransport(err as Error);
      }
      this.terminate({ by: 'local', reason });
    })();
    return this.#closing;
  }

  abort(error?: Error): void {
    if (this.#state === 'closed') return;
    this.destroyTransport(error);
    this.terminate({ by: 'local', reason: error ? `aborted: ${error.message}` : 'aborted', ...(error ? { error } : {}) });
  }

  /** Received messages in order, ending after the close; only one iterator may be active (a second one throws). */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#iterating) throw new Error(`connection ${this.id} already has an active iterator`);
    this.#iterating = true;
    const done = (): IteratorResult<Uint8Array> => {
      this.#iterating = false;
      return { done: true, value: undefined };
    };
    return {
      next: async (): Promise<IteratorResult<Uint8Array>> => {
        for (;;) {
          if (!this.#iterating) return { done: true, value: undefined };
          const message = this.#take();
          if (message !== undefined) return { done: false, value: message };
          if (this.#state === 'closed') return done();
          await new Promise<void>((resolve) => {
            this.#wakeReader = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<Uint8Array>> => done(),
    };
  }

  // ---- internals ------------------------------------------------------------------------------------

  #armPartialFrameTimer(): void {
    if (this.partialFrameTimeoutMs <= 0 || this.#state === 'closed') return;
    // a longer deadline than a timer can take (about 24.8 days) is as good as none, not 1 ms
    const ms = Math.min(this.partialFrameTimeoutMs, 2 ** 31 - 1);
    const chunks = this.#receivedChunks;
    const pauses = this.#pauses;
    const armedAt = this.wallClock();
    this.#partialFrameTimer = this.startTimer(ms, () => {
      this.#partialFrameTimer = undefined;
      if (this.#state === 'closed' || !this.#midFrame) return;
      const now = this.wallClock();
      const late = armedAt !== undefined && now !== undefined && now - armedAt > 2 * ms;
      // Bytes arrived meanwhile, this side stopped reading (the peer's bytes wait unread), or this process
      // was too busy to read (the timer fired far too late): not the peer's silence.
      if (this.#receivedChunks !== chunks || this.#pauses !== pauses || this.#sourcePaused || late) {
        this.#armPartialFrameTimer();
        return;
      }
      this.fail(
        new TimeoutError(`the peer sent part of a frame and then nothing for ${this.partialFrameTimeoutMs} ms`, {
          address: this.remoteAddress,
        }),
        'partial frame timeout',
      );
    });
  }

  #take(): Uint8Array | undefined {
    if (this.#recvHead >= this.#recvQueue.length) return undefined;
    const message = this.#recvQueue[this.#recvHead]!;
    this.#recvQueue[this.#recvHead] = undefined as unknown as Uint8Array;
    this.#recvHead++;
    if (this.#recvHead > 1024 && this.#recvHead * 2 > this.#recvQueue.length) {
      this.#recvQueue = this.#recvQueue.slice(this.#recvHead);
      this.#recvHead = 0;
    } else if (this.#recvHead === this.#recvQueue.length) {
      this.#recvQueue = [];
      this.#recvHead = 0;
    }
    this.#recvBytes -= message.byteLength + RECEIVE_QUEUE_MESSAGE_OVERHEAD;
    if (this.#sourcePaused && this.#recvBytes <= this.receiveHighWaterMark / 2 && this.#state !== 'closed') {
      this.#sourcePaused = false;
      this.resumeSource();
    }
    return message;
  }

  #wake(): void {
    const wake = this.#wakeReader;
    if (wake) {
      this.#wakeReader = undefined;
      wake();
    }
  }

  #settle(item: PendingSend, err?: Error): void {
    if (item.settled) return;
    item.settled = true;
    if (err) item.reject(err);
    else item.resolve();
  }

  #whenSendsHandedOn(): Promise<void> {
    if (!this.#pumping && this.pendingSends === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#sendIdle.push(resolve));
  }

  #pump(): void {
    this.#pumping = true;
    for (;;) {
      if (this.#state === 'closed' || this.#sendHead >= this.#sendQueue.length) break;
      const item = this.#sendQueue[this.#sendHead]!;
      let result: void | Promise<void>;
      try {
        result = this.writeMessage(item.message);
      } catch (err) {
        this.#writeFailed(item, err);
        break;
      }
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(
          () => {
            this.#handedOn(item);
            this.#pump();
          },
          (err: unknown) => this.#writeFailed(item, err),
        );
        return; // still pumping
      }
      this.#handedOn(item);
    }
    this.#pumping = false;
    if (this.pendingSends === 0) for (const f of this.#sendIdle.splice(0)) f();
  }

  #handedOn(item: PendingSend): void {
    if (this.#sendQueue[this.#sendHead] === item) {
      this.#sendQueueBytes -= item.message.byteLength + SEND_QUEUE_MESSAGE_OVERHEAD;
      this.#sendQueue[this.#sendHead] = undefined as unknown as PendingSend;
      this.#sendHead++;
      if (this.#sendHead === this.#sendQueue.length) {
        this.#sendQueue = [];
        this.#sendHead = 0;
      } else if (this.#sendHead > 1024 && this.#sendHead * 2 > this.#sendQueue.length) {
        this.#sendQueue = this.#sendQueue.slice(this.#sendHead);
        this.#sendHead = 0;
      }
    }
    this.#settle(item);
  }

  #writeFailed(item: PendingSend, err: unknown): void {
    this.#pumping = false;
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.#state !== 'closed') {
      this.destroyTransport(error);
      this.terminate({ by: 'remote', reason: `write failed: ${error.message}`, error });
    }
    this.#settle(item, new ConnectionClosedError(`connection ${this.id} closed: ${error.message}`, { cause: error }));
    for (const f of this.#sendIdle.splice(0)) f();
  }
}
