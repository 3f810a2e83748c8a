import { InvalidAddressError } from '@tandem/transport';

/** A parsed `ws://host:port/path` or `wss://host:port/path` address. */
export interface WebSocketAddress {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** Path the listener serves, always starting with "/". */
  readonly path: string;
}

export function parseWebSocketAddress(address: string, options: { allowPortZero: boolean }): WebSocketAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch (cause) {
    throw new InvalidAddressError(`"${address}" is not a valid URL`, { address, cause });
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'ws' && scheme !== 'wss') {
    throw new InvalidAddressError(`"${address}" is not a ws:// or wss:// address`, { address });
  }
  if (url.hostname === '') throw new InvalidAddressError(`"${address}" has no host`, { address });
  if (url.port === '') throw new InvalidAddressError(`"${address}" has no port (expected ${scheme}://host:port/path)`, { address });
  const port = Number(url.port);
  if (port === 0 && !options.allowPortZero) throw new InvalidAddressError(`cannot dial port 0 in "${address}"`, { address });
  if (url.search !== '' || url.hash !== '') {
    throw new InvalidAddressError(`"${address}" must not have a query or fragment`, { address });
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { secure: scheme === 'wss', host, port, path: url.pathname || '/' };
}

export function formatWebSocketAddress(secure: boolean, host: string, port: number, path: string): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${secure ? 'wss' : 'ws'}://${h}:${port}${path}`;
}
