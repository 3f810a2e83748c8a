export { tcp, TcpTransport, type TcpOptions, type TcpTlsOptions } from './transport.js';
export { TcpConnection } from './connection.js';
export { parseTcpAddress, formatTcpAddress, type TcpAddress, type TcpScheme } from './address.js';
export { mapSocketError } from './errors.js';
