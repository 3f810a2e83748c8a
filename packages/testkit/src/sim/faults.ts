import type { ReplicationConfig } from '@tandem/core';
import type { BrokenVariant } from '@tandem/core/internal';

/**
 * The fault vocabulary of the key-value simulation and the named protocol variants (correct, or
 * deliberately broken to prove the simulator finds bugs).
 *
 * Two families of faults:
 * - the patent's fault model, one fault at a time with full recovery in between (CLASSIC_FAULT_KINDS);
 * - faults that arrive DURING recovery (a kill of a joining backup, a second kill soon after a rejoin, a
 *   kill of the primary right after it dropped its backup, a pause of a primary right after its
 *   takeover) and slow-but-alive replicas (event-loop stalls; plus, per seed, a CPU cost per message —
 *   see LoadProfile), which is what causes false failure alarms in real runs.
 * A double fault that loses state in ANY primary/backup system (the primary killed while the other
 * replica holds no state) is not in the default set: it has its own variant, whose expected outcome is
 * that the replicas say they cannot prove nothing was lost (`blocked`).
 */

export type FaultKind =
  /** The primary process dies at a random instant (before or after replying, before or after a flush). */
  | 'crash-primary'
  /** The primary dies right after handing a message to a client (a reply not yet flushed to the backup). */
  | 'crash-primary-after-reply'
  /** The primary dies right after a reply, and that client's forwards to the backup are lost twice and the
   * third is slow (within ackTimeoutMs): the last moment the forward window is designed to cover. Lost
   * forwards on an open connection are outside the process-crash fast path's assumptions, so here the dead
   * process's resets are lost too: the backup learns of the death by silence (the heartbeat path). */
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
  | 'sever-connections'
  // ---- slow but alive -------------------------------------------------------------------------------
  /** The primary's event loop is blocked (a long synchronous task): short (below the failure-detection
   * time) or long (up to 3× peerFaultyMs); timers and deliveries wait and run late. */
  | 'stall-primary'
  /** The backup's event loop is blocked: its acks come late (short: nobody may call it faulty). */
  | 'stall-backup'
  // ---- faults during recovery (a crashed server restarts told to rejoin as backup, or, half the time,
  //      with role `auto` like `tandem-kv serve`: it must find its serving peer and rejoin) ------------
  /** The backup is killed, restarts, and is killed AGAIN while it joins (before it asks for the copy,
   * after the primary admitted it, or right after it installed the copy); then it restarts for good. */
  | 'crash-backup-while-joining'
  /** A replica (primary or backup) is killed and restarts; right after it rejoined as backup (0–4 ms after
   * it installed the copy) or soon after (0–takeoverMs) a second kill hits the rejoined backup or the
   * primary. Half the time the copy reaches the joiner slowly (10 ms … 0.9 × ackTimeoutMs extra transit). */
  | 'crash-after-rejoin'
  /** The backup stops acknowledging (its event loop stalls, it is paused, or its acks are lost) until the
   * primary declares it faulty and drops it; while the dropped replica re-joins, the primary is killed. */
  | 'crash-primary-after-drop'
  /** The primary is killed; right after the backup took over, the new primary is paused (SIGSTOP) while
   * the restarted old primary (no state yet) waits to join; it resumes later. */
  | 'pause-primary-after-takeover'
  // ---- process crash vs host crash vs a reset from the network (the fast path, docs/PROTOCOL.md) ------
  /** The primary process dies right after a reply: the kernel resets its connections to the backup and to
   * every client, and dials to it are refused. The answered client's event loop is busy for a while
   * (within processCrashTransitMs): its forward comes after the backup saw the reset and the refused dial. */
  | 'crash-primary-process'
  /** The primary process dies, but its resets are lost on the way: nobody sees a reset (dials are
   * refused); the heartbeat detector must take over, as for a host crash. */
  | 'crash-primary-silent'
  /** Every connection of the primary is reset by the network while the primary lives and listens: the
   * backup's dial connects, so no takeover — a second primary would answer beside the first. */
  | 'reset-primary-connections'
  // ---- not in the default set ----------------------------------------------------------------------
  /** LOST STATE: the backup is killed, restarts, and while it is still joining (no state yet) the primary
   * is killed too. Every primary/backup system loses acknowledged data here; the expected outcome is that
   * the replicas report `blocked` (cannot prove nothing was lost) and wait for an operator. */
  | 'crash-primary-while-joining'
  // ---- partitions (the partition scenario, partition-run.ts; partition-faults.ts) --------------------
  /** SPLIT BRAIN without a witness: the primary–backup link is cut (clients still reach both replicas)
   * for several takeover bounds, sometimes with one replica cut off from the witness too; then healed. */
  | 'partition-pair'
  /** The same, but the primary's host (with its co-located client) is cut off from the backup: that client's
   * writes reach the backup neither by flushes nor by forwards. Not drawn by default. */
  | 'partition-hosts'
  /** One or both replicas are cut off from the witness while the pair is healthy: nothing may change. */
  | 'isolate-witness';

