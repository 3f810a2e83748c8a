/** `tcp://host:port` and `tls://host:port` addresses. */
import { InvalidAddressError } from '@tandem/transport';

/** The URL schemes of the TCP transport: plain `tcp` or `tls`. */
export type TcpScheme = 'tcp' | 'tls';

/** A parsed `tcp://host:port` or `tls://host:port` address. */
export interface TcpAddress {
  /** `tcp` or `tls`. */
  scheme: TcpScheme;
  /** Host name or IP, without IPv6 brackets. */
  host: string;
  /** Port number (0 when listening lets the system pick one). */
  port: number;
}

/** Parse a `tcp://` or `tls://` address; throws InvalidAddressError for another scheme, a path or a bad port. */
export function parseTcpAddress(address: string): TcpAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch (cause) {
    throw new InvalidAddressError(`invalid address "${address}"`, { address, cause });
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'tcp' && scheme !== 'tls') {
    throw new InvalidAddressError(`not a tcp:// or tls:// address: ${address}`, { address });
  }
  if (url.port === '')
    throw new InvalidAddressError(`address needs a port (use :0 to let the system choose when listening): ${address}`, { address });
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash || url.username) {
    throw new InvalidAddressError(`tcp addresses have only a host and a port: ${address}`, { address });
  }
  let host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw new InvalidAddressError(`address needs a host: ${address}`, { address });
  return { scheme, host, port: Number(url.port) };
}

/** The canonical address text, e.g. `tcp://127.0.0.1:7000` (an IPv6 host in brackets). */
export function formatTcpAddress(scheme: TcpScheme, host: string | undefined, port: number | undefined): string {
  const h = host ?? 'unknown';
  return `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port ?? 0}`;
}
