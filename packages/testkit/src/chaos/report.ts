/**
 * The chaos report: what a run recorded, judged (stalls, false alarms, takeovers, the workload's verdict)
 * into one JSON object, and its human summary.
 */
import {
  classifyAlarms,
  findOutages,
  firstReplyAfter,
  summarize,
  type ClassifiedAlarm,
  type FaultSpan,
  type LatencySummary,
  type SuccessRecord,
} from './analysis.js';
import { compactEvent } from './process.js';
import type { TimedEvent, WorkloadVerdict } from './types.js';

/** Which faults the nemesis injects: SIGKILL, SIGSTOP/SIGCONT, or both. */
export type NemesisMode = 'kill' | 'stop' | 'mixed';
/** How a run ended: all actions done, an outage past the bound, redundancy not restored, interrupted, or an error. */
export type RunEnd = 'completed' | 'outage' | 'redundancy' | 'interrupted' | 'error';

/** The nemesis' rule, printed with every report: never fault a replica while the other holds no state. */
export const CHAOS_RULE =
  'never kill or pause a replica while the other one holds no state (has not become backup since its restart or resume): with the primary gone and the other replica empty, acknowledged writes are lost in any primary/backup system';

/** One nemesis action: its target replica and fault, the roles when it struck, and what followed (restart, recovery, takeover). */
export interface ActionRecord {
  n: number;
  at: number;
  fault: 'kill' | 'stop';
  node: string;
  pid: number | undefined;
  generation: number;
  /** What the target was: the serving replica ('primary') or the other one ('backup'). */
  target: 'primary' | 'backup';
  role: string | null;
  epoch: number | null;
  peer: { node: string; role: string | null; heldStateForMs: number | null };
  /** ms the nemesis waited for the target to become eligible, then the random delay. */
  waitedMs: number;
  delayMs: number;
  /** stop: when SIGCONT was sent; kill: when the replacement was spawned, and how. */
  endedAt?: number;
  restart?: 'serve' | 'rejoin';
  /** ms from the signal to the first successful reply the faulted replica cannot have given. */
  recoveryMs?: number | null;
  /** A fault of the primary: the replica that took over (its `takeover` event), null if none did. */
  takenOverBy?: string | null;
}

/** A stretch without successful replies longer than the bound: its span, the actions and events around it. */
export interface StallRecord {
  from: number;
  to: number;
  ms: number;
  /** The run ended on this outage. */
  aborted?: boolean;
  /** Nemesis actions shortly before and during it. */
  actions: number[];
  /** The likely start of it, when the record shows one (e.g. a primary faulted right after it dropped its backup). */
  cause?: string;
  /** Role changes, takeovers, alarms… during it. */
  events: Record<string, unknown>[];
  /** Each replica's last status (IPC) and events, when the run ended early. */
  replicas?: Record<string, unknown>[];
}

/** The timing bounds a run was judged against, and where they came from. */
export interface ChaosBoundsReport {
  worstCaseFailoverMs: number;
  rejoinBoundMs: number;
  rejoinBoundFrom: 'bounds.rejoinMs' | 'bounds.joinTimeoutMs';
  stallBoundMs: number;
  detectionWindowMs: number;
  pauseMs: number;
}

