import { InvalidAddressError, UnsupportedSchemeError } from './errors.js';
import type { Connection, DialOptions, Listener, ListenOptions, Transport } from './types.js';

/** The scheme of an address such as `tcp://127.0.0.1:7000` → `tcp`. */
export function schemeOf(address: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address);
  if (!m) throw new InvalidAddressError(`address "${address}" has no scheme (expected e.g. tcp://host:port)`, { address });
  return m[1]!.toLowerCase();
}

/**
 * Picks a transport by address scheme. Populate it with the adapters the application wants; swapping
 * transports is then a change of address (configuration), not of code.
 */
export class TransportRegistry implements Transport {
  readonly name = 'registry';
  readonly #byScheme = new Map<string, Transport>();

  constructor(transports: Iterable<Transport> = []) {
    for (const t of transports) this.register(t);
  }

  get schemes(): readonly string[] {
    return [...this.#byScheme.keys()];
  }

  /** Register a transport for each of its schemes; a later registration for a scheme replaces the earlier. */
  register(transport: Transport): this {
    for (const s of transport.schemes) this.#byScheme.set(s.toLowerCase(), transport);
    return this;
  }

  /** True when a transport is registered for the scheme (case-insensitive, without the colon). */
  has(scheme: string): boolean {
    return this.#byScheme.has(scheme.toLowerCase());
  }

  /** The transport for an address; throws UnsupportedSchemeError or InvalidAddressError. */
  resolve(address: string): Transport {
    const scheme = schemeOf(address);
    const t = this.#byScheme.get(scheme);
    if (!t) throw new UnsupportedSchemeError(scheme, { address });
    return t;
  }

  listen(address: string, options?: ListenOptions): Promise<Listener> {
    try {
      return this.resolve(address).listen(address, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  dial(address: string, options?: DialOptions): Promise<Connection> {
    try {
      return this.resolve(address).dial(address, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** A TransportRegistry holding the given transports, e.g. `createRegistry([tcp(), websocket()])`. */
export function createRegistry(transports: Iterable<Transport> = []): TransportRegistry {
  return new TransportRegistry(transports);
}
