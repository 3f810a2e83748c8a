/**
 * Typed errors of @tandem/causal. One convention: a flat class extending Error with a static `name` and
 * the same instance `name`. Recognise them by `err.name` (`isCausalError(err, 'CausalGapError')`), which
 * survives two copies of the package in one install; `instanceof` works too when there is only one copy.
 */

export type CausalErrorName = 'CausalBufferFullError' | 'CausalGapError' | 'CausalProtocolError' | 'CausalClosedError';

/** Identifies one causal message: the `seq`-th direct message or broadcast of member `from`. */
export interface MessageId {
  readonly from: string;
  readonly kind: 'direct' | 'broadcast';
  /**
   * For a broadcast, its number among `from`'s broadcasts (1, 2, …). For a direct message, its number among
   * every direct message `from` sent, to anyone (so the direct messages one member receives from `from` are
   * numbered increasingly, not consecutively).
   */
  readonly seq: number;
}

/** What a held message still waits for: predecessors of one member and one kind that have not been delivered here. */
export interface MissingPredecessor {
  readonly from: string;
  readonly kind: 'direct' | 'broadcast';
  /** The highest `seq` of this kind from `from` delivered here so far (0: none). */
  readonly after: number;
  /**
   * The predecessor that must be delivered first. Broadcasts: every one in (after, upTo] is missing. Direct
   * messages: the one numbered `upTo` (addressed here) is missing, and any of `from`'s earlier ones addressed
   * here (the numbers in between went to other members, or are missing too).
   */
  readonly upTo: number;
  /** True when the message `upTo` has arrived here and is itself held (so the root cause is further back). */
  readonly held: boolean;
}

/** Which buffer is full. `held`: messages received and waiting for predecessors; `unacknowledged`: messages sent, not yet acknowledged by a peer. */
export type CausalBuffer = 'held' | 'unacknowledged';

/**
 * A buffer reached its bound. On receive (`buffer: 'held'`) the offending sender's message was refused —
 * not stored, not acknowledged — and may be offered again later (the group API retransmits it). On send
 * (`buffer: 'unacknowledged'`) the message was not sent and not stamped.
 */
export class CausalBufferFullError extends Error {
  static override readonly name = 'CausalBufferFullError';
  override readonly name = 'CausalBufferFullError';
  readonly buffer: CausalBuffer;
  /** The member whose message was refused (receive), or the peer whose queue is full (send). */
  readonly member: string;
  /** Which bound was hit. */
  readonly limit: 'messages' | 'bytes' | 'perSender';
  /** The bound's value. */
  readonly max: number;
  constructor(buffer: CausalBuffer, member: string, limit: 'messages' | 'bytes' | 'perSender', max: number) {
    const what =
      buffer === 'held'
        ? `refused a message from ${member}: the held-message buffer is full`
        : `cannot send to ${member}: the unacknowledged-message buffer is full`;
    super(`${what} (${limit} limit ${max})`);
    this.buffer = buffer;
    this.member = member;
    this.limit = limit;
    this.max = max;
  }
}

/**
 * A held message has waited `waitedMs` (at least the configured gap deadline) for causal predecessors
 * that have not arrived. Reported once per held message; the message stays held (nothing after a missing
 * predecessor is ever delivered out of order) until the predecessor arrives or it is discarded.
 */
export class CausalGapError extends Error {
  static override readonly name = 'CausalGapError';
  override readonly name = 'CausalGapError';
  /** The member that holds the message. */
  readonly member: string;
  readonly waiting: MessageId;
  readonly missing: readonly MissingPredecessor[];
  /** Env time at which the message arrived and was held. */
  readonly heldSince: number;
  readonly waitedMs: number;
  constructor(member: string, waiting: MessageId, missing: readonly MissingPredecessor[], heldSince: number, waitedMs: number) {
    const what = missing
      .map((m) => {
        const which = m.kind === 'broadcast' && m.upTo > m.after + 1 ? `broadcasts #${m.after + 1}–#${m.upTo}` : `${m.kind} #${m.upTo}`;
        return `${m.from}'s ${which}${m.held ? ' (here, itself held)' : ' (not received)'}`;
      })
      .join(', ');
    super(`${member} has held ${waiting.from}'s ${waiting.kind} #${waiting.seq} for ${waitedMs} ms, waiting for ${what}`);
    this.member = member;
    this.waiting = waiting;
    this.missing = missing;
    this.heldSince = heldSince;
    this.waitedMs = waitedMs;
  }
}

/** Malformed causal metadata or group frame, a message for another member, or a mismatched group. */
export class CausalProtocolError extends Error {
  static override readonly name = 'CausalProtocolError';
  override readonly name = 'CausalProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The group (or delivery core) is closed. */
export class CausalClosedError extends Error {
  static override readonly name = 'CausalClosedError';
  override readonly name = 'CausalClosedError';
  constructor(message = 'the causal group is closed') {
    super(message);
  }
}

/** True when `err` is one of this package's errors (by name), optionally a given one. */
export function isCausalError(err: unknown, name?: CausalErrorName): err is Error {
  if (!(err instanceof Error) && (typeof err !== 'object' || err === null)) return false;
  const n = (err as { name?: unknown }).name;
  const names: readonly string[] = ['CausalBufferFullError', 'CausalGapError', 'CausalProtocolError', 'CausalClosedError'];
  return typeof n === 'string' && (name === undefined ? names.includes(n) : n === name);
}

/** True when `err` is a CausalBufferFullError. */
export const isCausalBufferFullError = (err: unknown): err is CausalBufferFullError => isCausalError(err, 'CausalBufferFullError');
/** True when `err` is a CausalGapError. */
export const isCausalGapError = (err: unknown): err is CausalGapError => isCausalError(err, 'CausalGapError');
/** True when `err` is a CausalProtocolError. */
export const isCausalProtocolError = (err: unknown): err is CausalProtocolError => isCausalError(err, 'CausalProtocolError');
/** True when `err` is a CausalClosedError. */
export const isCausalClosedError = (err: unknown): err is CausalClosedError => isCausalError(err, 'CausalClosedError');
