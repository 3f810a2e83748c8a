/**
 * @tandem/metrics-prometheus: Prometheus metrics for Tandem replicas, clients and state transfer, and a
 * loopback `/metrics` endpoint. @tandem/core reports through plain sink interfaces and never imports
 * prom-client; this package maps those reports to prom-client series.
 */
export { Registry } from 'prom-client';
export * from './client.js';
export { LATENCY_BUCKETS, type MetricsOptions } from './common.js';
export * from './errors.js';
export * from './http.js';
export * from './replica.js';
export * from './state-transfer.js';
