import { canonicalCurveKey } from './z85.js';

/** Decides whether a client's CURVE public key (40 characters of Z85) may connect; `address` is its IP. */
export type ZmqClientKeyCheck = (clientKey: string, peer: { readonly address: string }) => boolean | Promise<boolean>;

/** CURVE security (libzmq's CurveZMQ): keys are 40-character Z85 strings, e.g. from `curveKeyPair()`. */
export interface ZmqCurveOptions {
  /** This end's key pair. Required on both ends. */
  publicKey: string;
  /** This end's secret key (keep it private). */
  secretKey: string;
  /** Dialler: the listener's public key (required to dial). */
  serverKey?: string;
  /**
   * Listener: the clients allowed to connect — their public keys, or a function deciding per key. Checked
   * in the CURVE handshake (a ZAP handler), before any Tandem frame: a client whose key is not allowed is
   * refused (its dial fails with ConnectionRefusedError) and never accepted. Without it, any client that
   * knows the listener's public key may connect (only the server is authenticated).
   */
  allowedClientKeys?: readonly string[] | ZmqClientKeyCheck;
}

/** Options of the ZeroMQ transport: pings and liveness, close timeout, ZMTP heartbeat and handshake, CURVE encryption. */
export interface ZeroMqTransportOptions {
  /** Interval between Tandem pings sent by each end, in ms. 0 turns pings and the liveness check off. Default 2 000. */
  pingIntervalMs?: number;
  /** A connection that hears nothing from its peer for this long closes with TimeoutError. Default 3 × pingIntervalMs. */
  livenessTimeoutMs?: number;
  /** close() waits this long for the peer's acknowledgement before letting go. Default 5 000. */
  closeTimeoutMs?: number;
  /**
   * ZMTP heartbeats (libzmq's own, below Tandem's pings): interval in ms, 0 = off. Default 2 000 (timeout and TTL 3 ×). They make
   * libzmq drop a dead TCP connection, after which sends to that peer fail at once.
   */
  zmtpHeartbeatIntervalMs?: number;
  /** ZMTP handshake deadline on the listener (libzmq `handshakeInterval`), ms; a dial's own timeoutMs governs the dialler. Default 10 000. */
  zmtpHandshakeTimeoutMs?: number;
  /** CURVE encryption and authentication of the listener (and of the dialler's key, if a ZAP handler checks it). */
  curve?: ZmqCurveOptions;
}

export interface ResolvedZmqOptions {
  /** Listener: the client-key check, from `curve.allowedClientKeys` (keys in canonical Z85). */
  readonly allowClientKey: ZmqClientKeyCheck | undefined;
  readonly pingIntervalMs: number;
  readonly livenessTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly zmtpHeartbeatIntervalMs: number;
  readonly zmtpHandshakeTimeoutMs: number;
  readonly curve: ZmqCurveOptions | undefined;
}

export function resolveZmqOptions(options: ZeroMqTransportOptions = {}): ResolvedZmqOptions {
  const pingIntervalMs = nonNegative(options.pingIntervalMs, 2_000, 'pingIntervalMs');
  const curve = options.curve;
  if (curve) {
    for (const k of ['publicKey', 'secretKey'] as const) {
      if (typeof curve[k] !== 'string' || curve[k].length !== 40) throw new RangeError(`curve.${k} must be a 40-character Z85 key`);
    }
    if (curve.serverKey !== undefined && curve.serverKey.length !== 40)
      throw new RangeError('curve.serverKey must be a 40-character Z85 key');
  }
  let allowClientKey: ZmqClientKeyCheck | undefined;
  const allowed = curve?.allowedClientKeys;
  if (typeof allowed === 'function') allowClientKey = allowed;
  else if (allowed !== undefined) {
    if (!Array.isArray(allowed)) throw new RangeError('curve.allowedClientKeys must be an array of Z85 public keys or a function');
    const keys = new Set<string>();
    for (const key of allowed) {
      const canonical = canonicalCurveKey(key);
      if (canonical === undefined)
        throw new RangeError(`curve.allowedClientKeys: ${JSON.stringify(key)} is not a 40-character Z85 public key`);
      keys.add(canonical);
    }
    allowClientKey = (clientKey) => keys.has(clientKey);
  }
  return {
    allowClientKey,
    pingIntervalMs,
    livenessTimeoutMs: nonNegative(options.livenessTimeoutMs, pingIntervalMs * 3, 'livenessTimeoutMs'),
    closeTimeoutMs: nonNegative(options.closeTimeoutMs, 5_000, 'closeTimeoutMs'),
    zmtpHeartbeatIntervalMs: nonNegative(options.zmtpHeartbeatIntervalMs, 2_000, 'zmtpHeartbeatIntervalMs'),
    zmtpHandshakeTimeoutMs: nonNegative(options.zmtpHandshakeTimeoutMs, 10_000, 'zmtpHandshakeTimeoutMs'),
    curve,
  };
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}
