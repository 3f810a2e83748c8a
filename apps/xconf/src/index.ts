export { startXconf, type XconfOptions, type XconfDaemon } from './daemon.js';
export { parseDisplay, unixSocketPath, upstreamFor, type DisplayName } from './display.js';
