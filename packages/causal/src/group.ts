/**
 * A causal group over any @tandem/transport: a fixed set of members, each listening at its address and
 * dialling every other one. Direct messages and broadcasts are stamped by a CausalDelivery core, sent on
 * the link to each destination (acknowledged, retransmitted after loss or refusal), and delivered at the
 * destination in causal order.
 */
import type { Connection, DialOptions, Listener, ListenOptions, Transport } from '@tandem/transport';
import { decodeCausalMessage, encodeCausalMessage } from './codec.js';
import { CausalDelivery, type CausalDeliveryStats, type CausalLimits, type Delivery, type HeldReport } from './delivery.js';
import { systemEnv, type CausalEnv, type CausalTimer } from './env.js';
import { CausalClosedError, CausalProtocolError, type CausalGapError, type MessageId } from './errors.js';
import { decodeFrame, encodeFrame, groupFingerprint, PROTOCOL_VERSION } from './frames.js';
import { OutboundLink, type LinkStats } from './link.js';
import { stampSeq } from './stamp.js';

/** Default for `maxUnackedMessages`: messages sent to one member and not yet acknowledged (10 000). */
export const DEFAULT_MAX_UNACKED_MESSAGES = 10_000;
/** Default for `maxUnackedBytes`: bytes sent to one member and not yet acknowledged (16 MiB). */
export const DEFAULT_MAX_UNACKED_BYTES = 16 * 1024 * 1024;
/** Default for `retransmitMs`: an unacknowledged message is sent again after 250 ms, doubling per attempt. */
export const DEFAULT_RETRANSMIT_MS = 250;
/** Default for `redialMs`: the first delay before dialling a member again after a lost connection (100 ms). */
export const DEFAULT_REDIAL_MS = 100;
/** Default for `maxBackoffMs`: the redial delay doubles up to 5 s. */
export const DEFAULT_MAX_BACKOFF_MS = 5_000;
/** Default for `helloTimeoutMs`: an accepted connection that has not said HELLO within 10 s is closed. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

export interface CausalGroupOptions extends CausalLimits {
  /** This member's id: a key of `members`. */
  self: string;
  /** Every member's id and the address it listens at (static membership; every member passes the same ids). */
  members: Readonly<Record<string, string>>;
  /** Dials the other members and listens at `members[self]` (for the memory network: `net.host(self)`). */
  transport: Transport;
  /** Time and timers. Default systemEnv(). */
  env?: CausalEnv;
  /** See CausalDeliveryOptions.gapTimeoutMs. */
  gapTimeoutMs?: number;
  /** Most messages sent to one peer and not yet acknowledged; past it `send`/`broadcast` throw CausalBufferFullError. Default 10 000. */
  maxUnackedMessages?: number;
  /** Most bytes sent to one peer and not yet acknowledged. Default 16 MiB. */
  maxUnackedBytes?: number;
  /** An unacknowledged or refused message is sent again after this long, doubling per attempt up to maxBackoffMs. Default 250. */
  retransmitMs?: number;
  /** First delay before redialling a peer, doubling up to maxBackoffMs. Default 100. */
  redialMs?: number;
  /** Default 5 000. */
  maxBackoffMs?: number;
  /** An accepted connection that has not said HELLO after this long is closed. Default 10 000. */
  helloTimeoutMs?: number;
  listenOptions?: ListenOptions;
  dialOptions?: DialOptions;
}

/** Counters of a CausalGroup: the delivery counters plus one entry per link to another member. */
export interface CausalGroupStats extends CausalDeliveryStats {
  links: LinkStats[];
}

/** A member of a static causal group over a transport: sends direct and broadcast messages, delivers in causal order. */
export interface CausalGroup {
  readonly self: string;
  /** Member ids, sorted: the group order every member agrees on. */
  readonly members: readonly string[];
  /** The address this member listens at. */
  readonly address: string;
  /** Send `payload` to member `to`, after everything this member has sent or delivered. Throws CausalBufferFullError when `to`'s unacknowledged queue is full. */
  send(to: string, payload: Uint8Array): MessageId;
  /** Send `payload` to every other member (not delivered to self). Throws CausalBufferFullError when any peer's queue is full (then nobody gets it). */
  broadcast(payload: Uint8Array): MessageId;
  /** Called for every delivery, in causal order. Returns an unsubscribe function. */
  onDeliver(fn: (delivery: Delivery<Uint8Array>) => void): () => void;
  /** Called with a CausalGapError for a message held past the gap deadline. */
  onGap(fn: (gap: CausalGapError) => void): () => void;
  /** Operational errors: a refused message (CausalBufferFullError), a bad peer (CausalProtocolError), a throwing handler. */
  onError(fn: (err: Error) => void): () => void;
  /** Held messages and what each waits for. */
  heldMessages(): HeldReport[];
  /** Settles when every message sent so far has been acknowledged by its destination (or the group closed). */
  flushed(): Promise<void>;
  /** The delivery counters and every link's state (connected, unacknowledged, retransmitted). */
  stats(): CausalGroupStats;
  /** Stop listening, close every connection, cancel every timer. Idempotent. */
  close(): Promise<void>;
}

