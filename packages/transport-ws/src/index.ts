/**
 * @tandem/transport-ws — the WebSocket transport (`ws://host:port/path`, `wss://…`): one binary WebSocket
 * message per Tandem message.
 *
 * @packageDocumentation
 */
export { websocket, WebSocketTransport } from './websocket-transport.js';
export type { WebSocketTransportOptions, WebSocketTlsOptions } from './options.js';
