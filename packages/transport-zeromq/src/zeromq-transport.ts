import {
  checkConnectionOptions,
  type Connection,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from '@tandem/transport';
import { ZMQ_SCHEME, fromEndpoint, parseZmqAddress } from './address.js';
import { resolveZmqOptions, type ResolvedZmqOptions, type ZeroMqTransportOptions } from './options.js';
import { dialZmq } from './zmq-dialer.js';
import { ZmqListener } from './zmq-listener.js';

/** The ZeroMQ transport: `zmq+tcp://host:port`, a ROUTER per listener and a DEALER per dialled connection. */
export class ZeroMqTransport implements Transport {
  readonly name = 'zeromq';
  readonly schemes = [ZMQ_SCHEME] as const;
  readonly #options: ResolvedZmqOptions;

  constructor(options: ZeroMqTransportOptions = {}) {
    this.#options = resolveZmqOptions(options);
  }

  async listen(address: string, options: ListenOptions = {}): Promise<Listener> {
    checkConnectionOptions(options);
    return ZmqListener.open(parseZmqAddress(address, { allowPortZero: true }), this.#options, options);
  }

  async dial(address: string, options: DialOptions = {}): Promise<Connection> {
    checkConnectionOptions(options);
    const addr = parseZmqAddress(address, { allowPortZero: false });
    return dialZmq(addr, fromEndpoint(addr.endpoint), this.#options, options);
  }
}

/** The ZeroMQ transport factory: `registry.register(zeromq())`. */
export function zeromq(options?: ZeroMqTransportOptions): Transport {
  return new ZeroMqTransport(options);
}
