// tandem-xconf's Prometheus metrics (prom-client): series read from the daemon at each scrape, and the
// late-join replay-time histogram fed as joins complete. The relay itself only increments plain numbers
// (@tandem/xconference's SessionStats, ParticipantCounters and ConferenceCounters); nothing here runs per message.
import { serveMetrics, type ServeMetricsOptions } from '@tandem/metrics-prometheus';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { XconfServer } from './daemon.js';
import { REQUEST_CATEGORY_FIELDS, type DaemonTotals } from './status.js';

/** Bucket bounds (seconds) of tandem_xconf_late_join_replay_seconds: a join replays every running application. */
export const LATE_JOIN_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** Every series tandem-xconf exports (besides prom-client's default process_* and nodejs_* ones). */
export const XCONF_METRIC_NAMES = [
  'tandem_xconf_conferences',
  'tandem_xconf_participants',
  'tandem_xconf_applications',
  'tandem_xconf_requests_total',
  'tandem_xconf_forwarded_total',
  'tandem_xconf_dropped_total',
  'tandem_xconf_participant_bytes_total',
  'tandem_xconf_focus_changes_total',
  'tandem_xconf_late_joins_total',
  'tandem_xconf_late_join_failures_total',
  'tandem_xconf_late_join_replay_seconds',
  'tandem_xconf_backlogs_total',
] as const;

/**
 * Registers tandem-xconf's series on `registry`, read from `server` at each scrape. Label values are bounded:
 * `conference` by the running conferences (declared ones and the runtimeDisplays range), `participant` by the
 * configuration's allow-list (with command-line flags: the displays given), `category`, `kind`, `reason`,
 * `direction` and `side` by fixed sets. Returns a function that stops feeding the late-join histogram.
 */
export function xconfMetrics(registry: Registry, server: XconfServer): () => void {
  const running = () => [...server.conferences.values()].filter((h) => !h.isClosed);
  // Every conference still in the map, closed or not: the daemon moves a conference's counts to its totals in
  // the same tick as it removes it from the map, so a count is never missed (a counter never goes down) nor doubled.
  const totals = (): DaemonTotals => server.totals.snapshot(server.conferences.values());
  const registers = [registry];

  new Gauge({
    name: 'tandem_xconf_conferences',
    help: 'Conferences running.',
    registers,
    collect() {
      this.set(running().length);
    },
  });
  new Gauge({
    name: 'tandem_xconf_participants',
    help: 'Participants of each running conference (master included).',
    labelNames: ['conference'],
    registers,
    collect() {
      this.reset();
      for (const h of running()) this.set({ conference: h.name }, h.conference.participantNames.length);
    },
  });
  new Gauge({
    name: 'tandem_xconf_applications',
    help: 'Applications connected to each running conference.',
    labelNames: ['conference'],
    registers,
    collect() {
      this.reset();
      for (const h of running()) this.set({ conference: h.name }, h.conference.applications.filter((a) => !a.isClosed).length);
    },
  });
  new Counter({
    name: 'tandem_xconf_requests_total',
    help: 'Application requests relayed, by routing category (draw-or-change and init-resource-ids go to every participant, query-display and input-devices to the input focus, query-server to the master).',
    labelNames: ['category'],
    registers,
    collect() {
      const t = totals();
      this.reset();
      for (const [category, field] of Object.entries(REQUEST_CATEGORY_FIELDS)) this.inc({ category }, t.stats[field] ?? 0);
    },
  });
  new Counter({
    name: 'tandem_xconf_forwarded_total',
    help: 'Replies, events and errors forwarded from participants’ servers to applications.',
    labelNames: ['kind'],
    registers,
    collect() {
      const s = totals().stats;
      this.reset();
      this.inc({ kind: 'reply' }, s.forwardedReplies ?? 0);
      this.inc({ kind: 'event' }, s.forwardedEvents ?? 0);
      this.inc({ kind: 'error' }, s.forwardedErrors ?? 0);
    },
  });
  new Counter({
    name: 'tandem_xconf_dropped_total',
    help: 'Replies, events and errors the role filter did not forward: not-responder (another server answers the request), not-focus, not-master, focus-trigger (a key chord consumed).',
    labelNames: ['kind', 'reason'],
    registers,
    collect() {
      const s = totals().stats;
      this.reset();
      this.inc({ kind: 'reply', reason: 'not-responder' }, s.droppedReplies ?? 0);
      this.inc({ kind: 'error', reason: 'not-responder' }, s.droppedErrors ?? 0);
      this.inc({ kind: 'event', reason: 'not-focus' }, s.droppedEventsNotFocus ?? 0);
      this.inc({ kind: 'event', reason: 'not-master' }, s.droppedEventsNotMaster ?? 0);
      this.inc({ kind: 'event', reason: 'focus-trigger' }, s.droppedEventsTrigger ?? 0);
    },
  });
  new Counter({
    name: 'tandem_xconf_participant_bytes_total',
    help: 'Bytes exchanged with each participant’s X server over all conferences: in = read from it, out = written to it.',
    labelNames: ['participant', 'direction'],
    registers,
    collect() {
      const t = totals();
      this.reset();
      for (const [participant, b] of t.traffic) {
        this.inc({ participant, direction: 'in' }, b.bytesIn);
        this.inc({ participant, direction: 'out' }, b.bytesOut);
      }
    },
  });
  const conferenceCounter = (name: string, help: string, field: 'focusChanges' | 'lateJoins' | 'lateJoinFailures'): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(totals().counters[field]);
      },
    });
  };
  conferenceCounter(
    'tandem_xconf_focus_changes_total',
    'Input-focus changes of applications (trigger, ctl focus, or the focus falling back to the master).',
    'focusChanges',
  );
  conferenceCounter('tandem_xconf_late_joins_total', 'Participants that joined a running conference.', 'lateJoins');
  conferenceCounter(
    'tandem_xconf_late_join_failures_total',
    'Late joins that failed (server unreachable or refused, replay failed).',
    'lateJoinFailures',
  );
  new Counter({
    name: 'tandem_xconf_backlogs_total',
    help: 'Flow-control pauses: side=server, a participant’s server read too slowly (the application was paused); side=application, the application did.',
    labelNames: ['side'],
    registers,
    collect() {
      const s = totals().stats;
      this.reset();
      this.inc({ side: 'server' }, s.serverBacklogs ?? 0);
      this.inc({ side: 'application' }, s.appBacklogs ?? 0);
    },
  });
  const replay = new Histogram({
    name: 'tandem_xconf_late_join_replay_seconds',
    help: 'Time from a late join request to the newcomer showing every running application (its replay).',
    buckets: [...LATE_JOIN_BUCKETS],
    registers,
  });
  const observe = (_conference: string, info: { seconds: number }): void => replay.observe(info.seconds);
  server.totals.lateJoinObservers.add(observe);
  return () => server.totals.lateJoinObservers.delete(observe);
}

