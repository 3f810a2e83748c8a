import type { Socket } from 'node:net';
import { EventCategory, RequestCategory } from '../wire/categories.js';
import type { BusyPoll } from './busy-poll.js';
import type { FocusTrigger } from './focus-trigger.js';
import type { ApplicationSession } from './session.js';

/** How to reach one participant's X server. */
export interface Upstream {
  readonly name: string;
  /** Open a new connection to the participant's X server. */
  connect(): Socket;
  /** X authorisation to present (e.g. MIT-MAGIC-COOKIE-1 from XAUTHORITY); none if absent. */
  readonly auth?: { readonly name: string; readonly data: Buffer } | undefined;
}

export interface SessionOptions {
  readonly id: number;
  /** The application's connection. */
  readonly app: Socket;
  /** Bytes already read from `app` by whoever accepted it (e.g. a setup checked for a cookie); handled first. */
  readonly prelude?: Buffer;
  /** Participants' servers; index 0 is the master. */
  readonly upstreams: readonly Upstream[];
  readonly trigger: FocusTrigger;
  /** Called once when the session ends, with the reason. */
  readonly onClose?: (session: ApplicationSession, reason: string) => void;
  /** Called when the master's server connection is lost (the conference must close). */
  readonly onMasterLost?: (session: ApplicationSession) => void;
  readonly onFocusChange?: (session: ApplicationSession, participant: string) => void;
  /** Called when a non-master participant's server is found gone (it closed, failed, or refused setup). */
  readonly onParticipantLost?: (session: ApplicationSession, participant: string) => void;
  readonly log?: (line: string) => void;
  /** Milliseconds to wait for the servers' setup replies. */
  readonly setupTimeoutMs?: number;
  /** Milliseconds a late join may wait for the master's and the newcomer's answers (default 30 s). */
  readonly joinTimeoutMs?: number;
  /** Polls for answers without sleeping for a while after each write (see BusyPoll); none = sleep at once. */
  readonly busyPoll?: BusyPoll;
  /** The counters a participant's server connections add their bytes to (one object per participant, shared by sessions). */
  readonly participantCounters?: (participant: string) => ParticipantCounters;
}

/**
 * Counts of one participant over a conference's life, summed over every application (kept after it leaves,
 * so they only grow). Plain numbers that the relay increments in place; a daemon reads them when it wants.
 */
export interface ParticipantCounters {
  /** Bytes read from the participant's server: replies, events and errors (setup replies not counted). */
  bytesIn: number;
  /** Bytes written to the participant's server: the applications' requests, late-join replays, the relay's own requests. */
  bytesOut: number;
  /** Colour depth (bits) of the server's root window, once a connection has seen its setup; null before. */
  depth: number | null;
}

/** ParticipantCounters at zero, depth unknown. */
export function emptyParticipantCounters(): ParticipantCounters {
  return { bytesIn: 0, bytesOut: 0, depth: null };
}

/** Counts kept for tests, diagnostics and metrics (plain numbers, incremented on the relay's path). */
export interface SessionStats {
  requests: number;
  /** Requests of category draw-or-change (sent to every participant); the five category counts sum to `requests`. */
  requestsDrawOrChange: number;
  /** Requests of category query-display (sent to the input focus). */
  requestsQueryDisplay: number;
  /** Requests of category query-server (sent to the master). */
  requestsQueryServer: number;
  /** Requests of category input-devices (sent to the input focus). */
  requestsInputDevices: number;
  /** Requests of category init-resource-ids (sent to every participant, answered by the master). */
  requestsInitResourceIds: number;
  forwardedReplies: number;
  forwardedEvents: number;
  forwardedErrors: number;
  /** Events not forwarded, all reasons (the sum of the three below). */
  droppedEvents: number;
  /** Events dropped because they came from a participant other than the input focus (user input, resource state). */
  droppedEventsNotFocus: number;
  /** Events dropped because they came from a participant other than the master (from other applications, server state). */
  droppedEventsNotMaster: number;
  /** Focus-switch key chords consumed (they switch the focus and are not forwarded). */
  droppedEventsTrigger: number;
  /** Errors from servers that do not answer the request (the master or the focus does). */
  droppedErrors: number;
  /** Replies from servers that do not answer the request (the master or the focus does). */
  droppedReplies: number;
  /** Times a server's connection held more than the limit unsent (the application was paused meanwhile). */
  serverBacklogs: number;
  /** Times the application's connection held more than the limit unsent (the servers were paused meanwhile). */
  appBacklogs: number;
}

/** SessionStats with every count at zero. */
export function emptyStats(): SessionStats {
  return {
    requests: 0,
    requestsDrawOrChange: 0,
    requestsQueryDisplay: 0,
    requestsQueryServer: 0,
    requestsInputDevices: 0,
    requestsInitResourceIds: 0,
    forwardedReplies: 0,
    forwardedEvents: 0,
    forwardedErrors: 0,
    droppedEvents: 0,
    droppedEventsNotFocus: 0,
    droppedEventsNotMaster: 0,
    droppedEventsTrigger: 0,
    droppedErrors: 0,
    droppedReplies: 0,
    serverBacklogs: 0,
    appBacklogs: 0,
  };
}

/** Counts one request of `category` (on the relay's path: comparisons and an increment, no allocation). */
export function countRequest(stats: SessionStats, category: RequestCategory): void {
  stats.requests++;
  if (category === RequestCategory.DrawOrChange) stats.requestsDrawOrChange++;
  else if (category === RequestCategory.QueryDisplay) stats.requestsQueryDisplay++;
  else if (category === RequestCategory.QueryServer) stats.requestsQueryServer++;
  else if (category === RequestCategory.InputDevices) stats.requestsInputDevices++;
  else stats.requestsInitResourceIds++;
}

/** Counts one event the role filter dropped: a consumed focus trigger, or by the rule of its category (see routing.ts). */
export function countDroppedEvent(stats: SessionStats, category: EventCategory, trigger: boolean): void {
  stats.droppedEvents++;
  if (trigger) stats.droppedEventsTrigger++;
  else if (category === EventCategory.UserInteraction || category === EventCategory.ResourceStateChange) stats.droppedEventsNotFocus++;
  else stats.droppedEventsNotMaster++;
}
