/**
 * The delivery state of one causal-delivery member (CausalDelivery.snapshot()), and the check a state
 * passes before a member restores it.
 */
import { CausalProtocolError } from './errors.js';
import type { InTransitEntry } from './stamp.js';

/** The delivery state of one member, as snapshot() returns it (JSON-safe). */
export interface CausalState {
  readonly members: readonly string[];
  readonly self: string;
  readonly direct: readonly number[];
  readonly broadcast: readonly number[];
  readonly inTransit: readonly InTransitEntry[];
  readonly knownDelivered: readonly { readonly member: number; readonly direct: readonly number[] }[];
  readonly lastDirect: readonly number[];
}

/**
 * Throws CausalProtocolError unless `state` is well-formed and belongs to member `self` (at index `me`)
 * of `members`.
 */
export function checkCausalState(state: CausalState, self: string, members: readonly string[], me: number): void {
  const fail = (why: string): never => {
    throw new CausalProtocolError(`cannot restore causal state: ${why}`);
  };
  const n = members.length;
  if (state.self !== self) fail(`it is ${String(state.self)}'s, not ${self}'s`);
  if (!Array.isArray(state.members) || state.members.length !== n || state.members.some((m, i) => m !== members[i])) {
    fail('a different member list');
  }
  const counts = (v: unknown): v is number[] => Array.isArray(v) && v.length === n && v.every((x) => Number.isSafeInteger(x) && x >= 0);
  if (!counts(state.direct) || !counts(state.broadcast) || !counts(state.lastDirect)) fail(`vectors of ${n} counts expected`);
  if (!Array.isArray(state.inTransit) || !Array.isArray(state.knownDelivered)) fail('malformed in-transit or known-delivered lists');
  for (const e of state.inTransit) {
    if (!Number.isInteger(e?.to) || e.to < 0 || e.to >= n || e.to === me || !counts(e.latest)) fail('malformed in-transit entry');
  }
  for (const d of state.knownDelivered) {
    if (!Number.isInteger(d?.member) || d.member < 0 || d.member >= n || !counts(d.direct)) fail('malformed known-delivered entry');
  }
}