/** Starts listening at `members[self]` and dialling the other members; resolves once listening. */
export async function createCausalGroup(options: CausalGroupOptions): Promise<CausalGroup> {
  const ids = Object.keys(options.members).sort();
  if (!ids.includes(options.self)) throw new RangeError(`self "${options.self}" is not one of the members`);
  const env = options.env ?? systemEnv();
  const listener = await options.transport.listen(options.members[options.self]!, options.listenOptions);
  return new Group(options, ids, env, listener);
}

class Group implements CausalGroup {
  readonly self: string;
  readonly members: readonly string[];
  readonly address: string;
  readonly #env: CausalEnv;
  readonly #core: CausalDelivery<Uint8Array>;
  readonly #links = new Map<string, OutboundLink>();
  readonly #listener: Listener;
  readonly #inbound = new Set<Connection>();
  readonly #fingerprint: number;
  readonly #helloTimeoutMs: number;
  readonly #deliverFns = new Set<(d: Delivery<Uint8Array>) => void>();
  readonly #gapFns = new Set<(g: CausalGapError) => void>();
  readonly #errorFns = new Set<(e: Error) => void>();
  #closed = false;

  constructor(options: CausalGroupOptions, ids: readonly string[], env: CausalEnv, listener: Listener) {
    this.self = options.self;
    this.members = ids;
    this.address = listener.address;
    this.#env = env;
    this.#listener = listener;
    this.#fingerprint = groupFingerprint(ids);
    this.#helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    this.#core = new CausalDelivery<Uint8Array>({
      self: options.self,
      members: ids,
      env,
      gapTimeoutMs: options.gapTimeoutMs,
      maxHeldMessages: options.maxHeldMessages,
      maxHeldBytes: options.maxHeldBytes,
      maxHeldPerSender: options.maxHeldPerSender,
      deliver: (d) => this.#emit(this.#deliverFns, d),
      onGap: (g) => this.#emit(this.#gapFns, g),
    });
    const me = ids.indexOf(options.self);
    for (const peer of ids) {
      if (peer === options.self) continue;
      const link = new OutboundLink({
        peer,
        address: options.members[peer]!,
        from: me,
        fingerprint: this.#fingerprint,
        size: ids.length,
        transport: options.transport,
        env,
        dialOptions: options.dialOptions,
        maxUnackedMessages: options.maxUnackedMessages ?? DEFAULT_MAX_UNACKED_MESSAGES,
        maxUnackedBytes: options.maxUnackedBytes ?? DEFAULT_MAX_UNACKED_BYTES,
        retransmitMs: options.retransmitMs ?? DEFAULT_RETRANSMIT_MS,
        redialMs: options.redialMs ?? DEFAULT_REDIAL_MS,
        maxBackoffMs: options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
        onError: (err) => this.#emit(this.#errorFns, err),
      });
      this.#links.set(peer, link);
      link.start();
    }
    void this.#accept();
  }

  send(to: string, payload: Uint8Array): MessageId {
    this.#open();
    const link = this.#links.get(to);
    if (!link)
      throw new RangeError(
        to === this.self ? `${this.self} cannot send a direct message to itself` : `"${to}" is not a member of the group`,
      );
    const full = link.wouldOverflow(payload.byteLength);
    if (full) throw full;
    const message = this.#core.send(to, payload);
    link.enqueue(encodeCausalMessage(message));
    return { from: this.self, kind: 'direct', seq: stampSeq(message.stamp) };
  }

  broadcast(payload: Uint8Array): MessageId {
    this.#open();
    for (const link of this.#links.values()) {
      const full = link.wouldOverflow(payload.byteLength);
      if (full) throw full;
    }
    const message = this.#core.broadcast(payload);
    const body = encodeCausalMessage(message);
    for (const link of this.#links.values()) link.enqueue(body);
    return { from: this.self, kind: 'broadcast', seq: stampSeq(message.stamp) };
  }

  onDeliver(fn: (delivery: Delivery<Uint8Array>) => void): () => void {
    return this.#subscribe(this.#deliverFns, fn);
  }

  onGap(fn: (gap: CausalGapError) => void): () => void {
    return this.#subscribe(this.#gapFns, fn);
  }

  onError(fn: (err: Error) => void): () => void {
    return this.#subscribe(this.#errorFns, fn);
  }

  heldMessages(): HeldReport[] {
    return this.#core.heldMessages();
  }

  async flushed(): Promise<void> {
    await Promise.all([...this.#links.values()].map((l) => l.idle()));
  }

  stats(): CausalGroupStats {
    return { ...this.#core.stats(), links: [...this.#links.values()].map((l) => l.stats()) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    for (const conn of this.#inbound) conn.abort();
    this.#inbound.clear();
    this.#core.close();
    await this.#listener.close();
  }

  // ---- receiving ----------------------------------------------------------------------------------------

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          conn.abort();
          continue;
        }
        void this.#serve(conn);
      }
    } catch (err) {
      if (!this.#closed) this.#emit(this.#errorFns, err as Error);
    }
  }

  /** One accepted connection: HELLO, then DATA frames from one peer, each answered with ACK or REFUSED. */
  async #serve(conn: Connection): Promise<void> {
    this.#inbound.add(conn);
    let peer: number | undefined;
    let helloTimer: CausalTimer | undefined = this.#env.setTimer(this.#helloTimeoutMs, () => {
      if (peer === undefined) conn.abort(new CausalProtocolError(`no HELLO from ${conn.remoteAddress} within ${this.#helloTimeoutMs} ms`));
    });
    const reply = (bytes: Uint8Array): void => void conn.send(bytes).catch(() => {});
    try {
      for await (const bytes of conn) {
        if (this.#closed) break;
        const frame = decodeFrame(bytes);
        if (peer === undefined) {
          if (frame.type !== 'hello') throw new CausalProtocolError(`expected HELLO, got ${frame.type}`);
          const why =
            frame.version !== PROTOCOL_VERSION
              ? `protocol version ${frame.version}, expected ${PROTOCOL_VERSION}`
              : frame.size !== this.members.length || frame.fingerprint !== this.#fingerprint
                ? `a different member list (${frame.size} members, fingerprint ${frame.fingerprint.toString(16)}; here ${this.members.length}, ${this.#fingerprint.toString(16)})`
                : frame.from >= this.members.length || this.members[frame.from] === this.self
                  ? `sender index ${frame.from}`
                  : undefined;
          if (why) throw new CausalProtocolError(`${this.self} rejected a connection from ${conn.remoteAddress}: ${why}`);
          peer = frame.from;
          helloTimer?.cancel();
          helloTimer = undefined;
          continue;
        }
        if (frame.type !== 'data') throw new CausalProtocolError(`unexpected ${frame.type} frame from ${this.members[peer]}`);
        const message = decodeCausalMessage(frame.body, this.members.length);
        if (message.stamp.from !== peer)
          throw new CausalProtocolError(`${this.members[peer]} sent a message stamped by ${this.members[message.stamp.from]}`);
        const outcome = this.#core.receive(message);
        if (outcome.status === 'refused') {
          reply(encodeFrame({ type: 'refused', seq: frame.seq }));
          this.#emit(this.#errorFns, outcome.error!);
        } else {
          reply(encodeFrame({ type: 'ack', seq: frame.seq }));
        }
      }
    } catch (err) {
      if (!this.#closed) {
        this.#emit(this.#errorFns, err as Error);
        // tell the peer why (it reports it), then close gracefully so the REJECT goes out first; a peer that
        // does not drain it is cut off after a second
        reply(encodeFrame({ type: 'reject', reason: (err as Error).message }));
        void conn.close().catch(() => {});
        this.#env.setTimer(1_000, () => conn.abort());
      }
    } finally {
      helloTimer?.cancel();
      this.#inbound.delete(conn);
    }
  }

  #emit<T>(fns: Set<(v: T) => void>, value: T): void {
    for (const fn of [...fns]) {
      try {
        fn(value);
      } catch (err) {
        if (fns !== (this.#errorFns as unknown)) this.#emit(this.#errorFns, err as Error);
      }
    }
  }

  #subscribe<T>(fns: Set<T>, fn: T): () => void {
    fns.add(fn);
    return () => void fns.delete(fn);
  }

  #open(): void {
    if (this.#closed) throw new CausalClosedError();
  }
}
