/**
 * Replication configuration: a zod schema with defaults, cross-field checks, and the timing bounds
 * derived from it (docs/PROTOCOL.md, "Timing bounds").
 */
import { z } from 'zod';
import type { ReplicationConfig, TimingBounds } from './api.js';
import { ConfigError } from './errors.js';

const positiveInt = z.number().int().positive();
const ms = z.number().finite().positive();

/** The zod schema of ReplicationConfig, with every default (strict: an unknown field is an error). */
export const replicationConfigSchema = z
  .object({
    piggyback: z.enum(['seq-digest', 'entries']).default('entries'),
    replyMode: z.enum(['async', 'sync']).default('async'),
    flushMaxEntries: positiveInt.default(16),
    flushIntervalMs: ms.default(20),
    heartbeatTimeoutMs: ms.default(150),
    ackTimeoutMs: ms.default(50),
    maxRetransmits: z.number().int().min(0).max(100).default(2),
    requestTimeoutMs: ms.default(100),
    callDeadlineMs: ms.default(10_000),
    forwardDelayMs: z.number().finite().min(0).default(5),
    fastFailover: z.boolean().default(false),
    processCrashTransitMs: z.number().finite().min(0).default(20),
    maxPendingForwards: positiveInt.default(1024),
    maxUnackedEntries: positiveInt.default(10_000),
    dedupWindow: positiveInt.default(100_000),
    dedupMaxBytes: positiveInt.default(4 * 1024 * 1024),
    maxMessageSize: positiveInt.default(16 * 1024 * 1024),
  })
  .strict();

/** The replication settings with every default filled in. */
export const DEFAULT_REPLICATION_CONFIG: Readonly<ReplicationConfig> = Object.freeze(replicationConfigSchema.parse({}));

/**
 * Validate a partial config and fill in defaults. Throws ConfigError listing every bad field
 * (unknown keys, wrong types, out-of-range values, inconsistent combinations).
 */
