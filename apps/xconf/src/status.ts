// What `tandem-xconf ctl status` and the metrics endpoint read: a snapshot of each running conference, and the
// daemon's totals over every conference it has run (running ones included), which only grow.
import { readFileSync } from 'node:fs';
import type { ConferenceCounters, LateJoinInfo, SessionStats } from '@tandem/xconference';
import { RequestCategory } from '@tandem/xconference';
import type { HostedConference } from './hosted-conference.js';

/** One participant of a running conference, as `ctl status` shows it. */
export interface ParticipantStatus {
  /** The participant's name (its display with command-line flags). */
  readonly name: string;
  /** The participant's X display. */
  readonly display: string;
  /** The master (irrevocable; its leaving closes the conference) or another participant. */
  readonly role: 'master' | 'participant';
  /** Colour depth (bits) of the participant's screen, once the daemon has connected to it; null before. */
  readonly depth: number | null;
  /** Bytes read from the participant's server in this conference (replies, events, errors). */
  readonly bytesIn: number;
  /** Bytes written to the participant's server in this conference (requests, late-join replays). */
  readonly bytesOut: number;
}

/** One application of a running conference, as `ctl status` shows it. */
export interface ApplicationStatus {
  /** The application's id in its conference (as `ctl drop` and `ctl focus --app` take it). */
  readonly id: number;
  /** The participant that is the application's input focus. */
  readonly focus: string | null;
  /** The participants whose servers show it, master first. */
  readonly participants: readonly string[];
}

/** Requests counted per routing category (see RequestCategory). */
export type RequestsByCategory = Readonly<Record<RequestCategory, number>>;

/** One running conference, as `ctl status` shows it. */
export interface ConferenceStatus {
  /** The conference's name. */
  readonly name: string;
  /** The X display the conference serves, `:N`. */
  readonly display: string;
  /** The master participant's name. */
  readonly master: string;
  /** The focus-switch trigger (`ctrl+alt+f`, `button`, `none`…). */
  readonly focusTrigger: string;
  /** Applications must present the conference's cookie. */
  readonly requireCookie: boolean;
  /** The participants now, master first. */
  readonly participants: readonly ParticipantStatus[];
  /** The applications connected now. */
  readonly applications: readonly ApplicationStatus[];
  /** Requests relayed since the conference started, by category. */
  readonly requests: RequestsByCategory;
  /** Input-focus changes of its applications since it started. */
  readonly focusChanges: number;
  /** Participants that joined it while it ran. */
  readonly lateJoins: number;
  /** Late joins that failed. */
  readonly lateJoinFailures: number;
  /** Bytes read from every participant's server (including participants that left), since the conference started. */
  readonly bytesIn: number;
  /** Bytes written to every participant's server (including participants that left), since the conference started. */
  readonly bytesOut: number;
}

/** The reply of `ctl status`: the daemon and its running conferences. */
export interface XconfStatus {
  /** The daemon's process id. */
  readonly pid: number;
  /** The version of @tandem/xconf. */
  readonly version: string;
  /** Seconds since the daemon started. */
  readonly uptimeSeconds: number;
  /** The metrics endpoint's URL (`--metrics-listen`), or null when there is none. */
  readonly metrics: string | null;
  /** The running conferences (or the one asked for). */
  readonly conferences: readonly ConferenceStatus[];
}

/** Each request category and the SessionStats field that counts it. */
export const REQUEST_CATEGORY_FIELDS = {
  [RequestCategory.DrawOrChange]: 'requestsDrawOrChange',
  [RequestCategory.QueryDisplay]: 'requestsQueryDisplay',
  [RequestCategory.QueryServer]: 'requestsQueryServer',
  [RequestCategory.InputDevices]: 'requestsInputDevices',
  [RequestCategory.InitResourceIds]: 'requestsInitResourceIds',
} as const satisfies Record<RequestCategory, keyof SessionStats>;

/** Requests by category from session counts. */
export function requestsByCategory(stats: Partial<SessionStats>): RequestsByCategory {
  const out = {} as Record<RequestCategory, number>;
  for (const [category, field] of Object.entries(REQUEST_CATEGORY_FIELDS)) out[category as RequestCategory] = stats[field] ?? 0;
  return out;
}

