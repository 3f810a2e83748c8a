/**
 * `clientMetrics`: a client's Prometheus series (calls by outcome, call latency, retries, failovers seen,
 * forward queue depth), fed by the client's metric hooks (ClientMetricsSink, from @tandem/core).
 */
import type { ClientCallOutcome, ClientMetricsSink } from '@tandem/core';
import { Counter, Gauge, Histogram } from 'prom-client';
import { buckets, type MetricsOptions } from './common.js';

/** What `clientMetrics` needs of a client: its assignable sink, and (optionally) its forward queue depth. */
export interface ClientMetricsTarget {
  /** The client's sink (ClientDiagnostics.metrics): set to the Prometheus one. */
  metrics: ClientMetricsSink | undefined;
  /** Forwarded entries not yet acknowledged by the backup (ClientDiagnostics.pendingForwards). */
  readonly pendingForwards?: number;
}

/** The sink `clientMetrics` installs, with a way to stop reporting. */
export interface PrometheusClientMetrics extends ClientMetricsSink {
  /** Stop: the client's sink is unset (when it is still this one) and the series leave the registry. */
  detach(): void;
}

/** The names of the series `clientMetrics` registers. */
export const CLIENT_METRIC_NAMES = [
  'tandem_client_calls_total',
  'tandem_client_call_duration_seconds',
  'tandem_client_retries_total',
  'tandem_client_failovers_total',
  'tandem_client_epoch',
  'tandem_client_pending_forwards',
] as const;

const OUTCOMES: readonly ClientCallOutcome[] = ['ok', 'app-error', 'invalid', 'unavailable', 'refused', 'stopped', 'protocol-error'];

/** Register a client's series in `options.registry` and report to them (`client.metrics` is set to the sink;
 * `null`: a sink alone, for `ClientOptions.metrics`, without the queue-depth gauge). */
export function clientMetrics(client: ClientMetricsTarget | null, options: MetricsOptions): PrometheusClientMetrics {
  const registers = [options.registry];
  const calls = new Counter({
    name: 'tandem_client_calls_total',
    help: 'Calls ended, by outcome (ok, app-error, invalid, unavailable, refused, stopped, protocol-error).',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of OUTCOMES) calls.inc({ outcome }, 0);
  const duration = new Histogram({
    name: 'tandem_client_call_duration_seconds',
    help: 'Time from a call being sent to its end (env clock).',
    buckets: buckets(options),
    registers,
  });
  const retries = new Counter({
    name: 'tandem_client_retries_total',
    help: 'Calls re-sent to both replicas after requestTimeoutMs without a reply.',
    registers,
  });
  const failovers = new Counter({
    name: 'tandem_client_failovers_total',
    help: 'Replies at a newer epoch than any seen before (a takeover or re-promotion happened).',
    registers,
  });
  const epoch = new Gauge({ name: 'tandem_client_epoch', help: 'Highest epoch seen in a reply.', registers });
  if (client !== null && 'pendingForwards' in client) {
    new Gauge({
      name: 'tandem_client_pending_forwards',
      help: 'Forwarded entries not yet acknowledged by the backup (the forward queue depth).',
      registers,
      collect() {
        this.set(client.pendingForwards ?? 0);
      },
    });
  }
  const names = CLIENT_METRIC_NAMES.filter((n) => options.registry.getSingleMetric(n) !== undefined);
  const sink: PrometheusClientMetrics = {
    call(outcome: ClientCallOutcome, ms: number) {
      calls.inc({ outcome });
      duration.observe(ms / 1000);
    },
    retry() {
      retries.inc();
    },
    failover(e: number) {
      failovers.inc();
      epoch.set(e);
    },
    detach() {
      if (client !== null && client.metrics === sink) client.metrics = undefined;
      for (const n of names) options.registry.removeSingleMetric(n);
    },
  };
  if (client !== null) client.metrics = sink;
  return sink;
}
