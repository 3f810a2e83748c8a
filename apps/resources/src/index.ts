/**
 * @tandem/resources — replicated services that call replicated services in causal order (FIG. 4a/4b): a
 * resource handler and a resource, each a primary/backup pair, and the client flow that uses them.
 *
 * @packageDocumentation
 */
export * from './service.js';
export { allocateAndUse, createPro1, type FlowResult, type Pro1 } from './flow.js';
export { createNetwork, serve, type ServeOptions } from './serve.js';
export {
  ServeProcess,
  ThreeParty,
  cliCommand,
  freePort,
  startPair,
  type ServeEvent,
  type ServeProcessOptions,
  type ThreePartyOptions,
} from './harness.js';
export { runDemo, type DemoOptions, type DemoResult } from './demo.js';
