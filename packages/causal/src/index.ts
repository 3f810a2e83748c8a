/**
 * @tandem/causal — causal delivery for a fixed group of processes: vector clocks, causally ordered point-to-
 * point messages (Schiper–Eggli–Sandoz) and group multicast (CBCAST), a bounded delivery queue that reports
 * gaps, and a small group API over any transport.
 *
 * @packageDocumentation
 */
export { VectorClock, type ClockOrder } from './vector-clock.js';
export {
  CausalDelivery,
  DEFAULT_GAP_TIMEOUT_MS,
  DEFAULT_MAX_HELD_BYTES,
  DEFAULT_MAX_HELD_MESSAGES,
  type CausalDeliveryOptions,
  type CausalDeliveryStats,
  type CausalLimits,
  type CausalState,
  type Delivery,
  type HeldReport,
  type ReceiveOutcome,
} from './delivery.js';
export { BROADCAST, checkStamp, stampSeq, type CausalMessage, type CausalStamp, type InTransitEntry } from './stamp.js';
export { decodeCausalMessage, decodeStamp, encodeCausalMessage, encodeStamp, stampSize } from './codec.js';
export { systemEnv, type CausalEnv, type CausalTimer } from './env.js';
export {
  CausalBufferFullError,
  CausalClosedError,
  CausalGapError,
  CausalProtocolError,
  isCausalBufferFullError,
  isCausalClosedError,
  isCausalError,
  isCausalGapError,
  isCausalProtocolError,
  type CausalBuffer,
  type CausalErrorName,
  type MessageId,
  type MissingPredecessor,
} from './errors.js';
export {
  createCausalGroup,
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_MAX_BACKOFF_MS,
  DEFAULT_MAX_UNACKED_BYTES,
  DEFAULT_MAX_UNACKED_MESSAGES,
  DEFAULT_REDIAL_MS,
  DEFAULT_RETRANSMIT_MS,
  type CausalGroup,
  type CausalGroupOptions,
  type CausalGroupStats,
} from './group.js';
export type { LinkStats } from './link.js';
