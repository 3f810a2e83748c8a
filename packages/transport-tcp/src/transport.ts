/**
 * The TCP/TLS transport: `tcp://host:port` over node:net, `tls://host:port` over node:tls (optionally with
 * mutual authentication). Dial resolves once the peer's framing preamble arrived, so a dial to something
 * that is not a Tandem endpoint fails (or times out) instead of yielding a dead connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  AbortError,
  AcceptQueue,
  checkConnectionOptions,
  DEFAULT_MAX_CONNECTIONS,
  InvalidAddressError,
  TimeoutError,
  type ConnectionOptions,
  type Connection,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from '@tandem/transport';
import { formatTcpAddress, parseTcpAddress, type TcpScheme } from './address.js';
import { DirectReads, TcpConnection } from './connection.js';
import { mapHandshakeError, mapSocketError } from './errors.js';

/** TLS settings of the TCP transport, used for `tls://` addresses: this end's key and certificate, trusted CAs. */
export interface TcpTlsOptions {
  /** PEM private key of this end (server: required; client: for mutual authentication). */
  key?: string | Buffer;
  /** PEM certificate (chain) of this end. */
  cert?: string | Buffer;
  /** PEM CA certificate(s) trusted to sign the peer's certificate. Default: Node's root store. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Server: ask clients for a certificate and refuse those without a valid one (mutual TLS). Default false. */
  requestCert?: boolean;
  /** Verify the peer's certificate. Default true; set false only in tests. */
  rejectUnauthorized?: boolean;
  /** Client: name checked against the server certificate. Default: the host of the address. */
  servername?: string;
}

/** Options of the TCP transport: TLS, keep-alive, listen backlog, close and TLS-handshake timeouts, direct reads. */
export interface TcpOptions {
  /** Settings for `tls://` addresses (required to listen on tls://). */
  tls?: TcpTlsOptions;
  /** TCP keep-alive probe delay in ms (0 = off). Default 15 000. */
  keepAliveMs?: number;
  /** Listen backlog. Default 1024. */
  backlog?: number;
  /** After a graceful close, force the socket shut if the peer has not finished within this many ms. Default 5 000. */
  closeTimeoutMs?: number;
  /**
   * Dialled plain-TCP connections read into buffers of their own (default true): a reused 64 KiB
   * buffer, or straight into the rest of a large message being received (no allocation per read, one
   * copy less per large message). false: Node's default reads (a new buffer per read).
   */
  directReads?: boolean;
  /**
   * Listener: a TLS handshake not completed within this many ms is cut off (a slow-loris client holding a
   * connection slot). 0 = no deadline. Default 30 000 (Node's own is 120 000). Longer than the default
   * partialFrameTimeoutMs because under a burst of dials handshakes also wait for this side's CPU.
   */
  tlsHandshakeTimeoutMs?: number;
}

const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

class TcpListener implements Listener {
  readonly address: string;
  readonly #server: net.Server;
  readonly #queue: AcceptQueue<Connection>;

  constructor(address: string, server: net.Server, queue: AcceptQueue<Connection>) {
    this.address = address;
    this.#server = server;
    this.#queue = queue;
  }

