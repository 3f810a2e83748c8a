/**
 * Typed errors of @tandem/witness-etcd. The repository's convention: flat classes (each `extends Error`
 * directly) with a static and an instance `name`. Recognise them by `err.name` (`isWitnessEtcdError(err,
 * 'WitnessUnavailableError')`), which survives two copies of the package in one install.
 */

/** (A shard map's `ShardMapError` is @tandem/core's.) */
export type WitnessEtcdErrorName = 'WitnessUnavailableError' | 'WitnessUrlError' | 'WitnessClosedError';

/** etcd did not answer in time (down, paused, partitioned away) or failed: the witness cannot decide. A replica
 * treats it as a refusal and asks again later (unavailable rather than unsafe). `cause`: the client's error. */
export class WitnessUnavailableError extends Error {
  static override readonly name = 'WitnessUnavailableError';
  override readonly name = 'WitnessUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A malformed `etcd://host:port[,host:port…]/prefix` (or `etcds://…`) URL. */
export class WitnessUrlError extends Error {
  static override readonly name = 'WitnessUrlError';
  override readonly name = 'WitnessUrlError';
  /** The URL as given. */
  readonly url: string;
  constructor(url: string, problem: string) {
    super(`bad witness URL ${JSON.stringify(url)}: ${problem} (expected etcd://host:port[,host:port…]/prefix)`);
    this.url = url;
  }
}

/** The witness or shard map was closed; it no longer talks to etcd. */
export class WitnessClosedError extends Error {
  static override readonly name = 'WitnessClosedError';
  override readonly name = 'WitnessClosedError';
  constructor(message = 'closed') {
    super(message);
  }
}

/** Every error name this package uses. */
export const WITNESS_ETCD_ERROR_NAMES: readonly WitnessEtcdErrorName[] = [
  'WitnessUnavailableError',
  'WitnessUrlError',
  'WitnessClosedError',
];

/** True if `err` is one of this package's errors (optionally: the one named `name`), by name. */
export function isWitnessEtcdError(err: unknown, name?: WitnessEtcdErrorName): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const n = (err as { name?: unknown }).name;
  return name === undefined ? (WITNESS_ETCD_ERROR_NAMES as readonly unknown[]).includes(n) : n === name;
}
