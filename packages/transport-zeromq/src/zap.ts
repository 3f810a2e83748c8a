/**
 * A ZAP handler (ZeroMQ RFC 27) for the listeners of this package. libzmq asks it, over
 * `inproc://zeromq.zap.01` in the listener socket's context, whether each new ZMTP connection may proceed:
 * the request names the listener (its ZAP domain), the peer's IP, the security mechanism and, for CURVE,
 * the client's public key; the answer is status 200 (go on) or 400 (refused: libzmq sends the client an
 * ERROR and drops the TCP connection).
 *
 * There is one handler per context (one inproc endpoint), so it serves every listener: each registers a
 * policy under a ZAP domain of its own. The handler socket exists while at least one listener is
 * registered (a pending receive would keep the process alive). Listeners set `zapEnforceDomain`, so if the
 * handler were missing libzmq would refuse their handshakes rather than let everyone in.
 */
import * as zmq from 'zeromq';
import { SocketSender } from './socket-sender.js';
import { zmqContext } from './sockets.js';
import { z85Encode } from './z85.js';

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const EMPTY = Buffer.alloc(0);

export interface ZapRequest {
  /** The peer's IP address. */
  readonly address: string;
  /** 'NULL' or 'CURVE' (the listener's mechanism; libzmq refuses a mismatch before asking). */
  readonly mechanism: string;
  /** CURVE: the client's public key, as 40 characters of Z85. */
  readonly clientKey: string | undefined;
}

/** `true` lets the connection proceed; a string refuses it, saying why. */
export type ZapPolicy = (request: ZapRequest) => true | string | Promise<true | string>;

class ZapHandler {
  readonly #policies = new Map<string, ZapPolicy>();
  #socket: zmq.Router | undefined;
  #sender: SocketSender | undefined;
  /** Starting and stopping the handler socket, one after the other. */
  #op: Promise<void> = Promise.resolve();

  /** Answer for `domain` with `policy` from now on; resolves once the handler is bound. Returns the release. */
  async register(domain: string, policy: ZapPolicy): Promise<() => void> {
    if (this.#policies.has(domain)) throw new Error(`ZAP domain ${domain} is taken`);
    this.#policies.set(domain, policy);
    const started = this.#op.then(() => this.#start());
    this.#op = started.catch(() => undefined);
    try {
      await started;
    } catch (err) {
      this.#policies.delete(domain);
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#policies.delete(domain);
      this.#op = this.#op.then(() => this.#stopIfUnused()).catch(() => undefined);
    };
  }

  async #start(): Promise<void> {
    if (this.#socket) return;
    const socket = new zmq.Router({ context: zmqContext(), linger: 0 });
    try {
      await socket.bind(ZAP_ENDPOINT);
    } catch (err) {
      socket.close();
      throw err;
    }
    const sender = new SocketSender(socket);
    this.#socket = socket;
    this.#sender = sender;
    void this.#serve(socket, sender);
  }

  async #stopIfUnused(): Promise<void> {
    const socket = this.#socket;
    if (this.#policies.size > 0 || !socket) return;
    this.#socket = undefined;
    this.#sender?.close();
    this.#sender = undefined;
    try {
      // frees the inproc name at once (a close alone frees it later), so that a new handler can bind
      await socket.unbind(ZAP_ENDPOINT);
    } catch {
      // closing anyway
    }
    socket.close();
  }

  async #serve(socket: zmq.Router, sender: SocketSender): Promise<void> {
    try {
      for await (const frames of socket) void this.#answer(sender, frames);
    } catch {
      // the socket was closed
    }
  }

  async #answer(sender: SocketSender, frames: Buffer[]): Promise<void> {
    // [routing id, empty delimiter, version, request id, domain, address, identity, mechanism, credentials…]
    const [peer, delimiter, version, requestId, domain, address, , mechanism, ...credentials] = frames;
    if (!peer || !delimiter || delimiter.byteLength !== 0 || !version || !requestId) return; // not a ZAP request
    const reply = (status: '200' | '400', text: string, userId = ''): void => {
      sender
        .send([peer, EMPTY, version, requestId, Buffer.from(status), Buffer.from(text), Buffer.from(userId), EMPTY])
        .catch(() => undefined);
    };
    if (version.toString('latin1') !== '1.0' || !domain || !mechanism) return reply('400', 'malformed ZAP request');
    const policy = this.#policies.get(domain.toString('utf8'));
    if (!policy) return reply('400', 'no such listener');
    const mech = mechanism.toString('latin1');
    const key = credentials[0];
    const clientKey = mech === 'CURVE' && key?.byteLength === 32 ? z85Encode(key) : undefined;
    let verdict: true | string;
    try {
      verdict = await policy({ address: address?.toString('latin1') ?? '', mechanism: mech, clientKey });
    } catch (err) {
      verdict = `authorisation failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (verdict === true) reply('200', 'OK', clientKey ?? '');
    else reply('400', verdict.slice(0, 200));
  }
}

let handler: ZapHandler | undefined;

/** The ZAP handler of this package's zeromq context. */
export function zapHandler(): ZapHandler {
  handler ??= new ZapHandler();
  return handler;
}