  close(): Promise<void> {
    if (this.#queue.ended) return Promise.resolve();
    this.#queue.end();
    return new Promise<void>((resolve) => {
      // stop accepting now; accepted connections stay open (server.close's callback would wait for them)
      this.#server.close();
      setImmediate(resolve);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return this.#queue[Symbol.asyncIterator]();
  }
}

/** The `tcp://` and `tls://` transport: length-prefixed frames over Node sockets (create it with `tcp()`). */
export class TcpTransport implements Transport {
  readonly name = 'tcp';
  readonly schemes: readonly string[] = ['tcp', 'tls'];
  /** The options this transport was created with. */
  readonly options: Readonly<TcpOptions>;
  #tlsClientContext: tls.SecureContext | undefined;

  constructor(options: TcpOptions = {}) {
    this.options = options;
  }

  listen(address: string, options: ListenOptions = {}): Promise<Listener> {
    let parsed;
    try {
      checkConnectionOptions(options);
      parsed = parseTcpAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    const { scheme, host, port } = parsed;
    if (options.signal?.aborted) return Promise.reject(new AbortError('listen aborted', { address }));
    if (scheme === 'tls' && (!this.options.tls?.key || !this.options.tls.cert)) {
      return Promise.reject(new InvalidAddressError('listening on tls:// needs tcp({ tls: { key, cert } })', { address }));
    }
    const queue = new AcceptQueue<Connection>();
    const accept = (socket: net.Socket): void => {
      if (queue.ended) {
        socket.destroy();
        return;
      }
      this.#configure(socket);
      const conn = new TcpConnection(socket, {
        localAddress: formatTcpAddress(scheme, socket.localAddress, socket.localPort),
        remoteAddress: formatTcpAddress(scheme, socket.remoteAddress, socket.remotePort),
        ...connectionInit(options),
        closeTimeoutMs: this.options.closeTimeoutMs ?? 5_000,
        accepted: true,
      });
      queue.push(conn);
    };
    let server: net.Server;
    if (scheme === 'tls') {
      const t = this.options.tls!;
      server = tls.createServer(
        {
          key: t.key,
          cert: t.cert,
          ...(t.ca !== undefined ? { ca: t.ca } : {}),
          requestCert: t.requestCert ?? false,
          rejectUnauthorized: t.rejectUnauthorized ?? true,
          // a TLS handshake not done by then (slow loris) is cut off; 0 = no deadline (node reads 0 as its
          // default, 120 s: the longest timer it takes instead)
          handshakeTimeout: (this.options.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS) || 2 ** 31 - 1,
        },
        accept,
      );
      server.on('tlsClientError', (_err, socket) => {
        // a failed handshake (garbage, missing or bad client certificate): node drops that socket itself,
        // but not one whose handshake timed out (a slow loris): drop it here
        socket.destroy();
      });
    } else {
      server = net.createServer({ noDelay: true }, accept);
    }
    // Node closes sockets beyond this at once, before any allocation of ours: the dialler sees a reset
    // (ConnectionRefusedError), the open connections nothing. It counts sockets until they are gone,
    // TLS handshakes in progress included.
    server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    return new Promise<Listener>((resolve, reject) => {
      const onError = (err: Error): void => {
        server.close();
        reject(mapSocketError(err, address));
      };
      server.once('error', onError);
      server.listen({ host, port, backlog: this.options.backlog ?? 1024 }, () => {
        server.off('error', onError);
        server.on('error', () => {
          // errors after listening (e.g. EMFILE on accept) do not end the listener
        });
        const bound = server.address() as net.AddressInfo;
        const listener = new TcpListener(formatTcpAddress(scheme, host, bound.port), server, queue);
        options.signal?.addEventListener('abort', () => void listener.close(), { once: true });
        resolve(listener);
      });
    });
  }

  dial(address: string, options: DialOptions = {}): Promise<Connection> {
    let parsed;
    try {
      checkConnectionOptions(options);
      parsed = parseTcpAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    const { scheme, host, port } = parsed;
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new AbortError('dial aborted', { address }));
    const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    const remoteAddress = formatTcpAddress(scheme, host, port);

    // Plain TCP reads into buffers of ours (DirectReads); TLS keeps the socket's own reads.
    const reads = scheme === 'tls' || this.options.directReads === false ? undefined : new DirectReads();
    return new Promise<Connection>((resolve, reject) => {
      let socket: net.Socket;
      let conn: TcpConnection | undefined;
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: Error): void => {
        if (settled) return;
        cleanup();
        if (conn) conn.abort(err);
        socket.destroy();
        reject(err);
      };
      const onAbort = (): void => fail(new AbortError('dial aborted', { address }));
      const timer = setTimeout(() => fail(new TimeoutError(`dial ${address} timed out after ${timeoutMs} ms`, { address })), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });

      const onConnected = (): void => {
        if (settled) return;
        this.#configure(socket);
        conn = new TcpConnection(
          socket,
          {
            localAddress: formatTcpAddress(scheme, socket.localAddress, socket.localPort),
            remoteAddress,
            ...connectionInit(options),
            closeTimeoutMs: this.options.closeTimeoutMs ?? 5_000,
          },
          reads,
        );
        const c = conn;
        c.ready.then(
          () => {
            if (settled) return;
            cleanup();
            resolve(c);
          },
          (err: unknown) => fail(mapHandshakeError((err as Error & { cause?: unknown }) ?? new Error('closed'), address)),
        );
      };

      if (scheme === 'tls') {
        const t = this.options.tls ?? {};
        socket = tls.connect(
          {
            host,
            port,
            secureContext: this.#clientContext(),
            rejectUnauthorized: t.rejectUnauthorized ?? true,
            ...(net.isIP(host) === 0 || t.servername ? { servername: t.servername ?? host } : {}),
          },
          onConnected,
        );
      } else {
        socket = net.connect({ host, port, noDelay: true, ...(reads ? { onread: reads.onread } : {}) }, onConnected);
      }
      socket.on('error', (err) => {
        if (!conn) fail(mapHandshakeError(err, address));
      });
    });
  }

  /** One client TLS context for every dial (building one per dial re-parses keys and CAs). */
  #clientContext(): tls.SecureContext {
    if (!this.#tlsClientContext) {
      const t = this.options.tls ?? {};
      this.#tlsClientContext = tls.createSecureContext({
        ...(t.key !== undefined ? { key: t.key } : {}),
        ...(t.cert !== undefined ? { cert: t.cert } : {}),
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
      });
    }
    return this.#tlsClientContext;
  }

  #configure(socket: net.Socket): void {
    socket.setNoDelay(true);
    const keepAlive = this.options.keepAliveMs ?? 15_000;
    if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
  }
}

/** The per-connection options of a listen or dial, as TcpConnection takes them. */
function connectionInit(options: ConnectionOptions) {
  return {
    maxMessageSize: options.maxMessageSize,
    receiveHighWaterMark: options.receiveHighWaterMark,
    sendHighWaterMark: options.sendHighWaterMark,
    maxSendQueueBytes: options.maxSendQueueBytes,
    partialFrameTimeoutMs: options.partialFrameTimeoutMs,
  };
}

/** The TCP/TLS transport factory: `createRegistry([tcp()])`. */
export function tcp(options: TcpOptions = {}): TcpTransport {
  return new TcpTransport(options);
}

export type { TcpScheme };
