// The etcd3 client as the witness and the shard map use it: calls fail fast (a deadline on every unary call,
// no retries on the same host, no circuit breaker that would hide a recovered etcd for seconds) and the
// channel reconnects quickly after etcd comes back.
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, isRecoverableError } from 'etcd3';
import type { EtcdTlsOptions } from './url.js';

/** Per-call deadline when none is configured (ms). */
export const DEFAULT_CALL_TIMEOUT_MS = 1000;

export interface EtcdClientOptions {
  /** `host:port` (or `http://host:port`, `https://host:port`). */
  endpoints: readonly string[];
  /** Deadline of each etcd call (ms). */
  callTimeoutMs?: number;
  /** TLS to etcd (endpoints are then dialled with https). */
  tls?: EtcdTlsOptions;
}

/** The etcd3 endpoints in the form it wants (`http(s)://host:port`). */
export function hostsFor(endpoints: readonly string[], tls: boolean): string[] {
  if (endpoints.length === 0) throw new RangeError('no etcd endpoints');
  return endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`));
}

export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  const timeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const tls = opts.tls !== undefined || opts.endpoints.some((e) => e.startsWith('https://'));
  const signal = new AbortController().signal;
  // cockatiel policies, reduced to what the pool calls (`execute`): the host policy passes through; the
  // global one tries each endpoint once (the pool picks a shuffled next host per attempt).
  const passThrough = { execute: async <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => T) => fn({ signal, attempt: 0 }) };
  const eachHostOnce = {
    async execute<T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => T): Promise<Awaited<T>> {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn({ signal, attempt });
        } catch (err) {
          if (attempt + 1 >= opts.endpoints.length || !isRecoverableError(err as Error)) throw err;
        }
      }
    },
  };
  const steadyBackoff = { duration: 500, next: () => steadyBackoff };
  const options: IOptions = {
    hosts: hostsFor(opts.endpoints, tls),
    dialTimeout: timeout,
    // A deadline on every unary call; streams (keepalive, watch) have none: they are supervised by their users.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      // One attempt per host in turn; no circuit breaker (it would refuse calls for 5 s after etcd recovered).
      host: () => passThrough as never,
      global: eachHostOnce as never,
      // Watches (the shard map) reconnect every 500 ms while etcd is away (etcd3's default backs off to 30 s).
      watchBackoff: steadyBackoff as never,
    },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000,
    },
  };
  if (opts.tls?.ca !== undefined || opts.tls?.cert !== undefined) {
    options.credentials = {
      rootCertificate: opts.tls.ca !== undefined ? readFileSync(opts.tls.ca) : (undefined as unknown as Buffer),
      ...(opts.tls.cert !== undefined && { certChain: readFileSync(opts.tls.cert) }),
      ...(opts.tls.key !== undefined && { privateKey: readFileSync(opts.tls.key) }),
    };
  }
  return new Etcd3(options);
}
