import {
  AbortError,
  AcceptQueue,
  AddressInUseError,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_PARTIAL_FRAME_TIMEOUT_MS,
  DEFAULT_RECEIVE_HIGH_WATER_MARK,
  InvalidAddressError,
  type Connection,
  type ListenOptions,
  type Listener,
} from '@tandem/transport';
import * as zmq from 'zeromq';
import { fromEndpoint, type ZmqAddress } from './address.js';
import type { ResolvedZmqOptions } from './options.js';
import { SocketSender } from './socket-sender.js';
import { commonSocketOptions, isSocketClosedError } from './sockets.js';
import { Kind, PROTOCOL_VERSION, decodeGreeting, encodeGreeting, kindFrame } from './wire.js';
import { zapHandler, type ZapRequest } from './zap.js';
import { ZmqConnection } from './zmq-connection.js';

/** Accepted-but-not-yet-taken connections beyond this are refused until the application catches up. */
const MAX_UNTAKEN_CONNECTIONS = 4096;

let nextZapDomain = 1;

/**
 * A ROUTER socket bound to the address. Each dialler's routing id is one connection, accepted on its
 * HELLO. Closing the listener stops accepting (new HELLOs get REFUSE) but keeps the socket, and so the
 * accepted connections, until the last of them closes: libzmq's unbind would drop them all.
 *
 * Every ZMTP handshake on the socket asks the package's ZAP handler first (the listener's own ZAP
 * domain): it refuses clients whose CURVE key is not allowed, and anyone while the listener is closed or
 * has `maxConnections` open — before any Tandem frame is read.
 */
export class ZmqListener implements Listener {
  readonly address: string;
  readonly #router: zmq.Router;
  readonly #sender: SocketSender;
  readonly #options: ResolvedZmqOptions;
  readonly #maxMessageSize: number;
  readonly #window: number;
  readonly #listenOptions: ListenOptions;
  readonly #maxConnections: number;
  readonly #releaseZap: () => void;
  readonly #connections = new Map<string, ZmqConnection>();
  readonly #accepted = new AcceptQueue<Connection>();
  #closed = false;
  #socketClosed = false;

  private constructor(router: zmq.Router, options: ResolvedZmqOptions, listenOptions: ListenOptions, releaseZap: () => void) {
    this.#router = router;
    this.#releaseZap = releaseZap;
    this.#maxConnections = listenOptions.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#sender = new SocketSender(router);
    this.#options = options;
    this.#listenOptions = listenOptions;
    this.#maxMessageSize = listenOptions.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#window = listenOptions.receiveHighWaterMark ?? DEFAULT_RECEIVE_HIGH_WATER_MARK;
    this.address = fromEndpoint(router.lastEndpoint ?? '');
    void this.#receiveLoop();
    void this.#watchEvents();
  }

