export * from './schema.js';
export { kvService, applyKv, initialKvState, KV_SERVICE_NAME, FencingError, LockLostError, NotAnIntegerError, type KvState, type Lease } from './service.js';
export { createTransportRegistry, addressFor, UsageError } from './transports.js';
export { requestFromWords } from './commands/call.js';
