export { websocket, WebSocketTransport } from './websocket-transport.js';
export type { WebSocketTransportOptions, WebSocketTlsOptions } from './options.js';
export { WebSocketConnection } from './ws-connection.js';
export { WebSocketListener } from './ws-listener.js';
