/** TLS material for `wss://`. Strings or Buffers in PEM form, as node:tls takes them. */
export interface WebSocketTlsOptions {
  /** Private key of this end (the listener's; the dialler's too for mutual TLS). */
  key?: string | Buffer;
  /** Certificate chain of this end. */
  cert?: string | Buffer;
  /** Trusted CA certificates used to verify the peer. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Passphrase for `key`. */
  passphrase?: string;
  /** Listener: ask dialers for a client certificate and refuse those without a valid one (mutual TLS). */
  requireClientCertificate?: boolean;
  /** Verify the peer's certificate against `ca`/system CAs. Default true; only turn off in tests. */
  rejectUnauthorized?: boolean;
  /** Dialler: the name to verify the server certificate against (SNI). Default: the address's host. */
  servername?: string;
}

/** Options of the WebSocket transport: pings and liveness, close and TLS-handshake timeouts, TLS. */
export interface WebSocketTransportOptions {
  /**
   * Interval between WebSocket pings sent by each end, in ms. 0 turns pings and the liveness check off.
   * Default 5 000.
   */
  pingIntervalMs?: number;
  /**
   * A connection that hears nothing at all from its peer (no message, ping or pong) for this long is
   * closed with a TimeoutError. Default: 3 × pingIntervalMs.
   */
  livenessTimeoutMs?: number;
  /** A graceful close() waits this long for the peer's close frame before dropping the socket. Default 5 000. */
  closeTimeoutMs?: number;
  /** TLS for `wss://` addresses (both listen and dial). */
  tls?: WebSocketTlsOptions;
  /**
   * Listener (wss://): a TLS handshake not completed within this many ms is cut off (a slow-loris client
   * holding a connection slot). 0 = no deadline. Default 30 000 (Node's own is 120 000).
   */
  tlsHandshakeTimeoutMs?: number;
}

export interface ResolvedWebSocketOptions {
  readonly pingIntervalMs: number;
  readonly livenessTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly tlsHandshakeTimeoutMs: number;
  readonly tls: WebSocketTlsOptions;
}

export function resolveWebSocketOptions(options: WebSocketTransportOptions = {}): ResolvedWebSocketOptions {
  const pingIntervalMs = nonNegative(options.pingIntervalMs, 5_000, 'pingIntervalMs');
  return {
    pingIntervalMs,
    livenessTimeoutMs: nonNegative(options.livenessTimeoutMs, pingIntervalMs * 3, 'livenessTimeoutMs'),
    closeTimeoutMs: nonNegative(options.closeTimeoutMs, 5_000, 'closeTimeoutMs'),
    tlsHandshakeTimeoutMs: nonNegative(options.tlsHandshakeTimeoutMs, 30_000, 'tlsHandshakeTimeoutMs'),
    tls: options.tls ?? {},
  };
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}
