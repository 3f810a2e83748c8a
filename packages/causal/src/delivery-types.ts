/**
 * The causal-delivery core's options, results and reports (delivery.ts), and its default bounds.
 */
import type { CausalEnv } from './env.js';
import type { CausalBufferFullError, CausalGapError, MessageId, MissingPredecessor } from './errors.js';
import type { CausalState } from './delivery-state.js';
import type { CausalStamp } from './stamp.js';

/** Default for `gapTimeoutMs`: a message held this long for its predecessors is reported as a CausalGapError (10 s). */
export const DEFAULT_GAP_TIMEOUT_MS = 10_000;
/** Default for `maxHeldMessages`: 10 000 held messages at once. */
export const DEFAULT_MAX_HELD_MESSAGES = 10_000;
/** Default for `maxHeldBytes`: 64 MiB held at once. */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/** Bounds of the held-message buffer. */
export interface CausalLimits {
  /** Most messages held (received, waiting for predecessors) at once. Default DEFAULT_MAX_HELD_MESSAGES. */
  maxHeldMessages?: number;
  /** Most bytes held at once (payload size by `sizeOf` plus the stamp's in-memory size). Default DEFAULT_MAX_HELD_BYTES. */
  maxHeldBytes?: number;
  /** Most messages held from any one sender. Default: maxHeldMessages (no per-sender bound). */
  maxHeldPerSender?: number;
}

/** A message handed to the application in causal order: its id, sender, kind, payload and stamp. */
export interface Delivery<P> {
  readonly id: MessageId;
  readonly from: string;
  readonly kind: 'direct' | 'broadcast';
  readonly payload: P;
  readonly stamp: CausalStamp;
}

export interface CausalDeliveryOptions<P> extends CausalLimits {
  /** This member's id; must be in `members`. */
  self: string;
  /** The group, in the same order at every member (membership is static). */
  members: readonly string[];
  env: CausalEnv;
  /** Called once per message, in causal order, with the delivery state already updated (so sends made here depend on it). */
  deliver: (delivery: Delivery<P>) => void;
  /** Called once per message held longer than `gapTimeoutMs`. */
  onGap?: (gap: CausalGapError) => void;
  /** How long a message may wait for its predecessors before a CausalGapError is reported. Default DEFAULT_GAP_TIMEOUT_MS. */
  gapTimeoutMs?: number;
  /** Start from a snapshot() of this member's state (a backup taking over, a restarted replica). */
  state?: CausalState;
  /** Payload size in bytes for the held-bytes bound. Default: byteLength of a Uint8Array, 2 × length of a string, else 0. */
  sizeOf?: (payload: P) => number;
}

/**
 * What became of a received message: delivered at once (possibly with held messages after it), held for
 * predecessors, dropped as a duplicate (already delivered or already held), or refused because the held
 * buffer is full (`error`; it was not stored and may be offered again).
 */
export interface ReceiveOutcome {
  readonly status: 'delivered' | 'held' | 'duplicate' | 'refused';
  readonly id: MessageId;
  /** Messages delivered by this call (this one and held ones it released). */
  readonly delivered: number;
  readonly error?: CausalBufferFullError;
}

/** A held message and what it waits for. */
export interface HeldReport {
  readonly id: MessageId;
  readonly heldSince: number;
  readonly missing: readonly MissingPredecessor[];
}

/** Counters of a CausalDelivery: delivered, held (messages and bytes), duplicates, refused, gaps. */
export interface CausalDeliveryStats {
  delivered: number;
  held: number;
  heldBytes: number;
  duplicates: number;
  refused: number;
  gaps: number;
  /** Largest number of messages ever held at once. */
  maxHeldSeen: number;
}
