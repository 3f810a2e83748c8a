import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  AbortError,
  AcceptQueue,
  AddressInUseError,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_PARTIAL_FRAME_TIMEOUT_MS,
  InvalidAddressError,
  type Connection,
  type ListenOptions,
  type Listener,
} from '@tandem/transport';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatWebSocketAddress, type WebSocketAddress } from './address.js';
import { watchFrames } from './frame-watch.js';
import type { ResolvedWebSocketOptions } from './options.js';
import { WebSocketConnection } from './ws-connection.js';

/** Accepted-but-not-yet-taken connections beyond this are refused (HTTP 503) until the application catches up. */
const MAX_UNTAKEN_CONNECTIONS = 1024;
/** TCP accept backlog (the kernel caps it at net.core.somaxconn); node's default of 511 overflows under dial bursts. */
const LISTEN_BACKLOG = 4096;

/** An HTTP(S) server that upgrades requests for one path to WebSocket connections. */
export class WebSocketListener implements Listener {
  readonly address: string;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #path: string;
  readonly #secure: boolean;
  readonly #options: ResolvedWebSocketOptions;
  readonly #listenOptions: ListenOptions;
  readonly #accepted = new AcceptQueue<Connection>();
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, addr: WebSocketAddress, options: ResolvedWebSocketOptions, listenOptions: ListenOptions) {
    this.#server = server;
    this.#path = addr.path;
    this.#secure = addr.secure;
    this.#options = options;
    this.#listenOptions = listenOptions;
    const bound = server.address() as AddressInfo;
    this.address = formatWebSocketAddress(addr.secure, addr.host, bound.port, addr.path);
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: listenOptions.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      clientTracking: false,
    });
    // Sockets beyond this are closed by node at once (the dialler sees a reset: ConnectionRefusedError).
    // Upgraded sockets still count, until they are gone.
    server.maxConnections = listenOptions.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket as Socket, head));
    server.on('request', (_req, res) => {
      res.shouldKeepAlive = false;
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' }).end('WebSocket upgrade required\n');
    });
    // Garbage or malformed HTTP from a client: answer 400 and drop that socket; nothing else is affected.
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    server.on('tlsClientError', (_err, socket) => {
      // a failed TLS handshake only concerns that socket; node destroys it itself, except after its
      // handshake timeout (a slow loris)
      socket.destroy();
    });
    server.on('error', () => {
      // errors after listening (e.g. EMFILE on accept) must not crash the process; node keeps listening
    });
  }

  static async open(addr: WebSocketAddress, options: ResolvedWebSocketOptions, listenOptions: ListenOptions): Promise<WebSocketListener> {
    const signal = listenOptions.signal;
    if (signal?.aborted) throw new AbortError('listen aborted', { cause: signal.reason });
    // A client that trickles its HTTP request (slow loris) is answered 408 and dropped after the partial-frame
    // deadline; node checks for it every `connectionsCheckingInterval`.
    const partialFrameTimeoutMs = listenOptions.partialFrameTimeoutMs ?? DEFAULT_PARTIAL_FRAME_TIMEOUT_MS;
    const http = {
      headersTimeout: partialFrameTimeoutMs,
      requestTimeout: partialFrameTimeoutMs,
      ...(partialFrameTimeoutMs > 0
        ? { connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(partialFrameTimeoutMs / 4))) }
        : {}),
    };
    let server: Server;
    if (addr.secure) {
      const tls = options.tls;
      if (tls.key === undefined || tls.cert === undefined) {
        throw new InvalidAddressError('wss:// listening needs tls.key and tls.cert in the transport options', {
          address: formatWebSocketAddress(true, addr.host, addr.port, addr.path),
        });
      }
      server = createHttpsServer({
        ...http,
        // node reads 0 as its default (120 s): "no deadline" is the longest timer it takes
        handshakeTimeout: options.tlsHandshakeTimeoutMs > 0 ? options.tlsHandshakeTimeoutMs : 2 ** 31 - 1,
        key: tls.key,
        cert: tls.cert,
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
        requestCert: tls.requireClientCertificate === true,
        rejectUnauthorized: tls.requireClientCertificate === true ? tls.rejectUnauthorized !== false : false,
      }) as unknown as Server;
    } else {
      server = createHttpServer(http);
    }
    const address = formatWebSocketAddress(addr.secure, addr.host, addr.port, addr.path);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') reject(new AddressInUseError(`address ${address} is in use`, { address, cause: err }));
        else reject(new InvalidAddressError(`cannot listen on ${address}: ${err.message}`, { address, cause: err }));
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: addr.host, port: addr.port, backlog: LISTEN_BACKLOG });
    });
    const listener = new WebSocketListener(server, addr, options, listenOptions);
    signal?.addEventListener('abort', () => void listener.close(), { once: true });
    return listener;
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return this.#accepted[Symbol.asyncIterator]();
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#closed = true;
      this.#accepted.end();
      // Stops accepting; upgraded sockets are no longer the HTTP server's and stay open.
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      // server.close's callback waits for every socket it ever accepted, upgraded ones included; the
      // port itself is released at once, which is all "stop accepting" promises.
      setImmediate(resolve);
    });
    return this.#closing;
  }

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (this.#closed) return reject(socket, 503, 'Service Unavailable');
    if (path !== this.#path) return reject(socket, 404, 'Not Found');
    if (this.#accepted.size >= MAX_UNTAKEN_CONNECTIONS) return reject(socket, 503, 'Service Unavailable');
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (this.#closed) {
        ws.terminate();
        return;
      }
      const local = formatWebSocketAddress(this.#secure, socket.localAddress ?? '', socket.localPort ?? 0, this.#path);
      const remote = formatWebSocketAddress(this.#secure, socket.remoteAddress ?? '', socket.remotePort ?? 0, this.#path);
      // ws attached the socket just now and emits its first bytes on the next tick: watch from here
      const frames = this.#listenOptions.partialFrameTimeoutMs === 0 ? undefined : watchFrames(socket);
      const conn = new WebSocketConnection(ws, { local, remote }, this.#options, this.#listenOptions, frames);
      this.#accepted.push(conn);
    });
  }
}

function reject(socket: Socket, status: number, text: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  else socket.destroy();
}
