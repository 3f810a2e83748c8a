/**
 * `tandem-kv serve --metrics-listen` with real processes: scrape /metrics of a live pair under load — the
 * named series exist and move (requests grow) — then SIGKILL the primary and see on the backup that its
 * role and epoch changed and takeovers_total went up; `rejoin` brings the killed one back with state-transfer
 * series. A non-loopback address is refused without --insecure.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaPair } from '../src/harness/cluster.js';
import { builtCliPath, type ReplicaProcess } from '../src/harness/replica-process.js';
import { MarkerClient, sleep, TEST_REPLICATION, until } from './fault-harness.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups = [];
});

/** The scrape URL a replica printed (`metrics` event; port 0 asked, so a free port was chosen). */
async function metricsUrl(p: ReplicaProcess): Promise<string> {
  const e = await p.waitForEvent((ev) => ev.event === 'metrics', 10_000, 'metrics event');
  return e.url as string;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toContain('text/plain');
  return r.text();
}

/** The value of one sample (`name{labels} value`), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    if (line.slice(0, i) === series) return Number(line.slice(i + 1));
  }
  return undefined;
}

const NAMED = [
  'tandem_replica_requests_total',
  'tandem_replica_request_duration_seconds',
  'tandem_replica_role',
  'tandem_replica_is_primary',
  'tandem_replica_epoch',
  'tandem_replica_applied_seq',
  'tandem_replica_unacked_entries',
  'tandem_replica_flush_rtt_seconds',
  'tandem_replica_forwards_total',
  'tandem_replica_takeovers_total',
  'tandem_replica_step_downs_total',
  'tandem_replica_divergences_total',
  'tandem_replica_dedup_entries',
  'tandem_replica_connections',
  'tandem_replica_bytes_total',
  'tandem_replica_backup_lag_entries',
  'tandem_replica_backup_lag_seconds',
  'tandem_replica_failover_bound_seconds',
  'tandem_state_transfer_bytes_total',
];

describe('tandem-kv serve --metrics-listen', () => {
  it('serves the named series; they move under load and after a SIGKILL of the primary', async () => {
    const pair = await ReplicaPair.start({ replication: TEST_REPLICATION, extraArgs: ['--metrics-listen', '127.0.0.1:0'] });
    cleanups.push(() => pair.stop());
    const [urlA, urlB] = [await metricsUrl(pair.a), await metricsUrl(pair.b)];
    const client = new MarkerClient(pair.addresses, 'k', 'm', TEST_REPLICATION);
    cleanups.push(() => client.close());

    await client.appendMany(20);
    const first = await scrape(urlA);
    for (const n of NAMED) expect(first, n).toContain(`# TYPE ${n} `);
    const requests1 = sample(first, 'tandem_replica_requests_total{outcome="ok"}')!;
    expect(requests1).toBeGreaterThanOrEqual(20);
    expect(sample(first, 'tandem_replica_role{role="primary"}')).toBe(1);
    expect(sample(first, 'tandem_replica_is_primary')).toBe(1);
    expect(sample(first, 'tandem_replica_epoch')).toBe(1);
    expect(sample(first, 'tandem_replica_connections{kind="peer"}')).toBeGreaterThanOrEqual(1);
    expect(sample(first, 'tandem_replica_connections{kind="client"}')).toBe(1);

    // Under load: requests, applied seq, bytes and flush round trips grow.
    const load = (async () => {
      for (let i = 0; i < 40; i++) await client.append();
    })();
    await load;
    await sleep(3 * TEST_REPLICATION.flushIntervalMs!);
    const second = await scrape(urlA);
    expect(sample(second, 'tandem_replica_requests_total{outcome="ok"}')!).toBeGreaterThanOrEqual(requests1 + 40);
    expect(sample(second, 'tandem_replica_applied_seq')!).toBeGreaterThan(sample(first, 'tandem_replica_applied_seq')!);
    expect(sample(second, 'tandem_replica_bytes_total{direction="in"}')!).toBeGreaterThan(
      sample(first, 'tandem_replica_bytes_total{direction="in"}')!,
    );
    expect(sample(second, 'tandem_replica_flush_rtt_seconds_count')!).toBeGreaterThan(
      sample(first, 'tandem_replica_flush_rtt_seconds_count')!,
    );
    expect(sample(second, 'tandem_replica_request_duration_seconds_count')!).toBeGreaterThanOrEqual(requests1 + 40);
    const backupBefore = await scrape(urlB);
    expect(sample(backupBefore, 'tandem_replica_role{role="backup"}')).toBe(1);
    expect(sample(backupBefore, 'tandem_replica_is_primary')).toBe(0);
    expect(sample(backupBefore, 'tandem_replica_epoch')).toBe(1);
    expect(sample(backupBefore, 'tandem_replica_takeovers_total')).toBe(0);
    expect(sample(backupBefore, 'tandem_replica_forwards_total{result="received"}')!).toBeGreaterThan(0);
    expect(sample(backupBefore, 'tandem_replica_applied_seq')!).toBeGreaterThan(0);

    await pair.a.kill();
    await pair.b.waitForRole(['solo-primary'], 15_000);
    expect(await client.append()).toBeDefined();
    let after = '';
    await until('the backup reports the takeover', async () => {
      after = await scrape(urlB);
      return sample(after, 'tandem_replica_takeovers_total') === 1;
    });
    expect(sample(after, 'tandem_replica_role{role="solo-primary"}')).toBe(1);
    expect(sample(after, 'tandem_replica_role{role="backup"}')).toBe(0);
    expect(sample(after, 'tandem_replica_is_primary')).toBe(1);
    expect(sample(after, 'tandem_replica_epoch')).toBe(2);
    expect(sample(after, 'tandem_replica_requests_total{outcome="ok"}')!).toBeGreaterThanOrEqual(1);
    await expect(fetch(urlA)).rejects.toThrow(); // the killed replica's endpoint is gone with it
    const notFound = await fetch(urlB.replace(/\/metrics$/, '/'));
    expect(notFound.status).toBe(404);
    expect((await fetch(urlB, { method: 'POST' })).status).toBe(405);

    // `rejoin --metrics-listen`: the killed replica comes back through the streaming state transfer; the
    // joiner counts bytes received, the serving replica bytes sent.
    const rejoined = pair.spawn('a', 'backup', { command: 'rejoin' });
    const urlA2 = await metricsUrl(rejoined);
    await rejoined.waitForRole(['backup'], 15_000);
    let joiner = '';
    await until('the joiner reports its verified transfer', async () => {
      joiner = await scrape(urlA2);
      return sample(joiner, 'tandem_state_transfer_transfers_total{side="joiner",result="verified"}') === 1;
    });
    expect(sample(joiner, 'tandem_state_transfer_bytes_total{direction="received"}')!).toBeGreaterThan(0);
    expect(sample(joiner, 'tandem_replica_role{role="backup"}')).toBe(1);
    expect(sample(joiner, 'tandem_replica_epoch')).toBe(2);
    expect(sample(await scrape(urlB), 'tandem_state_transfer_bytes_total{direction="sent"}')!).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a non-loopback metrics address without --insecure', () => {
    const r = spawnSync(
      process.execPath,
      [
        builtCliPath(),
        'serve',
        '--listen',
        'tcp://127.0.0.1:0',
        '--peer',
        'tcp://127.0.0.1:1',
        '--role',
        'primary',
        '--metrics-listen',
        '0.0.0.0:0',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/InsecureMetricsListenError: refusing to serve metrics on 0\.0\.0\.0:0/);
  });
});
