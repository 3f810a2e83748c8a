import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.js';
import type { FocusTrigger } from './focus-trigger.js';
import type { ApplicationSession } from './session.js';

/** How to reach one participant's X server. */
export interface Upstream {
  readonly name: string;
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
}

/** Counts kept for tests and diagnostics. */
export interface SessionStats {
  requests: number;
  forwardedReplies: number;
  forwardedEvents: number;
  forwardedErrors: number;
  droppedEvents: number;
  droppedErrors: number;
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
    forwardedReplies: 0,
    forwardedEvents: 0,
    forwardedErrors: 0,
    droppedEvents: 0,
    droppedErrors: 0,
    droppedReplies: 0,
    serverBacklogs: 0,
    appBacklogs: 0,
  };
}