/** The patent's fault model: one fault at a time, full recovery in between. */
export const CLASSIC_FAULT_KINDS: readonly FaultKind[] = [
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

/** Slow-but-alive replicas and faults arriving during recovery. */
export const RECOVERY_FAULT_KINDS: readonly FaultKind[] = [
  'stall-primary',
  'stall-backup',
  'crash-backup-while-joining',
  'crash-after-rejoin',
  'crash-primary-after-drop',
  'pause-primary-after-takeover',
];

/** A dead process (resets, refused dials) vs a silent death vs a reset while the process lives. */
export const PROCESS_CRASH_FAULT_KINDS: readonly FaultKind[] = [
  'crash-primary-process',
  'crash-primary-silent',
  'reset-primary-connections',
];

/** What the default ('correct') run draws from: every fault the pair must survive by itself. */
export const DEFAULT_FAULT_KINDS: readonly FaultKind[] = [...CLASSIC_FAULT_KINDS, ...RECOVERY_FAULT_KINDS, ...PROCESS_CRASH_FAULT_KINDS];

/** @deprecated the classic set; kept for callers of the first version. Use DEFAULT_FAULT_KINDS. */
export const ALL_FAULT_KINDS: readonly FaultKind[] = CLASSIC_FAULT_KINDS;

/** The partition scenario's faults (partition-run.ts): links cut and healed, not processes crashed. */
export const PARTITION_FAULT_KINDS: readonly FaultKind[] = ['partition-pair', 'isolate-witness'];

/** Faults that kill the primary while the other replica holds no state: unavoidable loss, own variant only. */
export const LOST_STATE_FAULT_KINDS: readonly FaultKind[] = ['crash-primary-while-joining'];

/**
 * CPU load of a run (drawn per seed when the variant has `load`): each replica may get a CPU cost per
 * message handled and a background of short event-loop stalls (GC-like). Not a fault: it does not reset
 * the liveness clock. Clients cost nothing.
 */
export interface LoadProfile {
  replicas: {
    perMessageMs: number;
    perKiBMs: number;
    /** Background stalls: one of [1, gcMaxMs] every [gcEveryMs/2, gcEveryMs·3/2]; 0 = none. */
    gcEveryMs: number;
    gcMaxMs: number;
  }[];
}

/** A protocol variant for the simulator: its faults, replication settings, piggyback mode, and whether it is expected to fail. */
export interface VariantSpec {
  /** Installed into each replica with `installFaultHooks` from @tandem/core/internal (test-only,
   * deliberately broken behaviour inside @tandem/core; broken variants only). The name must be one
   * @tandem/core knows (BrokenVariant). */
  faultInjection?: { variant: BrokenVariant };
  /** Forces the piggyback mode (otherwise the seed picks one). */
  piggyback?: 'seq-digest' | 'entries';
  /** Replication settings of this variant (a run's own `config` option overrides them). */
  config?: Partial<ReplicationConfig>;
  /** The faults this variant draws from. */
  faults: readonly FaultKind[];
  /** True when the variant is expected to fail (the simulator must find it). */
  broken: boolean;
  /** For broken variants: the failures the bug must produce (kv-run.test.ts checks it within 200 seeds). */
  expect?: RegExp;
  /** The seed draws a CPU load profile (LoadProfile). Default false. */
  load?: boolean;
  /** The faults lose state by design: a run passes only when a replica reports `blocked` (and, once the
   * operator action `promote({acceptLoss: true})` exists, the pair serves again after it). */
  expectBlocked?: boolean;
  /** Old seeds keep their meaning: the first version's generator, draw for draw (no load, no new faults). */
  classic?: boolean;
  description: string;
}

/**
 * A deliberately broken replica: `name` is a @tandem/core `BrokenVariant` (installFaultHooks),
 * `faults` what to draw from (pick the faults that exercise the broken path, so every seed does), `expect`
 * the failures it must cause. Adding a core variant to the simulator is one line in VARIANTS below, e.g.
 *   'no-follower-takeover': brokenVariant('no-follower-takeover', ['crash-primary-after-drop'], /liveness/, '…'),
 * and kv-run.test.ts then checks that the simulator finds it within 200 seeds.
 */
export function brokenVariant(
  name: BrokenVariant,
  faults: readonly FaultKind[],
  expect: RegExp,
  description: string,
  config?: Partial<ReplicationConfig>,
): VariantSpec {
  return { faultInjection: { variant: name }, faults, broken: true, expect, description, ...(config ? { config } : {}) };
}

/** Faults excluded in seq-digest mode: a host crash loses the co-located client's forward — the known,
 * documented limitation of claims 3/8 (its own variant below shows the simulator detects it). */
const SEQ_DIGEST_UNSAFE: readonly FaultKind[] = ['crash-primary-host'];

/** The variants `runKvSimulation` knows, by name: `correct` and deliberately broken ones the checks must catch. */
export const VARIANTS: Readonly<Record<string, VariantSpec>> = {
  correct: {
    faults: DEFAULT_FAULT_KINDS,
    broken: false,
    load: true,
    description:
      'the protocol as designed, both piggyback modes (seq-digest without primary-host crashes); classic faults, faults during recovery, stalls and CPU load',
  },
  'fast-failover': {
    faults: DEFAULT_FAULT_KINDS,
    broken: false,
    load: true,
    config: { fastFailover: true },
    description:
      'the correct protocol with the opt-in process-crash fast path on (fastFailover): every fault of `correct`, the answered client never later than the transit allowance',
  },
  classic: {
    faults: CLASSIC_FAULT_KINDS,
    broken: false,
    classic: true,
    description: 'the first generator (one fault at a time, full recovery, zero CPU time): replays seeds of earlier reports draw for draw',
  },
  'lost-state': {
    faults: LOST_STATE_FAULT_KINDS,
    broken: false,
    expectBlocked: true,
    description:
      'DOUBLE FAULT, unavoidable loss: the primary killed while the restarted backup has no state yet; passes when a replica reports `blocked` (and serves again after the operator promote)',
  },
  'no-forward-wait': brokenVariant(
    'no-forward-wait',
    ['crash-primary-slow-forward'],
    /linearizability|lost entries|convergence/,
    'BROKEN: the backup takes over at heartbeat timeout without waiting for client forwards',
  ),
  'unordered-apply': brokenVariant(
    'unordered-apply',
    ['message-chaos', 'crash-primary-after-reply', 'crash-primary'],
    /linearizability|convergence|divergence/,
    'BROKEN: the backup applies forwarded/flushed entries as they arrive, skipping gaps',
  ),
  'skip-dedup': brokenVariant(
    'skip-dedup',
    ['message-chaos', 'crash-primary', 'sever-connections', 'pause-primary'],
    /exactly-once|linearizability/,
    'BROKEN: the primary applies a retransmitted request again instead of returning the recorded reply',
  ),
  'no-follower-takeover': brokenVariant(
    'no-follower-takeover',
    ['crash-primary-after-drop'],
    /liveness: no replica (served|answered)/,
    'BROKEN: a dropped replica never takes over (nor says it is blocked) when the primary that dropped it dies: the pair stalls (78d7e4e)',
  ),
  'fast-takeover-unconfirmed': brokenVariant(
    'fast-takeover-unconfirmed',
    ['reset-primary-connections'],
    /linearizability|lost entries|acknowledged data|convergence|exactly-once/,
    'BROKEN: the backup takes any reset of its primary connection for a process crash and takes over at once (no refused dial, no grace)',
    { fastFailover: true },
  ),
  'fast-takeover-no-grace': brokenVariant(
    'fast-takeover-no-grace',
    ['crash-primary-process'],
    /linearizability|lost entries|acknowledged data|convergence/,
    'BROKEN: after the reset and the refused dial the backup takes over at once, without waiting for the forwards of the last replies',
    { fastFailover: true },
  ),
  'seq-digest-host-crash': {
    piggyback: 'seq-digest',
    faults: ['crash-primary-host'],
    broken: true,
    expect: /linearizability|lost entries/,
    classic: true,
    description: "KNOWN LIMITATION: seq-digest piggyback under a primary-host crash (the co-located client's forward dies with it)",
  },
};

/**
 * The fault kinds a run of `variant` draws from: without those unsafe in seq-digest piggyback mode unless the variant is broken or uses
 * entries.
 */
export function faultsFor(variant: VariantSpec, piggyback: 'seq-digest' | 'entries'): readonly FaultKind[] {
  if (variant.broken || piggyback === 'entries') return variant.faults;
  return variant.faults.filter((f) => !SEQ_DIGEST_UNSAFE.includes(f));
}
