/**
 * The sending side of one member-to-member link of a causal group: a bounded queue of messages sent and
 * not yet acknowledged, a connection dialled to the peer (redialled with backoff when it ends), and
 * retransmission — of everything unacknowledged after a reconnect, of a message the peer refused (its
 * held buffer was full), and of anything unacknowledged for too long (lossy transports). The receiver
 * drops duplicates, so retransmitting is always safe.
 */
import type { Connection, DialOptions, Transport } from '@tandem/transport';
import type { CausalEnv, CausalTimer } from './env.js';
import { CausalBufferFullError, CausalProtocolError } from './errors.js';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION } from './frames.js';

export interface LinkOptions {
  peer: string;
  address: string;
  /** This member's index and the group's fingerprint and size, for HELLO. */
  from: number;
  fingerprint: number;
  size: number;
  transport: Transport;
  env: CausalEnv;
  dialOptions: DialOptions | undefined;
  maxUnackedMessages: number;
  maxUnackedBytes: number;
  retransmitMs: number;
  redialMs: number;
  maxBackoffMs: number;
  onError: (err: Error) => void;
}

interface Unacked {
  readonly frame: Uint8Array;
  sentAt: number;
  /** Transmissions so far (0: not yet sent). */
  attempts: number;
}

/** The state of this member's link to one peer: connection, unacknowledged messages and bytes, retransmissions, refusals. */
export interface LinkStats {
  peer: string;
  connected: boolean;
  unacknowledged: number;
  unacknowledgedBytes: number;
  retransmitted: number;
  refusedByPeer: number;
}

export class OutboundLink {
  readonly #o: LinkOptions;
  readonly #queue = new Map<number, Unacked>();
  #queueBytes = 0;
  #nextSeq = 1;
  #conn: Connection | undefined;
  #connecting = false;
  #redialTimer: CausalTimer | undefined;
  #redialDelay: number;
  #retransmitTimer: CausalTimer | undefined;
  #closed = false;
  #retransmitted = 0;
  #refusedByPeer = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: LinkOptions) {
    this.#o = options;
    this.#redialDelay = options.redialMs;
  }

  /** The error a send of `bytes` would hit, or undefined when it fits. */
  wouldOverflow(bytes: number): CausalBufferFullError | undefined {
    const o = this.#o;
    if (this.#queue.size >= o.maxUnackedMessages)
      return new CausalBufferFullError('unacknowledged', o.peer, 'messages', o.maxUnackedMessages);
    if (this.#queue.size > 0 && this.#queueBytes + bytes > o.maxUnackedBytes) {
      return new CausalBufferFullError('unacknowledged', o.peer, 'bytes', o.maxUnackedBytes);
    }
    return undefined;
  }

  /** Queue an encoded causal message and send it when connected. */
  enqueue(body: Uint8Array): void {
    const seq = this.#nextSeq++;
    const entry: Unacked = { frame: encodeFrame({ type: 'data', seq, body }), sentAt: 0, attempts: 0 };
    this.#queue.set(seq, entry);
    this.#queueBytes += entry.frame.byteLength;
    if (this.#conn) this.#transmit(this.#conn, entry);
    this.#armRetransmit();
  }

  start(): void {
    void this.#connect();
  }

  get connected(): boolean {
    return this.#conn !== undefined;
  }

  get unacknowledged(): number {
    return this.#queue.size;
  }

  stats(): LinkStats {
    return {
      peer: this.#o.peer,
      connected: this.connected,
      unacknowledged: this.#queue.size,
      unacknowledgedBytes: this.#queueBytes,
      retransmitted: this.#retransmitted,
      refusedByPeer: this.#refusedByPeer,
    };
  }

  /** Settles when nothing is unacknowledged (or the link closes). */
  idle(): Promise<void> {
    if (this.#queue.size === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#redialTimer?.cancel();
    this.#retransmitTimer?.cancel();
    this.#conn?.abort();
    this.#conn = undefined;
    this.#wakeIdle();
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#conn || this.#connecting) return;
    this.#connecting = true;
    let conn: Connection;
    try {
      conn = await this.#o.transport.dial(this.#o.address, this.#o.dialOptions);
    } catch {
      this.#connecting = false;
      this.#scheduleRedial();
      return;
    }
    this.#connecting = false;
    if (this.#closed) {
      conn.abort();
      return;
    }
    const o = this.#o;
    conn
      .send(encodeFrame({ type: 'hello', version: PROTOCOL_VERSION, fingerprint: o.fingerprint, from: o.from, size: o.size }))
      .catch(() => {});
    this.#conn = conn;
    this.#redialDelay = o.redialMs;
    for (const entry of this.#queue.values()) this.#transmit(conn, entry);
    this.#armRetransmit();
    try {
      for await (const bytes of conn) {
        if (this.#closed) break;
        this.#onFrame(conn, bytes);
      }
    } catch {
      // the connection failed: redial below
    }
    if (this.#conn === conn) this.#conn = undefined;
    conn.abort();
    this.#scheduleRedial();
  }

  #onFrame(conn: Connection, bytes: Uint8Array): void {
    let frame;
    try {
      frame = decodeFrame(bytes);
    } catch (err) {
      this.#o.onError(err as Error);
      conn.abort(err as Error);
      return;
    }
    switch (frame.type) {
      case 'ack': {
        const entry = this.#queue.get(frame.seq);
        if (entry) {
          this.#queue.delete(frame.seq);
          this.#queueBytes -= entry.frame.byteLength;
          if (this.#queue.size === 0) this.#wakeIdle();
        }
        break;
      }
      case 'refused': {
        const entry = this.#queue.get(frame.seq);
        if (entry) {
          this.#refusedByPeer++;
          entry.sentAt = this.#o.env.now(); // the peer looked at it now: retry after the backoff
        }
        break;
      }
      case 'reject':
        this.#o.onError(new CausalProtocolError(`${this.#o.peer} rejected this member: ${frame.reason}`));
        conn.abort();
        break;
      default:
        this.#o.onError(new CausalProtocolError(`unexpected ${frame.type} frame from ${this.#o.peer}`));
        conn.abort();
    }
  }

  #transmit(conn: Connection, entry: Unacked): void {
    if (entry.attempts > 0) this.#retransmitted++;
    entry.attempts++;
    entry.sentAt = this.#o.env.now();
    conn.send(entry.frame).catch(() => {}); // a failed send is retransmitted after reconnecting
  }

  /** While anything is unacknowledged, look every retransmitMs for entries due again (per-entry backoff). */
  #armRetransmit(): void {
    if (this.#closed || this.#retransmitTimer || this.#queue.size === 0) return;
    const o = this.#o;
    this.#retransmitTimer = o.env.setTimer(o.retransmitMs, () => {
      this.#retransmitTimer = undefined;
      const conn = this.#conn;
      if (conn) {
        const now = o.env.now();
        for (const entry of this.#queue.values()) {
          const backoff = Math.min(o.maxBackoffMs, o.retransmitMs * 2 ** Math.max(0, entry.attempts - 1));
          if (now - entry.sentAt >= backoff) this.#transmit(conn, entry);
        }
      }
      this.#armRetransmit();
    });
  }

  #scheduleRedial(): void {
    if (this.#closed || this.#redialTimer) return;
    const delay = this.#redialDelay;
    this.#redialDelay = Math.min(this.#o.maxBackoffMs, this.#redialDelay * 2);
    this.#redialTimer = this.#o.env.setTimer(delay, () => {
      this.#redialTimer = undefined;
      void this.#connect();
    });
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
