/**
 * @tandem/transport-tcp — TCP and TLS (`tcp://`, `tls://`): length-prefixed messages over node:net /
 * node:tls, with backpressure both ways, typed errors and optional mutual TLS.
 *
 * @packageDocumentation
 */
export { tcp, TcpTransport, type TcpOptions, type TcpTlsOptions } from './transport.js';
export { TcpConnection } from './connection.js';
export { parseTcpAddress, formatTcpAddress, type TcpAddress, type TcpScheme } from './address.js';
export { mapSocketError } from './errors.js';
