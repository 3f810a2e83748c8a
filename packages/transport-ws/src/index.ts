export { websocket, WebSocketTransport } from './websocket-transport.js';
export type { WebSocketTransportOptions, WebSocketTlsOptions } from './options.js';
