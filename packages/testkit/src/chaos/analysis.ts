/**
 * What a chaos run's record means, as pure functions (unit-tested on hand-made timelines): outages and
 * stalls from the successful replies, false alarms from `peer-faulty` events against the nemesis'
 * faults, takeover times from the signals to the first successful reply.
 */

/** A fault the nemesis injected into one replica slot: [start, end] is when it was down. */
export interface FaultSpan {
  node: string;
  kind: 'kill' | 'stop';
  /** The signal's time. */
  start: number;
  /** SIGCONT (stop) or the restart (kill); Infinity while not yet over. */
  end: number;
}

/** An outage: no successful reply between `from` and `to`. */
export interface Outage {
  from: number;
  to: number;
  ms: number;
}

/**
 * Gaps between consecutive successful replies (return times), counting the run's start and end as edges.
 * Returns every gap longer than `minMs` (sorted by time) and the longest gap.
 */
export function findOutages(
  successReturns: readonly number[],
  start: number,
  end: number,
  minMs: number,
): { outages: Outage[]; longestMs: number } {
  const times = successReturns.filter((t) => t >= start && t <= end).sort((a, b) => a - b);
  const outages: Outage[] = [];
  let longestMs = 0;
  let prev = start;
  for (const t of [...times, end]) {
    const ms = t - prev;
    if (ms > longestMs) longestMs = ms;
    if (ms > minMs) outages.push({ from: prev, to: t, ms });
    prev = t;
  }
  return { outages, longestMs };
}

/** A replica declaring its peer faulty, at a run time (ms). */
export interface AlarmEvent {
  at: number;
  /** The replica that declared its peer faulty. */
  node: string;
  /** The replica declared faulty. */
  peer: string;
  reason?: string;
}

/** An alarm classified against the nemesis' faults: explained by one, or a false alarm. */
export interface ClassifiedAlarm extends AlarmEvent {
  falseAlarm: boolean;
  /** The fault on the peer that explains it (absent for a false alarm). */
  explainedBy?: FaultSpan;
  /** The declaring replica itself was faulted within the window before (informational). */
  declarerFaulted?: FaultSpan;
}

/**
 * A `peer-faulty` is justified when its peer was killed or paused within `windowMs` before it: some
 * fault span on the peer with start ≤ at ≤ end + windowMs. Anything else is a false alarm — a live,
 * running replica was declared faulty.
 */
export function classifyAlarms(alarms: readonly AlarmEvent[], faults: readonly FaultSpan[], windowMs: number): ClassifiedAlarm[] {
  const within = (f: FaultSpan, node: string, at: number): boolean => f.node === node && f.start <= at && at <= f.end + windowMs;
  return alarms.map((a) => {
    const explainedBy = faults.find((f) => within(f, a.peer, a.at));
    const declarerFaulted = faults.find((f) => within(f, a.node, a.at));
    return {
      ...a,
      falseAlarm: explainedBy === undefined,
      ...(explainedBy ? { explainedBy } : {}),
      ...(declarerFaulted ? { declarerFaulted } : {}),
    };
  });
}

/** A successful call: when it was issued and returned (run ms), and the epoch of its reply. */
export interface SuccessRecord {
  call: number;
  return: number;
  epoch?: number | undefined;
}

/**
 * ms from `signalAt` to the first successful reply after it that the faulted replica cannot have given:
 * a call issued after the signal, or a reply from a newer epoch than `oldEpoch`. Undefined: none came.
 * `successes` sorted by return time.
 */
export function firstReplyAfter(successes: readonly SuccessRecord[], signalAt: number, oldEpoch?: number): number | undefined {
  let lo = 0;
  let hi = successes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (successes[mid]!.return <= signalAt) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < successes.length; i++) {
    const s = successes[i]!;
    if (s.call >= signalAt || (oldEpoch !== undefined && s.epoch !== undefined && s.epoch > oldEpoch)) return s.return - signalAt;
  }
  return undefined;
}

/** Nearest-rank percentile (NaN for no values). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Count, median, 99th percentile and maximum of a set of durations (ms; null when empty). */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** The LatencySummary of `values`, rounded to 0.1 ms. */
export function summarize(values: readonly number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: null, p99: null, max: null };
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { count: values.length, p50: r(percentile(values, 50)), p99: r(percentile(values, 99)), max: r(Math.max(...values)) };
}
