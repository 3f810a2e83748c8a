/**
 * `@tandem/xconference/internal`: building blocks under the public API that this repository's tools drive
 * directly (the fuzzer runs a session and the framers without a Conference; tandem-xconf probes servers
 * with connectServer before a conference starts). No stability promise: anything
 * here may change or go in any release. Applications use the package's main entry.
 */
export { ApplicationSession } from './session/session.js';
export type { SessionOptions } from './session/options.js';
export { RequestFramer, ServerMessageFramer } from './wire/framing.js';
export { connectServer, type ConnectedServer } from './session/handshake.js';
