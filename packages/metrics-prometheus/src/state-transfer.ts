/**
 * `stateTransferMetrics`: Prometheus series for @tandem/state-transfer's streaming transfers, fed by the
 * strategy's own `onEvent` hook (both sides: a serving replica sends, a joiner receives). Pass the returned
 * `onEvent` to `streamingStateSync({ …, onEvent })`. Structurally typed: this package does not depend on
 * @tandem/state-transfer.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { buckets, type MetricsOptions } from './common.js';

/** The part of a TransferProgress (@tandem/state-transfer) these metrics read. */
export interface TransferProgressLike {
  /** snapshot, catch-up, verified or following. */
  phase: string;
  /** Counts restart with a new transfer id. */
  transferId: string;
  /** Snapshot bytes so far (cumulative for this transfer). */
  bytes: number;
  /** Snapshot records so far. */
  records: number;
  /** Log entries applied after the snapshot. */
  entries: number;
  /** 0–100 of the snapshot, when known. */
  percent: number | undefined;
}

/** The part of a StreamingStateSyncEvent (@tandem/state-transfer) these metrics read. */
export type StateTransferEventLike =
  | { side: 'joiner' | 'server'; type: 'progress'; progress: TransferProgressLike; nodeId?: string }
  | { side: 'joiner' | 'server'; type: string; [field: string]: unknown };

/** What `stateTransferMetrics` returns. */
export interface PrometheusStateTransferMetrics {
  /** Give this to `streamingStateSync({ onEvent })` (chain your own handler after it if you have one). */
  onEvent(event: StateTransferEventLike): void;
  /** The series leave the registry. */
  detach(): void;
}

/** The names of the series `stateTransferMetrics` registers. */
export const STATE_TRANSFER_METRIC_NAMES = [
  'tandem_state_transfer_bytes_total',
  'tandem_state_transfer_records_total',
  'tandem_state_transfer_entries_total',
  'tandem_state_transfer_phase',
  'tandem_state_transfer_progress_ratio',
  'tandem_state_transfer_transfers_total',
  'tandem_state_transfer_catchup_seconds',
] as const;

const PHASES = ['snapshot', 'catch-up', 'verified', 'following'] as const;

/** Register state-transfer series in `options.registry`; `now` (ms, default performance.now) times the catch-up. */
export function stateTransferMetrics(options: MetricsOptions & { now?: () => number }): PrometheusStateTransferMetrics {
  const registers = [options.registry];
  const now = options.now ?? (() => performance.now());
  const bytes = new Counter({
    name: 'tandem_state_transfer_bytes_total',
    help: 'Snapshot bytes sent (server: acknowledged by the joiner) and received (joiner).',
    labelNames: ['direction'],
    registers,
  });
  const records = new Counter({
    name: 'tandem_state_transfer_records_total',
    help: 'Snapshot records sent and received.',
    labelNames: ['direction'],
    registers,
  });
  const entries = new Counter({
    name: 'tandem_state_transfer_entries_total',
    help: 'Log entries applied by a joiner after its snapshot (catch-up), and sent by the server.',
    labelNames: ['direction'],
    registers,
  });
  for (const direction of ['sent', 'received']) {
    bytes.inc({ direction }, 0);
    records.inc({ direction }, 0);
    entries.inc({ direction }, 0);
  }
  const phase = new Gauge({
    name: 'tandem_state_transfer_phase',
    help: 'The latest transfer’s phase per side (1 for the current phase: snapshot, catch-up, verified, following).',
    labelNames: ['side', 'phase'],
    registers,
  });
  const ratio = new Gauge({
    name: 'tandem_state_transfer_progress_ratio',
    help: 'The latest transfer’s snapshot progress per side, 0–1 (by records when the total is known).',
    labelNames: ['side'],
    registers,
  });
  const transfers = new Counter({
    name: 'tandem_state_transfer_transfers_total',
    help: 'Transfers by side and result (verified, restart, failed).',
    labelNames: ['side', 'result'],
    registers,
  });
  const catchup = new Histogram({
    name: 'tandem_state_transfer_catchup_seconds',
    help: 'Joiner: time from the snapshot installed to the state verified equal to the primary’s (the catch-up lag).',
    buckets: buckets(options),
    registers,
  });
  /** Last cumulative counts per side and transfer, to turn progress snapshots into counter increments. */
  const last = new Map<string, { bytes: number; records: number; entries: number }>();
  let installedAt: number | undefined;
  return {
    onEvent(e: StateTransferEventLike) {
      const side = e.side;
      const direction = side === 'server' ? 'sent' : 'received';
      switch (e.type) {
        case 'progress': {
          const p = (e as { progress: TransferProgressLike }).progress;
          const key = `${side}:${p.transferId}`;
          const prev = last.get(key) ?? { bytes: 0, records: 0, entries: 0 };
          const restarted = p.bytes < prev.bytes || p.records < prev.records;
          const base = restarted ? { bytes: 0, records: 0, entries: 0 } : prev;
          bytes.inc({ direction }, Math.max(0, p.bytes - base.bytes));
          records.inc({ direction }, Math.max(0, p.records - base.records));
          entries.inc({ direction }, Math.max(0, p.entries - base.entries));
          last.set(key, { bytes: p.bytes, records: p.records, entries: p.entries });
          if (last.size > 64) last.delete(last.keys().next().value as string);
          for (const ph of PHASES) phase.set({ side, phase: ph }, ph === p.phase ? 1 : 0);
          if (p.percent !== undefined) ratio.set({ side }, p.percent / 100);
          return;
        }
        case 'installed':
          installedAt = now();
          return;
        case 'verified':
          transfers.inc({ side, result: 'verified' });
          if (side === 'joiner' && installedAt !== undefined) {
            catchup.observe(Math.max(0, now() - installedAt) / 1000);
            installedAt = undefined;
          }
          return;
        case 'restart':
          transfers.inc({ side, result: 'restart' });
          return;
        case 'error':
        case 'digest-mismatch':
          transfers.inc({ side, result: 'failed' });
          return;
      }
    },
    detach() {
      for (const n of STATE_TRANSFER_METRIC_NAMES) options.registry.removeSingleMetric(n);
    },
  };
}
