/** Shared helpers of the metric adapters. */
import type { Registry } from 'prom-client';

/** Options every adapter takes. */
export interface MetricsOptions {
  /** The prom-client registry the series are registered in (one per replica/client: names are fixed). */
  registry: Registry;
  /** Buckets (seconds) of the latency histograms; default {@link LATENCY_BUCKETS}. */
  buckets?: number[];
}

/** Default histogram buckets in seconds: 0.1 ms to 10 s (replication answers in well under a millisecond on
 * loopback; a failover takes seconds). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The histogram buckets `options` asks for (a copy), or the defaults. */
export function buckets(options: MetricsOptions): number[] {
  return [...(options.buckets ?? LATENCY_BUCKETS)];
}
