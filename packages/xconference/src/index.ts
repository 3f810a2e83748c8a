/**
 * The public API of @tandem/xconference. Building blocks below it (framers, translation, the resource
 * tracker, the generated tables…) are in '@tandem/xconference/internal', which may change in any release.
 *
 * @packageDocumentation
 */

// A conference, its applications and its participants' servers.
export { Conference, type ConferenceOptions, type ConferenceCounters, type LateJoinInfo } from './conference.js';
export type { ApplicationSession } from './session/session.js';
export type { SessionStats, ParticipantCounters, Upstream } from './session/options.js';
export type { JoinStats } from './late-join/late-join.js';
export { parseFocusTrigger, type FocusTrigger } from './session/focus-trigger.js';
export { readXauthority, findCookie, type XauthEntry } from './session/xauth.js';

// The X connection setup, for a daemon that reads or answers it itself (cookie checks, refusals).
export {
  parseClientSetup,
  encodeClientSetup,
  parseServerSetup,
  serverSetupSize,
  encodeSetupFailed,
  type ClientSetup,
  type ServerSetup,
} from './wire/setup.js';
// Which servers can take part (TrueColor default visual), and why not.
export { unsupportedVisual, visualClassName } from './translate/visual-policy.js';

// The patent's categories, and the xcb-proto version the protocol tables come from.
export { RequestCategory, EventCategory, requestCategory, eventCategory } from './wire/categories.js';
export { XCB_PROTO_VERSION } from './generated/xproto.js';

// Errors.
export {
  XProtocolError,
  JoinError,
  FocusTriggerError,
  isXconferenceError,
  type XProtocolErrorCode,
  type JoinErrorCode,
  type FocusTriggerErrorCode,
  type XconferenceError,
  type XconferenceErrorName,
} from './errors.js';
