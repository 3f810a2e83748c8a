/** Node socket errors → the typed errors of the transport contract. */
import {
  AddressInUseError,
  ConnectionClosedError,
  ConnectionRefusedError,
  InvalidAddressError,
  isTransportError,
  TimeoutError,
  type TransportError,
} from '@tandem/transport';

const TLS_AUTH_CODES = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|CERT_|ERR_OSSL_)/;

/**
 * A dial that failed after the TCP connect, before the peer's preamble: a reset there means the listener
 * dropped the connection (e.g. it is at its maxConnections), which is a refusal.
 */
export function mapHandshakeError(err: unknown, address: string): TransportError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!isTransportError(err) && (code === 'ECONNRESET' || code === 'EPIPE')) {
    return new ConnectionRefusedError(`${address} dropped the connection during the handshake (${code})`, { address, cause: err });
  }
  return mapSocketError(err, address);
}

/** Map a Node socket error (ECONNREFUSED, EADDRINUSE, ETIMEDOUT, EHOSTUNREACH, a TLS failure…) to the transport contract's typed error. */
export function mapSocketError(err: unknown, address: string): TransportError {
  if (isTransportError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = e instanceof Error ? e.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return new ConnectionRefusedError(`connection refused by ${address}`, { address, cause: err, nothingListens: true });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new ConnectionRefusedError(`cannot reach ${address} (${code})`, { address, cause: err });
    case 'ETIMEDOUT':
      return new TimeoutError(`connecting to ${address} timed out`, { address, cause: err });
    case 'EADDRINUSE':
      return new AddressInUseError(`${address} is already in use`, { address, cause: err });
    case 'EADDRNOTAVAIL':
    case 'EACCES':
    case 'ERR_SOCKET_BAD_PORT':
    case 'ERR_INVALID_ADDRESS':
      return new InvalidAddressError(`cannot use ${address}: ${message}`, { address, cause: err });
    default:
      if (TLS_AUTH_CODES.test(code)) {
        return new ConnectionRefusedError(`TLS handshake with ${address} failed: ${message}`, { address, cause: err });
      }
      return new ConnectionClosedError(`connection to ${address} failed: ${message}`, { address, cause: err });
  }
}