export function resolveConfig(partial: Partial<ReplicationConfig> = {}): ReplicationConfig {
  const parsed = replicationConfigSchema.safeParse(partial ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        path:
          i.path.length > 0
            ? i.path.join('.')
            : i.code === 'unrecognized_keys'
              ? ((i as { keys?: string[] }).keys?.join(', ') ?? '(root)')
              : '(root)',
        message: i.message,
      })),
    );
  }
  const c = parsed.data;
  const issues: { path: string; message: string }[] = [];
  if (c.heartbeatTimeoutMs < 2 * c.flushIntervalMs) {
    issues.push({
      path: 'heartbeatTimeoutMs',
      message: `must be at least 2 × flushIntervalMs (${2 * c.flushIntervalMs}) so one lost heartbeat is not a failure`,
    });
  }
  if (c.callDeadlineMs < c.requestTimeoutMs) {
    issues.push({ path: 'callDeadlineMs', message: `must be at least requestTimeoutMs (${c.requestTimeoutMs})` });
  }
  if (c.flushMaxEntries > c.maxUnackedEntries) {
    issues.push({ path: 'flushMaxEntries', message: `must not exceed maxUnackedEntries (${c.maxUnackedEntries})` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return c;
}

/** TimingBounds plus the derived lease and peer-failure detection time. */
export interface DerivedTimingBounds extends TimingBounds {
  /** How long a flush acknowledged by the backup lets the primary keep answering (< takeoverMs). */
  leaseMs: number;
  /** Time without any acknowledgement after which the primary declares its backup faulty (and its
   * re-sends made meanwhile): takeoverMs — declaring it sooner would not let the primary serve alone any
   * sooner (it must wait takeoverMs after the last acknowledged flush anyway), and would turn a busy,
   * live backup into a dropped one. */
  peerFaultyMs: number;
  /** How long a dial of the peer (and the status question on it) may take before it counts as failed. */
  dialTimeoutMs: number;
  /** How long the backup waits for its primary's statusReply before taking over (a live primary answers). */
  takeoverProbeMs: number;
  /** How long a primary waits for a joiner's first ack (sent once it installed the state copy). */
  joinTimeoutMs: number;
  /** Process crash (the primary's connection reset or closed AND a dial finds nothing listening at its
   * address): the backup waits this long after the refused dial, then takes over (docs/PROTOCOL.md,
   * "Fast path for a dead process"). 0 when `fastFailover` is off. */
  processCrashGraceMs: number;
  /** Process crash: from the kernel resetting the dead primary's sockets (its teardown before that is not
   * counted) to a client's first successful reply (the reset reaching
   * the backup and the clients, the refused dial, the grace, the held request answered). Equals
   * worstCaseFailoverMs when `fastFailover` is off; a host crash (silence, no reset) keeps
   * worstCaseFailoverMs. */
  processCrashFailoverMs: number;
}

/**
 * The bounds implied by a configuration (all in ms, network transit assumed to fit in ackTimeoutMs):
 * - forwardWindowMs = forwardDelayMs + (maxRetransmits + 1) × ackTimeoutMs — a client that received a
 *   reply sends its forward within forwardDelayMs and re-sends it up to maxRetransmits times, each after
 *   ackTimeoutMs; the last copy arrives within one more ackTimeoutMs.
 * - takeoverMs = heartbeatTimeoutMs + forwardWindowMs + takeoverProbeMs — silence detection, the forward
 *   window, then a status probe of the primary (takeoverProbeMs = ackTimeoutMs): a primary that answers
 *   is alive and the backup re-joins instead; a crashed one refuses at once, a paused one stays silent.
 * - worstCaseFailoverMs = takeoverMs + requestTimeoutMs — a waiting client re-sends to both servers
 *   every requestTimeoutMs, so its next attempt after the takeover reaches the new primary.
 * - leaseMs = 0.9 × heartbeatTimeoutMs — a primary answers only within leaseMs of sending a flush the
 *   backup acknowledged; the backup cannot take over before heartbeatTimeoutMs + forwardWindowMs after
 *   receiving that flush, so a paused primary's lease has expired before a takeover (10% slack for
 *   clock-rate differences).
 * - joinTimeoutMs = max(10 × takeoverMs, 2000) — a joiner's ack clock starts when it has installed the
 *   state copy (its first ack); this bounds the wait for that first ack.
 * - peerFaultyMs = takeoverMs — the backup is faulty after that long without any acknowledgement (and at
 *   least maxRetransmits re-sends actually made, so a primary that was itself paused does not count its
 *   pause against the backup). A shorter bound gains nothing: a primary that drops its backup must not
 *   serve alone before takeoverMs after the last acknowledged flush (the backup could still take over).
 * - dialTimeoutMs = (maxRetransmits + 1) × ackTimeoutMs — a dial or status question that takes longer failed.
 * - processCrashGraceMs = forwardDelayMs + processCrashTransitMs — after the primary's connection was
 *   reset or closed and a dial found nothing listening at its address (the process is dead: it sends
 *   nothing more), every reply it ever sent reached its client and that client's forward reached the
 *   backup within this long: the reply's transit, the client's forward batching, the client's scheduling
 *   lateness and the forward's transit fit in processCrashTransitMs beyond forwardDelayMs.
 * - processCrashFailoverMs = processCrashGraceMs + processCrashTransitMs — plus the reset reaching the
 *   backup, its refused dial, and the held request's reply (a client that saw the reset re-sends its
 *   calls to the backup at once; the backup holds them until it serves).
 */
export function computeTimingBounds(config: Partial<ReplicationConfig> = {}): DerivedTimingBounds {
  const c = resolveConfig(config);
  const forwardWindowMs = c.forwardDelayMs + (c.maxRetransmits + 1) * c.ackTimeoutMs;
  const takeoverProbeMs = c.ackTimeoutMs;
  const takeoverMs = c.heartbeatTimeoutMs + forwardWindowMs + takeoverProbeMs;
  return {
    forwardWindowMs,
    takeoverMs,
    worstCaseFailoverMs: takeoverMs + c.requestTimeoutMs,
    leaseMs: 0.9 * c.heartbeatTimeoutMs,
    peerFaultyMs: takeoverMs,
    dialTimeoutMs: (c.maxRetransmits + 1) * c.ackTimeoutMs,
    takeoverProbeMs,
    joinTimeoutMs: Math.max(10 * takeoverMs, 2000),
    processCrashGraceMs: c.fastFailover ? c.forwardDelayMs + c.processCrashTransitMs : 0,
    processCrashFailoverMs: c.fastFailover ? c.forwardDelayMs + 2 * c.processCrashTransitMs : takeoverMs + c.requestTimeoutMs,
  };
}

/** The failover bounds with a witness (docs/PARTITIONS.md); the witness's own round trips count as transit. */
export interface WitnessTimingBounds {
  /** How long a grant outlives its holder's silence (the witness's lease). */
  witnessLeaseMs: number;
  /** The pair was healthy (nobody held the grant): the usual worst case, plus one witness round trip. */
  worstCaseFailoverMs: number;
  /** The replica that died served alone and held the grant: the peer is granted only after its lease
   * expired, asking again each takeoverMs — takeoverMs + lease + takeoverMs + requestTimeoutMs. */
  worstCaseFailoverAfterSoloMs: number;
}

/** The failover bounds of a pair with a witness whose lease is `witnessLeaseMs`. */
export function computeWitnessBounds(config: Partial<ReplicationConfig>, witnessLeaseMs: number): WitnessTimingBounds {
  const c = resolveConfig(config);
  const b = computeTimingBounds(c);
  return {
    witnessLeaseMs,
    worstCaseFailoverMs: b.worstCaseFailoverMs,
    worstCaseFailoverAfterSoloMs: b.takeoverMs + witnessLeaseMs + b.takeoverMs + c.requestTimeoutMs,
  };
}
