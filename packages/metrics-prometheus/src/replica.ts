/**
 * `replicaMetrics`: a replica's Prometheus series. Counters and histograms are fed by the replica's metric
 * hooks (ReplicaMetricsSink, from @tandem/core); gauges are read from `replica.status()` at each scrape.
 */
import type {
  ConnectionKind,
  ForwardResult,
  ReplicaEvent,
  ReplicaMetricsSink,
  ReplicaRequestOutcome,
  ReplicaStatus,
  Role,
} from '@tandem/core';
import { Counter, Gauge, Histogram } from 'prom-client';
import { buckets, type MetricsOptions } from './common.js';

/** What `replicaMetrics` needs of a replica: its status (for the gauges) and its assignable sink. */
export interface ReplicaMetricsTarget {
  /** Read at each scrape for the gauges (role, epoch, seq, lag, …). */
  status(): ReplicaStatus;
  /** The replica's sink (Replica.metrics): set to the Prometheus one. */
  metrics: ReplicaMetricsSink | undefined;
}

/** The sink `replicaMetrics` installs, with a way to stop reporting. */
export interface PrometheusReplicaMetrics extends ReplicaMetricsSink {
  /** Stop: the replica's sink is unset (when it is still this one) and the series leave the registry. */
  detach(): void;
}

const ROLES: readonly Role[] = ['starting', 'joining', 'backup', 'primary', 'solo-primary', 'stopped'];
const KINDS: readonly ConnectionKind[] = ['client', 'peer', 'transfer', 'admin'];

/** The names of the series `replicaMetrics` registers. */
export const REPLICA_METRIC_NAMES = [
  'tandem_replica_requests_total',
  'tandem_replica_request_duration_seconds',
  'tandem_replica_flush_rtt_seconds',
  'tandem_replica_forwards_total',
  'tandem_replica_takeovers_total',
  'tandem_replica_step_downs_total',
  'tandem_replica_divergences_total',
  'tandem_replica_lost_entries_total',
  'tandem_replica_peer_faulty_total',
  'tandem_replica_auth_refusals_total',
  'tandem_replica_connections',
  'tandem_replica_connections_opened_total',
  'tandem_replica_bytes_total',
  'tandem_replica_role',
  'tandem_replica_is_primary',
  'tandem_replica_epoch',
  'tandem_replica_applied_seq',
  'tandem_replica_unacked_entries',
  'tandem_replica_backup_lag_entries',
  'tandem_replica_backup_lag_seconds',
  'tandem_replica_dedup_entries',
  'tandem_replica_clients_connected',
  'tandem_replica_uptime_seconds',
  'tandem_replica_failover_bound_seconds',
  'tandem_replica_info',
] as const;

/**
 * Register a replica's series in `options.registry` and report to them: `replica.metrics` is set to the
 * returned sink (pass `null` to get a sink alone — no gauges — for `ReplicaOptions.metrics`).
 */
