export { XProtocolError, type XProtocolErrorCode } from './errors.js';
export { RequestCategory, EventCategory, REQUEST_CATEGORIES, EVENT_CATEGORIES, requestCategory, eventCategory } from './categories.js';
export { RequestFramer, ServerMessageFramer } from './framing.js';
export {
  parseClientSetup,
  encodeClientSetup,
  parseServerSetup,
  serverSetupSize,
  encodeSetupFailed,
  type ClientSetup,
  type ServerSetup,
  type ScreenInfo,
  type VisualInfo,
  type PixmapFormat,
} from './setup.js';
export { IdMap, LAST_PREDEFINED_ATOM } from './id-map.js';
export { translateRequest, translateReply, translateEvent, translateError } from './translate.js';
export { ApplicationSession, SUPPORTED_EXTENSIONS, type Upstream, type SessionOptions, type SessionStats } from './session.js';
export { Conference, type ConferenceOptions } from './conference.js';
export { BusyPoll, DEFAULT_BUSY_POLL_MICROS, type BusyPollClock } from './busy-poll.js';
export { ResourceTracker, TRACKED_OPCODES, type TrackerStats, type TrackerLimits } from './resource-tracker.js';
export { planReplay, type ReplayPlan, type PixmapImage } from './replay-plan.js';
export { LateJoin, type JoinStats } from './late-join.js';
export { connectServer, type ConnectedServer } from './server-connect.js';
export { convertZPixmap, rowBytes, type ImageFormat } from './image-convert.js';
export { parseFocusTrigger, type FocusTrigger } from './trigger.js';
export { readXauthority, findCookie, type XauthEntry } from './xauth.js';
export { REQUESTS, EVENTS, ERRORS, XCB_PROTO_VERSION } from './generated/xproto.js';
export type { RequestSpec, EventSpec, ErrorSpec, ResourceKind, ResourceField, ResourceList, ValueListSpec } from './xproto-types.js';
export { read16, read32, write16, write32, type ByteOrder } from './wire.js';
