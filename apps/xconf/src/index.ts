/**
 * @tandem/xconf — the X conference daemon behind `tandem-xconf`: serves X displays and shows every
 * application on the master's and the participants' X servers, with a ctl socket and access control.
 *
 * @packageDocumentation
 */
export { startXconf, XconfServer, type XconfOptions, type XconfDaemon, type DaemonOptions } from './daemon.js';
export { parseDisplay, unixSocketPath, upstreamFor, type DisplayName } from './display.js';
export {
  parseConfig,
  loadConfig,
  configFromFlags,
  configSchema,
  ConfigError,
  PERMISSIONS,
  type XconfConfig,
  type ParticipantConfig,
  type ConferenceConfig,
  type Permission,
} from './config.js';
export { AccessPolicy, tokenMatches } from './access.js';
export {
  CtlError,
  parseCtlRequest,
  ctlRequestSchema,
  type CtlRequest,
  type CtlReply,
  type CtlErrorCode,
  type ConferenceInfo,
  type ApplicationInfo,
} from './ctl-protocol.js';
export { startCtlServer, defaultCtlSocket, type CtlServer, type CtlHandler } from './ctl-server.js';
export { ctlRequest } from './ctl-client.js';
export { parseCtlArgs, formatCtlResult, formatStatus, CTL_USAGE } from './ctl-args.js';
export { HostedConference, type HostedParticipant, type HostOptions } from './hosted-conference.js';
export { gateApplication, encodeXauthority, writeXauthority, newCookie } from './launch-auth.js';
export {
  conferenceStatus,
  XconfTotals,
  REQUEST_CATEGORY_FIELDS,
  type XconfStatus,
  type ConferenceStatus,
  type ParticipantStatus,
  type ApplicationStatus,
  type RequestsByCategory,
  type DaemonTotals,
} from './status.js';
export {
  xconfMetrics,
  startXconfMetrics,
  LATE_JOIN_BUCKETS,
  XCONF_METRIC_NAMES,
  type XconfMetrics,
  type XconfMetricsOptions,
} from './metrics.js';
