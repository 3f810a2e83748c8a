import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import {
  AbortError,
  checkConnectionOptions,
  ConnectionRefusedError,
  DEFAULT_MAX_MESSAGE_SIZE,
  ProtocolError,
  TimeoutError,
  type Connection,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from '@tandem/transport';
import WebSocket from 'ws';
import { formatWebSocketAddress, parseWebSocketAddress } from './address.js';
import { watchFrames, type FrameWatch } from './frame-watch.js';
import { resolveWebSocketOptions, type ResolvedWebSocketOptions, type WebSocketTransportOptions } from './options.js';
import { WebSocketConnection } from './ws-connection.js';
import { WebSocketListener } from './ws-listener.js';

const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

/** Socket error codes that mean "nobody is there to talk to". */
const REFUSED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'EPIPE',
]);

/** The WebSocket transport: `ws://host:port/path` and `wss://host:port/path`. */
export class WebSocketTransport implements Transport {
  readonly name = 'ws';
  readonly schemes = ['ws', 'wss'] as const;
  readonly #options: ResolvedWebSocketOptions;

  constructor(options: WebSocketTransportOptions = {}) {
    this.#options = resolveWebSocketOptions(options);
  }

  async listen(address: string, options: ListenOptions = {}): Promise<Listener> {
    checkConnectionOptions(options);
    return WebSocketListener.open(parseWebSocketAddress(address, { allowPortZero: true }), this.#options, options);
  }

  async dial(address: string, options: DialOptions = {}): Promise<Connection> {
    checkConnectionOptions(options);
    const addr = parseWebSocketAddress(address, { allowPortZero: false });
    const canonical = formatWebSocketAddress(addr.secure, addr.host, addr.port, addr.path);
    const signal = options.signal;
    if (signal?.aborted) throw new AbortError('dial aborted', { address: canonical, cause: signal.reason });
    const tls = this.#options.tls;
    const ws = new WebSocket(canonical, {
      perMessageDeflate: false,
      maxPayload: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      followRedirects: false,
      ...(addr.secure
        ? {
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            ...(tls.key !== undefined ? { key: tls.key } : {}),
            ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
            ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
            ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
            rejectUnauthorized: tls.rejectUnauthorized !== false,
          }
        : {}),
    });
    const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    let socket: Socket | undefined;
    ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
    return new Promise<Connection>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ws.off('open', onOpen);
        ws.off('error', onError);
        ws.off('unexpected-response', onUnexpectedResponse);
      };
      const fail = (err: Error): void => {
        cleanup();
        // Keep a listener so late socket errors after terminate() never become uncaught.
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      const onOpen = (): void => {
        cleanup();
        // ws attached the socket just now and emits its first bytes (those that came with the upgrade
        // answer) on the next tick: the connection listens from here, or it would miss them
        const frames: FrameWatch | undefined = socket && options.partialFrameTimeoutMs !== 0 ? watchFrames(socket) : undefined;
        const local = formatWebSocketAddress(addr.secure, socket?.localAddress ?? '', socket?.localPort ?? 0, addr.path);
        resolve(new WebSocketConnection(ws, { local, remote: canonical }, this.#options, options, frames));
      };
      const onError = (err: Error & { code?: string }): void => fail(mapDialError(err, canonical));
      const onUnexpectedResponse = (_req: unknown, res: IncomingMessage): void => {
        res.resume();
        fail(
          new ConnectionRefusedError(`${canonical} answered HTTP ${res.statusCode ?? '?'} instead of a WebSocket upgrade`, {
            address: canonical,
          }),
        );
      };
      const onAbort = (): void => fail(new AbortError('dial aborted', { address: canonical, cause: signal?.reason }));
      const timer = setTimeout(
        () => fail(new TimeoutError(`dial to ${canonical} timed out after ${timeoutMs} ms`, { address: canonical })),
        timeoutMs,
      );
      ws.on('open', onOpen);
      ws.on('error', onError);
      ws.on('unexpected-response', onUnexpectedResponse);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function mapDialError(err: Error & { code?: string }, address: string): Error {
  const code = err.code ?? '';
  if (REFUSED_CODES.has(code))
    return new ConnectionRefusedError(`cannot connect to ${address}: ${err.message}`, {
      address,
      cause: err,
      nothingListens: code === 'ECONNREFUSED',
    });
  if (code === 'ETIMEDOUT') return new TimeoutError(`connecting to ${address} timed out`, { address, cause: err });
  if (/socket hang up/i.test(err.message))
    return new ConnectionRefusedError(`${address} closed the connection during the handshake`, { address, cause: err });
  // TLS verification failures, a non-HTTP answer, a bad upgrade response…
  return new ProtocolError(`handshake with ${address} failed: ${err.message}`, { address, cause: err });
}

/** The WebSocket transport factory: `registry.register(websocket())`. */
export function websocket(options?: WebSocketTransportOptions): Transport {
  return new WebSocketTransport(options);
}
