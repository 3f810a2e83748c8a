/**
 * The causal metadata a message carries (its "stamp"). Members are indices into the group's member list.
 *
 *  - `direct`: the sender's direct-send vector at the send — entry k = how many direct messages member k
 *    had sent in the causal past of this send (for a direct message, including itself).
 *  - `broadcast`: the sender's CBCAST vector VT — entry k = how many of k's broadcasts are in the causal
 *    past (for a broadcast, including itself).
 *  - `inTransit`: Schiper–Eggli–Sandoz's set of (destination, vector) pairs — direct messages in the
 *    causal past that the sender does not know to be delivered. `latest[k]` = the number (as in `direct`)
 *    of the latest such message from k to `to` (0: none). A receiver delivers a message only once every
 *    message named for it in `inTransit` has been delivered.
 */
import { CausalProtocolError } from './errors.js';

/** The `to` of a broadcast stamp (no single destination). */
export const BROADCAST = -1;

/** One row of a stamp's in-transit set: the latest direct messages to one destination not known delivered. */
export interface InTransitEntry {
  /** Destination member index. */
  readonly to: number;
  /** Dense, one entry per member: number of the latest direct message from k to `to` not known delivered, or 0. */
  readonly latest: readonly number[];
}

/** The causal metadata carried by a message: sender, destination, direct and broadcast vectors, in-transit entries. */
export interface CausalStamp {
  readonly kind: 'direct' | 'broadcast';
  /** Sender's member index. */
  readonly from: number;
  /** Destination's member index (direct), or BROADCAST. */
  readonly to: number;
  readonly direct: readonly number[];
  readonly broadcast: readonly number[];
  readonly inTransit: readonly InTransitEntry[];
}

/** A payload with its stamp: what goes on the wire (see `encodeCausalMessage`) or rides inside another message. */
export interface CausalMessage<P> {
  readonly stamp: CausalStamp;
  readonly payload: P;
}

/** The message's sequence number: its entry in `direct` or `broadcast` for its sender. */
export function stampSeq(stamp: CausalStamp): number {
  return (stamp.kind === 'direct' ? stamp.direct : stamp.broadcast)[stamp.from]!;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Checks that a stamp is well formed for a group of `size` members; throws CausalProtocolError. (A
 * malformed stamp from a decoder or a hand-built object never reaches the delivery state.)
 */
export function checkStamp(stamp: CausalStamp, size: number): void {
  const fail = (why: string): never => {
    throw new CausalProtocolError(`malformed causal stamp: ${why}`);
  };
  if (stamp === null || typeof stamp !== 'object') fail('not an object');
  if (stamp.kind !== 'direct' && stamp.kind !== 'broadcast') fail(`unknown kind ${String(stamp.kind)}`);
  const member = (i: unknown): boolean => Number.isInteger(i) && (i as number) >= 0 && (i as number) < size;
  if (!member(stamp.from)) fail(`sender index ${String(stamp.from)} is not a member of a group of ${size}`);
  if (stamp.kind === 'direct') {
    if (!member(stamp.to)) fail(`destination index ${String(stamp.to)} is not a member of a group of ${size}`);
    if (stamp.to === stamp.from) fail('a direct message to its own sender');
  } else if (stamp.to !== BROADCAST) fail('a broadcast with a destination');
  for (const [name, vector] of [
    ['direct', stamp.direct],
    ['broadcast', stamp.broadcast],
  ] as const) {
    if (!Array.isArray(vector) || vector.length !== size) fail(`${name} vector is not ${size} entries long`);
    if (!vector.every(isCount)) fail(`${name} vector has an entry that is not a non-negative safe integer`);
  }
  if (stampSeq(stamp) < 1) fail(`the sender's own ${stamp.kind} entry is 0`);
  if (!Array.isArray(stamp.inTransit) || stamp.inTransit.length > size) fail('inTransit is not a list of at most one entry per member');
  const seen = new Set<number>();
  for (const entry of stamp.inTransit) {
    if (entry === null || typeof entry !== 'object' || !member(entry.to)) fail('inTransit names a destination outside the group');
    if (seen.has(entry.to)) fail(`inTransit names destination ${entry.to} twice`);
    seen.add(entry.to);
    if (entry.to === stamp.from) fail('inTransit names the sender as a destination');
    if (!Array.isArray(entry.latest) || entry.latest.length !== size || !entry.latest.every(isCount))
      fail(`inTransit entry for ${entry.to} is not ${size} counts`);
    for (let k = 0; k < size; k++) {
      if (entry.latest[k]! > stamp.direct[k]!) fail(`inTransit names a direct message of member ${k} beyond the stamp's own direct vector`);
    }
  }
}