/** The report of a chaos run: ok or why not, lost and duplicated writes, linearizability, stalls, false alarms, takeover times. */
export interface ChaosReport {
  target: string;
  ok: boolean;
  /** Why not ok, one line each. */
  failures: string[];
  lost: number | null;
  duplicated: number | null;
  linearizable: boolean | null;
  stalls: number;
  longestOutageMs: number;
  falseAlarms: number;
  /** Every `peer-faulty` during the load (false alarms and the ones a nemesis fault explains). */
  peerFaultyEvents: number;
  takeoverMs: LatencySummary;
  /** Faults of the primary not followed by a successful reply within worstCaseFailoverMs (informational). */
  slowTakeovers: number;
  kills: number;
  stops: number;
  ops: number;
  acked: number;
  failedOps: number;
  restarts: { serve: number; rejoin: number };
  /** The pair did not get back to primary + backup within redundancyTimeoutMs. */
  redundancyLost: number;
  /** Replicas that exited by themselves. */
  unexpectedExits: number;
  divergences: number;
  lostEntryEvents: number;
  /** Times the nemesis wanted the primary but THE RULE held it back. */
  ruleDeferrals: number;
  rule: string;
  ended: RunEnd;
  error?: string;
  seed: number;
  nemesis: NemesisMode;
  clients: number;
  actionsPlanned: number;
  durationMs: number;
  bounds: ChaosBoundsReport;
  stallRecords: StallRecord[];
  falseAlarmRecords: ClassifiedAlarm[];
  /** When the lost writes had been acknowledged (if the workload says), with the actions around. */
  lostWindows?: {
    from: number;
    to: number;
    count: number;
    /** The likely cause: the first fault of the primary after these writes, and what it came right after. */
    cause?: string;
    actions: { n: number; at: number; fault: string; node: string; target: string; peerRole: string | null }[];
  }[];
  verification: (Omit<WorkloadVerdict, 'lost' | 'duplicated' | 'linearizable' | 'lostAt'> & { servingNode?: string }) | { error: string };
  redundancyRecords?: Record<string, unknown>[];
  unexpectedExitRecords?: Record<string, unknown>[];
  actions?: ActionRecord[];
}

/** Everything a run recorded (run clock, ms). */
export interface RunRecord {
  target: string;
  seed: number;
  nemesis: NemesisMode;
  clients: number;
  actionsPlanned: number;
  verbose: boolean;
  ended: RunEnd;
  error?: string | undefined;
  bounds: ChaosBoundsReport | undefined;
  loadStartedAt: number | undefined;
  loadStoppedAt: number;
  successes: readonly SuccessRecord[];
  okCount: number;
  failCount: number;
  events: readonly TimedEvent[];
  actions: ActionRecord[];
  faults: readonly FaultSpan[];
  restarts: { serve: number; rejoin: number };
  ruleDeferrals: number;
  redundancyRecords: { why: string; [k: string]: unknown }[];
  unexpectedExits: Record<string, unknown>[];
  /** The outage the run ended on (its start = the last successful reply). */
  abortedAt?: { from: number; to: number } | undefined;
  /** Each replica's last status and events when the run ended early. */
  endSnapshot?: Record<string, unknown>[] | undefined;
  verdict: WorkloadVerdict | undefined;
  verifyError: string | undefined;
  servingNode: string | undefined;
}

const NOTABLE = new Set(['role', 'takeover', 'step-down', 'peer-faulty', 'peer-joined', 'divergence', 'lost-entries']);
const other = (node: string): string => (node === 'a' ? 'b' : 'a');

