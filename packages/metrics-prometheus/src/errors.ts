/**
 * Typed errors of @tandem/metrics-prometheus. The repository's convention: flat classes (each `extends Error`
 * directly) with a static and an instance `name`. Recognise them by `err.name`
 * (`isMetricsPrometheusError(err, 'MetricsListenError')`), which survives two copies of the package in one install.
 */

/** The names of this package's errors. */
export type MetricsPrometheusErrorName = 'InsecureMetricsListenError' | 'MetricsListenError';

/** The metrics endpoint was asked to listen beyond loopback without `allowRemote`. */
export class InsecureMetricsListenError extends Error {
  static override readonly name = 'InsecureMetricsListenError';
  override readonly name = 'InsecureMetricsListenError';
  /** The `HOST:PORT` that was refused. */
  readonly address: string;
  constructor(address: string) {
    super(
      `refusing to serve metrics on ${address}: the endpoint is unauthenticated and any host that reaches it could read the replica's state. ` +
        'Listen on 127.0.0.1 (and scrape through a local agent or tunnel), or accept the risk explicitly (allowRemote: true; tandem-kv: --insecure).',
    );
    this.address = address;
  }
}

/** A malformed `HOST:PORT`, or the listener could not bind it (port in use, address not local). `cause`: the socket error. */
export class MetricsListenError extends Error {
  static override readonly name = 'MetricsListenError';
  override readonly name = 'MetricsListenError';
  /** The `HOST:PORT` that could not be served. */
  readonly address: string;
  constructor(address: string, problem: string, options?: { cause?: unknown }) {
    super(`cannot serve metrics on ${JSON.stringify(address)}: ${problem}`, options);
    this.address = address;
  }
}

/** Every error name of this package. */
export const METRICS_PROMETHEUS_ERROR_NAMES: readonly MetricsPrometheusErrorName[] = ['InsecureMetricsListenError', 'MetricsListenError'];

/** True when `err` is one of this package's errors (by name; `name` narrows to that one). */
export function isMetricsPrometheusError(err: unknown, name?: MetricsPrometheusErrorName): err is Error {
  if (!(err instanceof Error)) return false;
  const n = err.name as MetricsPrometheusErrorName;
  return name === undefined ? METRICS_PROMETHEUS_ERROR_NAMES.includes(n) : n === name;
}