/** A snapshot of one running conference. */
export function conferenceStatus(h: HostedConference): ConferenceStatus {
  const c = h.conference;
  const traffic = c.participantTraffic;
  let bytesIn = 0;
  let bytesOut = 0;
  for (const t of traffic.values()) {
    bytesIn += t.bytesIn;
    bytesOut += t.bytesOut;
  }
  return {
    name: h.name,
    display: h.display,
    master: h.master.name,
    focusTrigger: h.trigger.label,
    requireCookie: h.xauthorityPath !== null,
    participants: h.participants.map((p) => {
      const t = traffic.get(p.name);
      return {
        name: p.name,
        display: p.display,
        role: p.name === h.master.name ? 'master' : 'participant',
        depth: t?.depth ?? null,
        bytesIn: t?.bytesIn ?? 0,
        bytesOut: t?.bytesOut ?? 0,
      };
    }),
    applications: c.applications.filter((a) => !a.isClosed).map((a) => ({ id: a.id, focus: a.focusName, participants: a.participants })),
    requests: requestsByCategory(c.totals),
    focusChanges: c.counters.focusChanges,
    lateJoins: c.counters.lateJoins,
    lateJoinFailures: c.counters.lateJoinFailures,
    bytesIn,
    bytesOut,
  };
}

/** Totals over every conference a daemon has run: the running ones' counts plus those of the closed ones. */
export interface DaemonTotals {
  /** Session counts summed over every application of every conference. */
  readonly stats: Partial<SessionStats>;
  /** Focus changes and late joins summed over every conference. */
  readonly counters: ConferenceCounters;
  /** Bytes per participant name, over all conferences. */
  readonly traffic: ReadonlyMap<string, { readonly bytesIn: number; readonly bytesOut: number }>;
}

/**
 * Keeps the counts of the conferences a daemon has closed, so that its totals only grow (as Prometheus
 * counters must), and passes late joins on to whoever observes them (the metrics' replay-time histogram).
 */
export class XconfTotals {
  private readonly stats: Record<string, number> = {};
  private readonly counters: ConferenceCounters = { focusChanges: 0, lateJoins: 0, lateJoinFailures: 0, lateJoinSeconds: 0 };
  private readonly traffic = new Map<string, { bytesIn: number; bytesOut: number }>();
  /** Called with each successful late join of any conference. */
  readonly lateJoinObservers = new Set<(conference: string, info: LateJoinInfo) => void>();

  /** Reports a late join to the observers. */
  lateJoin(conference: string, info: LateJoinInfo): void {
    for (const o of this.lateJoinObservers) o(conference, info);
  }

  /** Adds a closed conference's counts to the totals (call once, when it leaves the running set). */
  retire(h: HostedConference): void {
    addInto(this.stats, h.conference.totals, this.counters, h.conference.counters, this.traffic, h.conference.participantTraffic);
  }

  /** The totals now: the retired conferences' plus those of `current` (the conferences not retired yet). */
  snapshot(current: Iterable<HostedConference>): DaemonTotals {
    const stats = { ...this.stats };
    const counters = { ...this.counters };
    const traffic = new Map([...this.traffic].map(([k, v]) => [k, { ...v }]));
    for (const h of current) addInto(stats, h.conference.totals, counters, h.conference.counters, traffic, h.conference.participantTraffic);
    return { stats: stats as Partial<SessionStats>, counters, traffic };
  }
}

function addInto(
  stats: Record<string, number>,
  fromStats: SessionStats,
  counters: ConferenceCounters,
  fromCounters: ConferenceCounters,
  traffic: Map<string, { bytesIn: number; bytesOut: number }>,
  fromTraffic: ReadonlyMap<string, { readonly bytesIn: number; readonly bytesOut: number }>,
): void {
  for (const [k, v] of Object.entries(fromStats)) stats[k] = (stats[k] ?? 0) + v;
  for (const k of Object.keys(counters) as Array<keyof ConferenceCounters>) counters[k] += fromCounters[k];
  for (const [name, t] of fromTraffic) {
    let into = traffic.get(name);
    if (!into) traffic.set(name, (into = { bytesIn: 0, bytesOut: 0 }));
    into.bytesIn += t.bytesIn;
    into.bytesOut += t.bytesOut;
  }
}

let cachedVersion: string | undefined;

/** The version of @tandem/xconf (from its package.json), or "unknown". */
export function xconfVersion(): string {
  if (cachedVersion === undefined) {
    try {
      cachedVersion = String(
        (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version,
      );
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