/** Judge a run's record against its bounds and build its report. */
export function buildReport(rec: RunRecord): ChaosReport {
  const b = rec.bounds;
  const start = rec.loadStartedAt ?? 0;
  const end = rec.loadStoppedAt;
  const stallBound = b ? b.stallBoundMs : Infinity;
  const { outages, longestMs } =
    rec.loadStartedAt !== undefined
      ? findOutages(
          rec.successes.map((s) => s.return),
          start,
          end,
          stallBound,
        )
      : { outages: [], longestMs: 0 };

  // False alarms: every peer-faulty during the load against the nemesis' faults.
  const alarms = rec.events
    .filter((e) => e.event === 'peer-faulty' && rec.loadStartedAt !== undefined && e.at >= rec.loadStartedAt)
    .map((e) => ({ at: Math.round(e.at), node: e.node, peer: other(e.node), reason: String(e.reason ?? '') }));
  const classified = b ? classifyAlarms(alarms, rec.faults, b.detectionWindowMs) : [];
  const falseAlarmRecords = classified.filter((c) => c.falseAlarm);

  // Takeovers: signal → first reply the faulted replica cannot have given.
  const sorted = [...rec.successes].sort((x, y) => x.return - y.return);
  const takeovers: number[] = [];
  let slowTakeovers = 0;
  for (const a of rec.actions) {
    const r = firstReplyAfter(sorted, a.at, a.target === 'primary' ? (a.epoch ?? undefined) : undefined);
    a.recoveryMs = r === undefined ? null : Math.round(r * 10) / 10;
    if (a.target !== 'primary') continue;
    if (r !== undefined) takeovers.push(r);
    if (b && (r === undefined || r > b.worstCaseFailoverMs)) slowTakeovers++;
    const until = a.endedAt !== undefined ? a.endedAt + stallBound : Infinity;
    const t = rec.events.find((e) => e.event === 'takeover' && e.node === a.peer.node && e.at >= a.at && e.at <= until);
    a.takenOverBy = t ? t.node : null;
  }

  const stallRecords: StallRecord[] = outages.map((o) => {
    const s: StallRecord = {
      from: Math.round(o.from),
      to: Math.round(o.to),
      ms: Math.round(o.ms),
      actions: rec.actions.filter((a) => a.at >= o.from - stallBound && a.at <= o.to).map((a) => a.n),
      events: rec.events
        .filter((e) => e.at >= o.from && e.at <= o.to && NOTABLE.has(e.event))
        .slice(0, 25)
        .map(compactEvent),
    };
    const cause = stallCause(o.from, o.to, rec, classified, stallBound);
    if (cause) s.cause = cause;
    return s;
  });
  if (rec.abortedAt) {
    const last = [...stallRecords].reverse().find((s) => s.to >= rec.abortedAt!.from);
    if (last) last.aborted = true;
  }
  const final = stallRecords[stallRecords.length - 1];
  if (final && rec.endSnapshot && final.to >= Math.round(end) - 1) final.replicas = rec.endSnapshot;

  const divergences = rec.events.filter((e) => e.event === 'divergence').length;
  const lostEntryEvents = rec.events.filter((e) => e.event === 'lost-entries').length;
  const kills = rec.actions.filter((a) => a.fault === 'kill').length;
  const v = rec.verdict;
  const lost = v ? v.lost : null;
  const duplicated = v ? v.duplicated : null;
  const linearizable = v ? v.linearizable : null;

  const failures: string[] = [];
  if (rec.ended !== 'completed') failures.push(`the run ended early: ${rec.ended}${rec.error ? ` (${rec.error.split('\n')[0]})` : ''}`);
  if (v === undefined) failures.push(`not verified: ${rec.verifyError ?? (rec.ended === 'interrupted' ? 'interrupted' : 'no verdict')}`);
  if (lost !== null && lost > 0) failures.push(`${lost} acknowledged writes lost`);
  if (duplicated !== null && duplicated > 0) failures.push(`${duplicated} writes applied more than once`);
  if (linearizable === false) failures.push(`history not linearizable${v?.linearizability ? ` (${v.linearizability.verdict})` : ''}`);
  if (outages.length > 0)
    failures.push(`${outages.length} stalls: no successful reply for longer than ${stallBound} ms (longest ${Math.round(longestMs)} ms)`);
  if (falseAlarmRecords.length > 0) failures.push(`${falseAlarmRecords.length} false alarms: a running replica declared faulty`);
  if (rec.redundancyRecords.length > 0)
    failures.push(`redundancy lost ${rec.redundancyRecords.length}×: ${rec.redundancyRecords.map((r) => r.why).join('; ')}`);
  if (rec.unexpectedExits.length > 0) failures.push(`${rec.unexpectedExits.length} replicas exited by themselves`);
  if (divergences > 0) failures.push(`${divergences} divergence events`);

  const report: ChaosReport = {
    target: rec.target,
    ok: failures.length === 0,
    failures,
    lost,
    duplicated,
    linearizable,
    stalls: stallRecords.length,
    longestOutageMs: Math.round(longestMs),
    falseAlarms: falseAlarmRecords.length,
    peerFaultyEvents: classified.length,
    takeoverMs: summarize(takeovers),
    slowTakeovers,
    kills,
    stops: rec.actions.length - kills,
    ops: rec.okCount + rec.failCount,
    acked: rec.okCount,
    failedOps: rec.failCount,
    restarts: { ...rec.restarts },
    redundancyLost: rec.redundancyRecords.length,
    unexpectedExits: rec.unexpectedExits.length,
    divergences,
    lostEntryEvents,
    ruleDeferrals: rec.ruleDeferrals,
    rule: CHAOS_RULE,
    ended: rec.ended,
    ...(rec.error ? { error: rec.error } : {}),
    seed: rec.seed,
    nemesis: rec.nemesis,
    clients: rec.clients,
    actionsPlanned: rec.actionsPlanned,
    durationMs: Math.round(end - start),
    bounds: b ?? {
      worstCaseFailoverMs: NaN,
      rejoinBoundMs: NaN,
      rejoinBoundFrom: 'bounds.joinTimeoutMs',
      stallBoundMs: NaN,
      detectionWindowMs: NaN,
      pauseMs: NaN,
    },
    stallRecords,
    falseAlarmRecords,
    verification: v
      ? { ...withoutVerdictFields(v), ...(rec.servingNode ? { servingNode: rec.servingNode } : {}) }
      : { error: rec.verifyError ?? (rec.ended === 'interrupted' ? 'interrupted' : 'not verified') },
  };
  if (v?.lostAt && v.lostAt.length > 0) {
    report.lostWindows = v.lostAt.map((w) => ({
      ...w,
      ...optional('cause', lossCause(w.from, w.to, rec, classified, stallBound)),
      actions: rec.actions
        .filter((a) => a.at >= w.from - 2 * stallBound && a.at <= w.to + stallBound)
        .map((a) => ({ n: a.n, at: a.at, fault: a.fault, node: a.node, target: a.target, peerRole: a.peer.role })),
    }));
  }
  if (rec.redundancyRecords.length > 0) report.redundancyRecords = rec.redundancyRecords;
  if (rec.unexpectedExits.length > 0) report.unexpectedExitRecords = rec.unexpectedExits;
  if (rec.verbose) report.actions = rec.actions;
  return report;
}

