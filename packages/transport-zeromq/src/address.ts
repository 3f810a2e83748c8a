import { InvalidAddressError } from '@tandem/transport';

/** The URL scheme of the ZeroMQ transport: `zmq+tcp://host:port`. */
export const ZMQ_SCHEME = 'zmq+tcp';

/** A parsed `zmq+tcp://host:port` address. */
export interface ZmqAddress {
  readonly host: string;
  readonly port: number;
  /** The libzmq endpoint, `tcp://host:port`. */
  readonly endpoint: string;
}

export function parseZmqAddress(address: string, options: { allowPortZero: boolean }): ZmqAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch (cause) {
    throw new InvalidAddressError(`"${address}" is not a valid URL`, { address, cause });
  }
  if (url.protocol.toLowerCase() !== `${ZMQ_SCHEME}:`) {
    throw new InvalidAddressError(`"${address}" is not a ${ZMQ_SCHEME}:// address`, { address });
  }
  if (url.hostname === '') throw new InvalidAddressError(`"${address}" has no host`, { address });
  if (url.port === '') throw new InvalidAddressError(`"${address}" has no port (expected ${ZMQ_SCHEME}://host:port)`, { address });
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new InvalidAddressError(`"${address}" must be just ${ZMQ_SCHEME}://host:port`, { address });
  }
  const port = Number(url.port);
  if (port === 0 && !options.allowPortZero) throw new InvalidAddressError(`cannot dial port 0 in "${address}"`, { address });
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const h = host.includes(':') ? `[${host}]` : host;
  return { host, port, endpoint: `tcp://${h}:${port}` };
}

/** `tcp://127.0.0.1:5555` (libzmq's form) → `zmq+tcp://127.0.0.1:5555`. */
export function fromEndpoint(endpoint: string): string {
  return endpoint.replace(/^tcp:\/\//, `${ZMQ_SCHEME}://`);
}
