import type { BrokenVariant } from '@tandem/core';

/**
 * The fault vocabulary of the key-value simulation — the patent's fault model, one fault at a time —
 * and the named protocol variants (correct, or deliberately broken to prove the simulator finds bugs).
 */

export type FaultKind =
  /** The primary process dies at a random instant (before or after replying, before or after a flush). */
  | 'crash-primary'
  /** The primary dies right after handing a message to a client (a reply not yet flushed to the backup). */
  | 'crash-primary-after-reply'
  /** The primary dies right after a reply, and that client's forwards to the backup are lost twice and the
   * third is slow (within ackTimeoutMs): the last moment the forward window is designed to cover. */
  | 'crash-primary-slow-forward'
  /** The primary's machine dies: the primary and its co-located client together, silently. */
  | 'crash-primary-host'
  | 'crash-backup'
  /** A client process dies (its in-flight call has an unknown outcome); it restarts as a new client. */
  | 'crash-client'
  /** The primary stops (SIGSTOP / GC) — long enough for a takeover or not — and resumes later. */
  | 'pause-primary'
  | 'pause-backup'
  | 'pause-client'
  /** A window of message loss, duplication, reordering and delay spikes on every connection. */
  | 'message-chaos'
  /** Every open connection is reset at once. */
  | 'sever-connections';

export const ALL_FAULT_KINDS: readonly FaultKind[] = [
  'crash-primary',
  'crash-primary-after-reply',
  'crash-primary-slow-forward',
  'crash-primary-host',
  'crash-backup',
  'crash-client',
  'pause-primary',
  'pause-backup',
  'pause-client',
  'message-chaos',
  'sever-connections',
];


export interface VariantSpec {
  /** Passed to createReplica as `faultInjection` (test-only, deliberately broken behaviour inside
   * @tandem/core; broken variants only). */
  faultInjection?: { variant: BrokenVariant };
  /** Forces the piggyback mode (otherwise the seed picks one). */
  piggyback?: 'seq-digest' | 'entries';
  /** The faults this variant draws from. */
  faults: readonly FaultKind[];
  /** True when the variant is expected to fail (the simulator must find it). */
  broken: boolean;
  description: string;
}

/** Faults excluded in seq-digest mode: a host crash loses the co-located client's forward — the known,
 * documented limitation of claims 3/8 (its own variant below shows the simulator detects it). */
const SEQ_DIGEST_SAFE: readonly FaultKind[] = ALL_FAULT_KINDS.filter((f) => f !== 'crash-primary-host');

export const VARIANTS: Readonly<Record<string, VariantSpec>> = {
  correct: {
    faults: ALL_FAULT_KINDS,
    broken: false,
    description: 'the protocol as designed, both piggyback modes (seq-digest without primary-host crashes)',
  },
  'no-forward-wait': {
    faultInjection: { variant: 'no-forward-wait' },
    faults: ['crash-primary-slow-forward'],
    broken: true,
    description: 'BROKEN: the backup takes over at heartbeat timeout without waiting for client forwards',
  },
  'unordered-apply': {
    faultInjection: { variant: 'unordered-apply' },
    faults: ['message-chaos', 'crash-primary-after-reply', 'crash-primary'],
    broken: true,
    description: 'BROKEN: the backup applies forwarded/flushed entries as they arrive, skipping gaps',
  },
  'skip-dedup': {
    faultInjection: { variant: 'skip-dedup' },
    faults: ['message-chaos', 'crash-primary', 'sever-connections', 'pause-primary'],
    broken: true,
    description: 'BROKEN: the primary applies a retransmitted request again instead of returning the recorded reply',
  },
  'seq-digest-host-crash': {
    piggyback: 'seq-digest',
    faults: ['crash-primary-host'],
    broken: true,
    description: 'KNOWN LIMITATION: seq-digest piggyback under a primary-host crash (the co-located client\'s forward dies with it)',
  },
};

export function faultsFor(variant: VariantSpec, piggyback: 'seq-digest' | 'entries'): readonly FaultKind[] {
  if (variant.broken || piggyback === 'entries') return variant.faults;
  return variant.faults.filter((f) => SEQ_DIGEST_SAFE.includes(f));
}
