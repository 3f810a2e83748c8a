// The adapters over a live in-memory pair: the named series exist and move; a takeover shows on the
// backup's role, epoch and takeovers_total; the client sees the failover.
import { createClient, createReplica, defineService, nodeEnv } from '@tandem/core';
import { createMemoryNetwork } from '@tandem/transport';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CLIENT_METRIC_NAMES,
  clientMetrics,
  REPLICA_METRIC_NAMES,
  replicaMetrics,
  STATE_TRANSFER_METRIC_NAMES,
  stateTransferMetrics,
} from '../src/index.js';

const counter = defineService({
  name: 'counter',
  request: z.object({ by: z.number() }),
  reply: z.number(),
  initialState: () => ({ n: 0 }),
  apply: (s: { n: number }, r: { by: number }) => (s.n += r.by),
  snapshot: (s: { n: number }) => s.n,
  restore: (n: unknown) => ({ n: n as number }),
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** The value of one sample (`name{labels} value`) in the text format, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    if (line.slice(0, i) === series) return Number(line.slice(i + 1));
  }
  return undefined;
}

describe('replicaMetrics and clientMetrics', () => {
  it('report a live pair; a takeover moves role, epoch and takeovers_total', async () => {
    const env = nodeEnv({ network: createMemoryNetwork() });
    const config = { flushIntervalMs: 10, heartbeatTimeoutMs: 100, ackTimeoutMs: 20, requestTimeoutMs: 50 };
    const a = createReplica({ service: counter, env, nodeId: 'a', listen: 'mem://ma', peer: 'mem://mb', roleHint: 'primary', config });
    const b = createReplica({ service: counter, env, nodeId: 'b', listen: 'mem://mb', peer: 'mem://ma', roleHint: 'backup', config });
    const ra = new Registry();
    const rb = new Registry();
    replicaMetrics(a, { registry: ra });
    const mb = replicaMetrics(b, { registry: rb });
    cleanup.push(
      () => a.stop(),
      () => b.stop(),
    );
    await a.start();
    await b.start();
    const client = createClient({ service: counter, env, servers: ['mem://ma', 'mem://mb'], config });
    cleanup.push(() => client.close());
    const rc = new Registry();
    clientMetrics(client, { registry: rc });
    for (let i = 0; i < 20; i++) await client.call({ by: 1 });
    await client.drain();
    const ta = await ra.metrics();
    for (const n of REPLICA_METRIC_NAMES) expect(ta, n).toContain(`# TYPE ${n} `);
    expect(sample(ta, 'tandem_replica_requests_total{outcome="ok"}')).toBe(20);
    expect(sample(ta, 'tandem_replica_role{role="primary"}')).toBe(1);
    expect(sample(ta, 'tandem_replica_is_primary')).toBe(1);
    expect(sample(ta, 'tandem_replica_epoch')).toBe(1);
    expect(sample(ta, 'tandem_replica_applied_seq')).toBe(20);
    expect(sample(ta, 'tandem_replica_connections{kind="client"}')).toBe(1);
    expect(sample(ta, 'tandem_replica_request_duration_seconds_count')).toBe(20);
    expect(sample(ta, 'tandem_replica_bytes_total{direction="in"}')).toBeGreaterThan(0);
    expect(sample(ta, 'tandem_replica_dedup_entries')).toBe(20);
    expect(sample(ta, 'tandem_replica_flush_rtt_seconds_count')).toBeGreaterThan(0);
    const tb = await rb.metrics();
    expect(sample(tb, 'tandem_replica_role{role="backup"}')).toBe(1);
    expect(sample(tb, 'tandem_replica_forwards_total{result="received"}')).toBeGreaterThan(0);
    expect(sample(tb, 'tandem_replica_takeovers_total')).toBe(0);
    const tc = await rc.metrics();
    for (const n of CLIENT_METRIC_NAMES) expect(tc, n).toContain(`# TYPE ${n} `);
    expect(sample(tc, 'tandem_client_calls_total{outcome="ok"}')).toBe(20);

    await a.stop();
    expect(await client.call({ by: 1 })).toBe(21);
    const after = await rb.metrics();
    expect(sample(after, 'tandem_replica_role{role="solo-primary"}')).toBe(1);
    expect(sample(after, 'tandem_replica_epoch')).toBe(2);
    expect(sample(after, 'tandem_replica_takeovers_total')).toBe(1);
    expect(sample(await rc.metrics(), 'tandem_client_failovers_total')).toBe(1);

    mb.detach();
    expect(b.metrics).toBeUndefined();
    expect(await rb.metrics()).toBe('\n');
  });

  it('stateTransferMetrics turns progress events into counters and gauges', async () => {
    const registry = new Registry();
    const m = stateTransferMetrics({ registry });
    const progress = (side: 'joiner' | 'server', phase: string, bytes: number, records: number, percent?: number) =>
      m.onEvent({ side, type: 'progress', progress: { phase, transferId: 't1', bytes, records, entries: 0, percent } });
    progress('joiner', 'snapshot', 100, 10, 50);
    progress('joiner', 'snapshot', 300, 20, 100);
    progress('server', 'snapshot', 300, 20, 100);
    m.onEvent({ side: 'joiner', type: 'installed', seq: 5 });
    progress('joiner', 'catch-up', 300, 20, 100);
    m.onEvent({ side: 'joiner', type: 'verified', seq: 9 });
    const t = await registry.metrics();
    for (const n of STATE_TRANSFER_METRIC_NAMES) expect(t, n).toContain(`# TYPE ${n} `);
    expect(sample(t, 'tandem_state_transfer_bytes_total{direction="received"}')).toBe(300);
    expect(sample(t, 'tandem_state_transfer_bytes_total{direction="sent"}')).toBe(300);
    expect(sample(t, 'tandem_state_transfer_records_total{direction="received"}')).toBe(20);
    expect(sample(t, 'tandem_state_transfer_phase{side="joiner",phase="catch-up"}')).toBe(1);
    expect(sample(t, 'tandem_state_transfer_progress_ratio{side="joiner"}')).toBe(1);
    expect(sample(t, 'tandem_state_transfer_transfers_total{side="joiner",result="verified"}')).toBe(1);
    expect(sample(t, 'tandem_state_transfer_catchup_seconds_count')).toBe(1);
  });
});