export function replicaMetrics(replica: ReplicaMetricsTarget | null, options: MetricsOptions): PrometheusReplicaMetrics {
  const registers = [options.registry];
  const requests = new Counter({
    name: 'tandem_replica_requests_total',
    help: 'Requests answered by this replica, by outcome (ok, app-error, duplicate, invalid, not-primary); held: held by the admission hook (counted again when served).',
    labelNames: ['outcome'],
    registers,
  });
  const duration = new Histogram({
    name: 'tandem_replica_request_duration_seconds',
    help: 'Time from a request reaching this replica to its answer (a held request’s wait included), env clock.',
    buckets: buckets(options),
    registers,
  });
  const flushRtt = new Histogram({
    name: 'tandem_replica_flush_rtt_seconds',
    help: 'Primary: round trip of a flush to the backup and its acknowledgement.',
    buckets: buckets(options),
    registers,
  });
  const forwards = new Counter({
    name: 'tandem_replica_forwards_total',
    help: 'Client forwards (fwd messages): received; applied (brought a backup an entry it lacked); rejected (failed the MAC).',
    labelNames: ['result'],
    registers,
  });
  const takeovers = new Counter({
    name: 'tandem_replica_takeovers_total',
    help: 'Takeovers by this replica (a backup or follower became primary).',
    registers,
  });
  const stepDowns = new Counter({
    name: 'tandem_replica_step_downs_total',
    help: 'Times this replica stopped serving for a newer epoch.',
    registers,
  });
  const divergences = new Counter({
    name: 'tandem_replica_divergences_total',
    help: 'Replies or forwards that differed from this replica’s own (non-deterministic service or corrupted forward).',
    registers,
  });
  const lost = new Counter({
    name: 'tandem_replica_lost_entries_total',
    help: 'Entries an old primary acknowledged that this replica cannot reflect (lost-entries events).',
    registers,
  });
  const peerFaulty = new Counter({
    name: 'tandem_replica_peer_faulty_total',
    help: 'Times this primary declared its backup faulty.',
    registers,
  });
  const authRefusals = new Counter({
    name: 'tandem_replica_auth_refusals_total',
    help: 'Handshakes refused (accepted side) or failed (dialled side).',
    labelNames: ['side'],
    registers,
  });
  const connections = new Gauge({
    name: 'tandem_replica_connections',
    help: 'Admitted connections open now, by kind.',
    labelNames: ['kind'],
    registers,
  });
  const opened = new Counter({
    name: 'tandem_replica_connections_opened_total',
    help: 'Admitted connections opened, by kind (client, peer, transfer, admin).',
    labelNames: ['kind'],
    registers,
  });
  const bytes = new Counter({
    name: 'tandem_replica_bytes_total',
    help: 'Protocol message bytes read (in) and sent (out) on this replica’s connections, framing excluded.',
    labelNames: ['direction'],
    registers,
  });
  for (const kind of KINDS) {
    connections.set({ kind }, 0);
    opened.inc({ kind }, 0);
  }
  for (const direction of ['in', 'out']) bytes.inc({ direction }, 0);
  for (const result of ['received', 'applied', 'rejected']) forwards.inc({ result }, 0);
  for (const outcome of ['ok', 'app-error', 'duplicate', 'invalid', 'not-primary', 'held']) requests.inc({ outcome }, 0);

  if (replica !== null) {
    const status = (): ReplicaStatus => replica.status();
    const gauge = (name: string, help: string, read: (s: ReplicaStatus) => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const v = read(status());
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    };
    new Gauge({
      name: 'tandem_replica_role',
      help: 'The replica’s role: 1 for the current one, 0 for the others.',
      labelNames: ['role'],
      registers,
      collect() {
        const role = status().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    gauge('tandem_replica_is_primary', '1 while this replica serves (primary or solo-primary), else 0.', (s) =>
      s.role === 'primary' || s.role === 'solo-primary' ? 1 : 0,
    );
    gauge('tandem_replica_epoch', 'The replica’s epoch.', (s) => s.epoch);
    gauge('tandem_replica_applied_seq', 'Highest sequence number applied.', (s) => s.appliedSeq);
    gauge('tandem_replica_unacked_entries', 'Primary: entries sequenced but not acknowledged by the backup.', (s) => s.unackedEntries);
    gauge(
      'tandem_replica_backup_lag_entries',
      'Primary (with a backup): highest seq sequenced minus highest acknowledged.',
      (s) => s.backupLag?.seq ?? 0,
    );
    gauge(
      'tandem_replica_backup_lag_seconds',
      'Primary (with a backup): age of the oldest unacknowledged entry.',
      (s) => (s.backupLag?.ms ?? 0) / 1000,
    );
    gauge('tandem_replica_dedup_entries', 'Records in the exactly-once (dedup) window.', (s) => s.dedupEntries);
    gauge('tandem_replica_clients_connected', 'Client connections open now.', (s) => s.clientsConnected);
    gauge('tandem_replica_uptime_seconds', 'Seconds since the replica started.', (s) => s.uptimeMs / 1000);
    new Gauge({
      name: 'tandem_replica_failover_bound_seconds',
      help: 'Computed worst-case bounds: takeover, host-crash (silence) and process-crash failover, and after-solo with a witness.',
      labelNames: ['bound'],
      registers,
      collect() {
        const b = status().bounds;
        this.set({ bound: 'takeover' }, b.takeoverMs / 1000);
        this.set({ bound: 'host-crash' }, b.worstCaseFailoverMs / 1000);
        this.set({ bound: 'process-crash' }, b.processCrashFailoverMs / 1000);
        if (b.worstCaseFailoverAfterSoloMs !== undefined) this.set({ bound: 'after-solo' }, b.worstCaseFailoverAfterSoloMs / 1000);
      },
    });
    new Gauge({
      name: 'tandem_replica_info',
      help: 'Constant 1, labelled with the node id and the @tandem/core version.',
      labelNames: ['node_id', 'version'],
      registers,
      collect() {
        const s = status();
        this.reset();
        this.set({ node_id: s.nodeId, version: s.version }, 1);
      },
    });
  }

  const names = REPLICA_METRIC_NAMES.filter((n) => options.registry.getSingleMetric(n) !== undefined);
  const sink: PrometheusReplicaMetrics = {
    request(outcome: ReplicaRequestOutcome, ms: number) {
      requests.inc({ outcome });
      duration.observe(ms / 1000);
    },
    flushRtt(ms: number) {
      flushRtt.observe(ms / 1000);
    },
    forward(result: ForwardResult) {
      forwards.inc({ result });
    },
    connection(kind: ConnectionKind, change: 'opened' | 'closed') {
      if (change === 'opened') {
        connections.inc({ kind });
        opened.inc({ kind });
      } else connections.dec({ kind });
    },
    bytes(direction: 'in' | 'out', count: number) {
      bytes.inc({ direction }, count);
    },
    event(e: ReplicaEvent) {
      switch (e.type) {
        case 'takeover':
          return takeovers.inc();
        case 'step-down':
          return stepDowns.inc();
        case 'divergence':
          return divergences.inc();
        case 'lost-entries':
          return lost.inc(e.seqs.length);
        case 'peer-faulty':
          return peerFaulty.inc();
        case 'auth-refused':
          return authRefusals.inc({ side: e.side });
      }
    },
    detach() {
      if (replica !== null && replica.metrics === sink) replica.metrics = undefined;
      for (const n of names) options.registry.removeSingleMetric(n);
    },
  };
  if (replica !== null) replica.metrics = sink;
  return sink;
}