  static async open(addr: ZmqAddress, options: ResolvedZmqOptions, listenOptions: ListenOptions): Promise<ZmqListener> {
    const signal = listenOptions.signal;
    const address = fromEndpoint(addr.endpoint);
    if (signal?.aborted) throw new AbortError('listen aborted', { address, cause: signal.reason });
    const maxMessageSize = listenOptions.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const curve = options.curve;
    // The ZAP handler answers for this listener's domain before the socket can take a handshake.
    const zapDomain = `tandem-${process.pid}-${nextZapDomain++}`;
    let listener: ZmqListener | undefined;
    const releaseZap = await zapHandler().register(zapDomain, (request) =>
      listener ? listener.#authorize(request) : 'the listener is starting',
    );
    // A handshake that has started and not completed (slow loris) is cut off at the partial-frame deadline.
    const partialFrameTimeoutMs = listenOptions.partialFrameTimeoutMs ?? DEFAULT_PARTIAL_FRAME_TIMEOUT_MS;
    const deadlines = [options.zmtpHandshakeTimeoutMs, partialFrameTimeoutMs].filter((ms) => ms > 0);
    const router = new zmq.Router({
      ...commonSocketOptions(options, Math.max(maxMessageSize, 64)),
      handshakeInterval: deadlines.length > 0 ? Math.min(...deadlines) : 0,
      // Unroutable sends fail (EHOSTUNREACH) instead of vanishing: that is how a gone peer is noticed.
      mandatory: true,
      // Every handshake asks the ZAP handler (also with the NULL mechanism, because a domain is set). The
      // domain also makes libzmq refuse ZMTP 1.0 greetings, so garbage (e.g. an HTTP request) is dropped
      // at once instead of being read as a legacy identity frame that never completes. Enforced: without a
      // handler to ask, libzmq refuses the handshake rather than letting it through.
      zapDomain,
      zapEnforceDomain: true,
      ...(curve ? { curveServer: true, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {}),
    });
    try {
      await router.bind(addr.endpoint);
    } catch (err) {
      router.close();
      releaseZap();
      const code = (err as { code?: string }).code;
      if (code === 'EADDRINUSE') throw new AddressInUseError(`address ${address} is in use`, { address, cause: err });
      throw new InvalidAddressError(`cannot listen on ${address}: ${(err as Error).message}`, { address, cause: err });
    }
    listener = new ZmqListener(router, options, listenOptions, releaseZap);
    const opened = listener;
    signal?.addEventListener('abort', () => void opened.close(), { once: true });
    return opened;
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return this.#accepted[Symbol.asyncIterator]();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#accepted.end();
    this.#closeSocketIfIdle();
  }

  /** Open connections on this listener's socket. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** The ZAP verdict on a new ZMTP connection: true, or why it is refused. */
  async #authorize(request: ZapRequest): Promise<true | string> {
    if (this.#closed) return 'the listener is closed';
    if (this.#connections.size >= this.#maxConnections) return `the listener has ${this.#maxConnections} connections open (maxConnections)`;
    const allow = this.#options.allowClientKey;
    if (allow === undefined) return true;
    if (request.clientKey === undefined) return 'no CURVE client key';
    if ((await allow(request.clientKey, { address: request.address })) !== true) return 'client key not allowed';
    // the listener may have closed while an asynchronous check ran
    return this.#closed ? 'the listener is closed' : true;
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.#router) {
        const [id, kind, payload, ...extra] = frames;
        if (!id) continue;
        const key = id.toString('hex');
        const conn = this.#connections.get(key);
        if (conn) {
          conn.handleFrames(kind, payload, extra.length > 0);
          continue;
        }
        const k = kind?.byteLength === 1 ? kind[0] : -1;
        if (k === Kind.Hello) this.#onHello(id, key, payload);
        // Anything else from an unknown routing id is a straggler of a closed connection: ignore it.
      }
    } catch (err) {
      if (!isSocketClosedError(err)) {
        for (const c of this.#connections.values()) c.linkLost(`listener socket failed: ${String(err)}`);
      }
    }
  }

  #onHello(id: Buffer, key: string, payload: Buffer | undefined): void {
    const reply = (kind: Kind, body?: Buffer): void => {
      this.#sender.send(body ? [id, kindFrame(kind), body] : [id, kindFrame(kind)]).catch(() => undefined);
    };
    if (this.#closed) return reply(Kind.Refuse, Buffer.from('listener closed'));
    if (this.#connections.size >= this.#maxConnections)
      return reply(Kind.Refuse, Buffer.from(`${this.#maxConnections} connections open (maxConnections)`));
    if (this.#accepted.size >= MAX_UNTAKEN_CONNECTIONS) return reply(Kind.Refuse, Buffer.from('too many connections waiting'));
    const peer = decodeGreeting(payload);
    if (!peer) return reply(Kind.Refuse, Buffer.from('unsupported greeting'));
    const conn = new ZmqConnection(
      {
        send: (frames) => this.#sender.send([id, ...frames]),
        release: () => {
          if (this.#connections.get(key) === conn) this.#connections.delete(key);
          this.#closeSocketIfIdle();
        },
      },
      { local: this.address, remote: `${this.address}#peer-${key}` },
      peer,
      this.#options,
      {
        maxMessageSize: this.#maxMessageSize,
        receiveHighWaterMark: this.#window,
        sendHighWaterMark: this.#listenOptions.sendHighWaterMark,
        maxSendQueueBytes: this.#listenOptions.maxSendQueueBytes,
      },
    );
    this.#connections.set(key, conn);
    reply(Kind.Welcome, encodeGreeting({ version: PROTOCOL_VERSION, maxMessageSize: this.#maxMessageSize, window: this.#window }));
    this.#accepted.push(conn);
  }

  /** libzmq reports disconnects per socket, not per peer: ping everyone, and sends to the gone peer fail. */
  async #watchEvents(): Promise<void> {
    try {
      for await (const event of this.#router.events) {
        if (event.type === 'disconnect') for (const c of this.#connections.values()) c.probe();
      }
    } catch {
      // the monitor ends with the socket
    }
  }

  #closeSocketIfIdle(): void {
    if (!this.#closed || this.#socketClosed || this.#connections.size > 0) return;
    this.#socketClosed = true;
    // Let queued replies (CLOSE acknowledgements, REFUSE) leave before the socket goes.
    setTimeout(() => {
      this.#sender.close();
      this.#router.close();
      this.#releaseZap();
    }, 50).unref();
  }
}
