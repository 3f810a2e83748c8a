/**
 * The operator's part of a replica's status (ReplicaStatus, statusReply.detail): backup lag, connections,
 * uptime, version, and the timing bounds in force. Read on demand; nothing here is on the request path.
 */
import type { StatusBounds } from './api.js';
import { computeWitnessBounds } from './config.js';
import type { ReplicaContext } from './replica-context.js';
import { coreVersion } from './version.js';

/** What `status()` and an admin statusReply add to role, epoch and seq. */
export interface StatusDetail {
  unackedEntries: number;
  backupLag?: { seq: number; ms: number };
  clientsConnected: number;
  dedupEntries: number;
  uptimeMs: number;
  version: string;
  divergences: number;
  bounds: StatusBounds;
}

/** The bounds in force: the configuration's, plus the after-solo bound when the witness reports its lease. */
export function statusBounds(ctx: ReplicaContext): StatusBounds {
  const b = ctx.bounds;
  const bounds: StatusBounds = {
    takeoverMs: b.takeoverMs,
    worstCaseFailoverMs: b.worstCaseFailoverMs,
    processCrashFailoverMs: b.processCrashFailoverMs,
    forwardWindowMs: b.forwardWindowMs,
  };
  const leaseMs = ctx.opts.witness?.leaseMs;
  if (leaseMs !== undefined && Number.isFinite(leaseMs) && leaseMs >= 0)
    bounds.worstCaseFailoverAfterSoloMs = computeWitnessBounds(ctx.cfg, leaseMs).worstCaseFailoverAfterSoloMs;
  return bounds;
}

/** The operator's status fields of a replica now (cheap: no state copy, no digest). */
export function statusDetail(ctx: ReplicaContext): StatusDetail {
  const log = ctx.roles.primary.tracker.log;
  const d: StatusDetail = {
    unackedEntries: log.size,
    clientsConnected: ctx.connections.client,
    dedupEntries: ctx.runner.dedup.size,
    uptimeMs: ctx.listener === undefined ? 0 : Math.max(0, ctx.env.now() - ctx.startedAt),
    version: coreVersion(),
    divergences: ctx.divergences,
    bounds: statusBounds(ctx),
  };
  if (ctx.role === 'primary') {
    const oldest = log.first;
    d.backupLag = {
      seq: Math.max(0, ctx.runner.appliedSeq - ctx.roles.primary.tracker.ackedSeq),
      ms: oldest === undefined ? 0 : Math.max(0, ctx.env.wallClock() - oldest.time),
    };
  }
  return d;
}
