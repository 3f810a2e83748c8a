/**
 * @tandem/transport-zeromq — the ZeroMQ transport (`zmq+tcp://host:port`): a listener is a ROUTER socket,
 * every dialled connection its own DEALER; optional CURVE encryption.
 *
 * @packageDocumentation
 */
export { zeromq, ZeroMqTransport } from './zeromq-transport.js';
export type { ZeroMqTransportOptions, ZmqCurveOptions } from './options.js';
export { ZMQ_SCHEME } from './address.js';
/** Make a CURVE key pair (40-character Z85 strings) for the `curve` options. */
export { curveKeyPair } from 'zeromq';