/**
 * The likely start of a stall: the last fault of the primary before it, and whether that primary had
 * just declared its backup faulty (then the backup held no current state: the pair's own double fault).
 */
function stallCause(from: number, to: number, rec: RunRecord, alarms: readonly ClassifiedAlarm[], stallBound: number): string | undefined {
  const a = [...rec.actions].reverse().find((x) => x.target === 'primary' && x.at <= to && x.at >= from - stallBound);
  if (!a) return undefined;
  const drop = [...alarms].reverse().find((x) => x.node === a.node && x.at <= a.at && x.at >= a.at - 5000);
  const what = `${a.fault} of primary ${a.node} (#${a.n} at ${a.at} ms, peer ${a.peer.node} ${a.peer.role ?? '?'})`;
  if (drop) {
    return `${what} ${Math.round(a.at - drop.at)} ms after ${a.node} declared ${drop.peer} faulty (${drop.reason ?? '?'}${drop.falseAlarm ? ', a FALSE ALARM' : ''}): ${drop.peer} was re-joining, held no current state, and nothing could take over`;
  }
  if (a.takenOverBy === null) return `${what}: no takeover by ${a.peer.node} followed`;
  return what;
}

/**
 * Writes acknowledged in [from, to] and lost: usually by the primary that was faulted next. Say when that
 * fault came right after the primary declared its backup faulty, or right after a backup joined it (a
 * joiner that reports `backup` before it holds what the primary acknowledged alone).
 */