/** Options of {@link startXconfMetrics}. */
export interface XconfMetricsOptions extends ServeMetricsOptions {
  /** Also export prom-client's default process_* and nodejs_* series (default true). */
  readonly processMetrics?: boolean;
  /** A registry to add the series to (default: a new one). */
  readonly registry?: Registry;
}

/** A running metrics endpoint of a tandem-xconf daemon. */
export interface XconfMetrics {
  /** The registry the series are on (add your own to it, or read it with `registry.metrics()`). */
  readonly registry: Registry;
  /** The scrape URL, `http://HOST:PORT/metrics`. */
  readonly url: string;
  /** Stops the endpoint. */
  close(): Promise<void>;
}

/**
 * Serves `server`'s metrics on `listen` (`HOST:PORT`; loopback only unless `allowRemote`): GET /metrics in the
 * Prometheus text format. Rejects with InsecureMetricsListenError or MetricsListenError (@tandem/metrics-prometheus).
 */
export async function startXconfMetrics(server: XconfServer, listen: string, options: XconfMetricsOptions = {}): Promise<XconfMetrics> {
  const registry = options.registry ?? new Registry();
  const endpoint = await serveMetrics(registry, listen, options);
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const stop = xconfMetrics(registry, server);
  server.metricsUrl = endpoint.url;
  return {
    registry,
    url: endpoint.url,
    async close() {
      stop();
      if (server.metricsUrl === endpoint.url) server.metricsUrl = null;
      await endpoint.close();
    },
  };
}