function lossCause(from: number, to: number, rec: RunRecord, alarms: readonly ClassifiedAlarm[], stallBound: number): string | undefined {
  const a = rec.actions.find((x) => x.target === 'primary' && x.at >= from - 50 && x.at <= to + stallBound);
  if (!a) return undefined;
  const what = `${a.fault} of primary ${a.node} (#${a.n} at ${a.at} ms)`;
  const drop = [...alarms].reverse().find((x) => x.node === a.node && x.at <= a.at && x.at >= from - 5000);
  if (drop)
    return `${what} ${Math.round(a.at - drop.at)} ms after ${a.node} declared ${drop.peer} faulty (${drop.reason ?? '?'}${drop.falseAlarm ? ', a FALSE ALARM' : ''})`;
  const joined = [...rec.events]
    .reverse()
    .find((e) => e.event === 'peer-joined' && e.node === a.node && e.at <= a.at && e.at >= from - 5000);
  if (joined) {
    return `${what} ${Math.round(a.at - joined.at)} ms after ${a.peer.node} joined it as backup (${String(joined.mode ?? 'copy')} join at seq ${String(joined.seq)}); ${a.peer.node} took over without the writes ${a.node} had acknowledged alone before the join`;
  }
  return what;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function withoutVerdictFields(v: WorkloadVerdict): Omit<WorkloadVerdict, 'lost' | 'duplicated' | 'linearizable' | 'lostAt'> {
  const { lost: _l, duplicated: _d, linearizable: _z, lostAt: _a, ...rest } = v;
  return rest;
}

/** The human summary. */
export function formatChaosReport(r: ChaosReport): string {
  const ms = (x: number | null): string => (x === null ? '–' : `${Math.round(x)} ms`);
  const v = (x: number | boolean | null): string => (x === null ? 'not verified' : String(x));
  const lines = [
    `chaos: ${r.target}, nemesis ${r.nemesis}, ${r.kills} kills + ${r.stops} stops of ${r.actionsPlanned} planned, ${r.clients} clients, seed ${r.seed}, ${(r.durationMs / 1000).toFixed(1)} s — ${r.ok ? 'PASS' : 'FAIL'}`,
    `  lost                ${v(r.lost)}   (acknowledged writes missing from the serving replica)`,
    `  duplicated          ${v(r.duplicated)}   (writes applied more than once)`,
    `  linearizable        ${v(r.linearizable)}`,
    `  stalls              ${r.stalls}   (no successful reply for > ${r.bounds.stallBoundMs} ms = worst-case failover ${r.bounds.worstCaseFailoverMs} + rejoin bound ${r.bounds.rejoinBoundMs} from ${r.bounds.rejoinBoundFrom})`,
    `  longest outage      ${ms(r.longestOutageMs)}`,
    `  false alarms        ${r.falseAlarms}   (peer-faulty while the peer was neither killed nor paused in the ${r.bounds.detectionWindowMs} ms before; ${r.peerFaultyEvents} peer-faulty in all)`,
    `  takeover            p50 ${ms(r.takeoverMs.p50)}, p99 ${ms(r.takeoverMs.p99)}, max ${ms(r.takeoverMs.max)} over ${r.takeoverMs.count} primary faults (signal → first successful reply); ${r.slowTakeovers} slower than ${r.bounds.worstCaseFailoverMs} ms`,
    `  ops                 ${r.ops} (${r.acked} acknowledged, ${r.failedOps} failed or unknown)`,
    `  restarts            ${r.restarts.serve} serve --role backup, ${r.restarts.rejoin} rejoin; pauses last ${r.bounds.pauseMs} ms`,
    `  also                redundancy lost ${r.redundancyLost}, replicas exited by themselves ${r.unexpectedExits}, divergences ${r.divergences}, lost-entries events ${r.lostEntryEvents}; ended: ${r.ended}`,
    `  rule                ${r.rule}; it held the nemesis back ${r.ruleDeferrals}×`,
  ];
  if (r.failures.length > 0) lines.push('  failed because:', ...r.failures.map((f) => `    - ${f}`));
  for (const s of r.stallRecords.slice(0, 5)) {
    lines.push(
      `  stall ${s.from}–${s.to} ms (${s.ms} ms)${s.aborted ? ' — the run ended on it' : ''}; actions ${s.actions.join(', ') || 'none'}`,
    );
    if (s.cause) lines.push(`    cause: ${s.cause}`);
    lines.push(
      `    events: ${s.events.map((e) => `${String(e.node)}:${String(e.event)}${e.role ? `=${String(e.role)}` : ''}@${String(e.at)}`).join(' ') || 'none'}`,
    );
    for (const rep of s.replicas ?? []) lines.push(`    ${JSON.stringify(rep).slice(0, 600)}`);
  }
  for (const w of r.lostWindows ?? []) {
    lines.push(
      `  ${w.count} lost writes acknowledged at ${w.from}–${w.to} ms; actions around: ${w.actions.map((a) => `#${a.n} ${a.fault} ${a.target} ${a.node}@${a.at} (peer ${a.peerRole ?? '?'})`).join(', ') || 'none'}`,
    );
    if (w.cause) lines.push(`    cause: ${w.cause}`);
  }
  for (const f of r.falseAlarmRecords.slice(0, 5))
    lines.push(`  false alarm at ${f.at} ms: ${f.node} declared ${f.peer} faulty (${f.reason ?? '?'})`);
  const ver = r.verification as { details?: string[]; linearizability?: { explanation?: string } };
  for (const d of (ver.details ?? []).slice(0, 10)) lines.push(`  ${d}`);
  if (ver.linearizability?.explanation) lines.push(ver.linearizability.explanation.split('\n').slice(0, 30).join('\n'));
  return lines.join('\n');
}
