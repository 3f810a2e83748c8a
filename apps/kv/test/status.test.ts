/**
 * `tandem-kv status --servers A,B [--json]` against a live pair of real processes, before and after a
 * failover: roles, epochs, seqs and the operator fields (backup lag, unacknowledged entries, clients,
 * uptime, version, bounds); exit 3 when no replica answers, 1 when only some do. And `serve`'s startup line
 * with the failover bound on stderr at the default log level.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeTimingBounds, resolveConfig } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaPair } from '../src/harness/cluster.js';
import { freePort } from '../src/harness/free-port.js';
import { builtCliPath } from '../src/harness/replica-process.js';
import { MarkerClient, TEST_REPLICATION, until } from './fault-harness.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups = [];
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [builtCliPath(), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Row {
  address: string;
  error?: string;
  role?: string;
  epoch?: number;
  appliedSeq?: number;
  unackedEntries?: number;
  backupLag?: { seq: number; ms: number };
  clientsConnected?: number;
  dedupEntries?: number;
  uptimeMs?: number;
  version?: string;
  bounds?: { takeoverMs: number; worstCaseFailoverMs: number; processCrashFailoverMs: number; forwardWindowMs: number };
}

function statusJson(servers: readonly string[]): { code: number | null; rows: Row[] } {
  const r = cli(['status', '--servers', servers.join(','), '--json', '--timeout', '2000']);
  return { code: r.status, rows: (JSON.parse(r.stdout) as { replicas: Row[] }).replicas };
}

const coreVersion = (
  JSON.parse(readFileSync(join(import.meta.dirname, '../../../packages/core/package.json'), 'utf8')) as { version: string }
).version;

describe('tandem-kv status', () => {
  it('reports both replicas of a live pair, before and after a failover', async () => {
    const pair = await ReplicaPair.start({ replication: TEST_REPLICATION });
    cleanups.push(() => pair.stop());
    const client = new MarkerClient(pair.addresses, 'k', 's', TEST_REPLICATION);
    cleanups.push(() => client.close());
    await client.appendMany(15);
    await until('the backup applied everything', async () => (await pair.b.status()).appliedSeq === 15);

    const before = statusJson(pair.addresses);
    expect(before.code).toBe(0);
    const [pa, pb] = before.rows;
    const bounds = computeTimingBounds(resolveConfig(TEST_REPLICATION));
    expect(pa).toMatchObject({
      address: pair.addresses[0],
      role: 'primary',
      epoch: 1,
      appliedSeq: 15,
      clientsConnected: 1,
      version: coreVersion,
    });
    // The client holds a connection to both replicas (its forwards go to the backup).
    expect(pb).toMatchObject({
      address: pair.addresses[1],
      role: 'backup',
      epoch: 1,
      appliedSeq: 15,
      clientsConnected: 1,
      version: coreVersion,
    });
    expect(pa!.backupLag).toBeDefined();
    expect(pa!.backupLag!.seq).toBeGreaterThanOrEqual(0);
    expect(pa!.backupLag!.seq).toBe(pa!.unackedEntries);
    expect(pa!.backupLag!.ms).toBeGreaterThanOrEqual(0);
    expect(pb!.backupLag).toBeUndefined(); // only a primary has a backup to lag
    expect(pa!.dedupEntries).toBeGreaterThan(0);
    expect(pa!.uptimeMs).toBeGreaterThan(0);
    expect(pa!.bounds).toEqual({
      takeoverMs: bounds.takeoverMs,
      worstCaseFailoverMs: bounds.worstCaseFailoverMs,
      processCrashFailoverMs: bounds.processCrashFailoverMs,
      forwardWindowMs: bounds.forwardWindowMs,
    });
    const human = cli(['status', '--servers', pair.addresses.join(',')]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(
      / primary {2}epoch 1 {2}seq 15\n {2}backup lag \d+ entries \/ \d+ ms {2}unacked \d+ {2}clients 1 {2}uptime \d+ s {2}version /,
    );
    expect(human.stdout).toContain(`host crash ≤ ${bounds.worstCaseFailoverMs} ms`);

    await pair.a.kill();
    await pair.b.waitForRole(['solo-primary'], 15_000);
    expect(await client.append()).toBeDefined();
    const after = statusJson(pair.addresses);
    expect(after.code).toBe(1); // one replica answers: degraded, not unavailable
    expect(after.rows[0]!.error).toMatch(/refused|closed|timed out|did not answer/);
    expect(after.rows[1]).toMatchObject({ role: 'solo-primary', epoch: 2, appliedSeq: 16, clientsConnected: 1 });
    expect(after.rows[1]!.backupLag).toBeUndefined(); // serving alone: no backup

    // The killed one restarts and joins as backup: both answer again, at epoch 2.
    pair.spawn('a', 'backup');
    await pair.a.waitForRole(['backup'], 15_000);
    await pair.b.waitForRole(['primary'], 15_000);
    const rejoined = statusJson(pair.addresses);
    expect(rejoined.code).toBe(0);
    expect(rejoined.rows.map((r) => [r.role, r.epoch])).toEqual([
      ['backup', 2],
      ['primary', 2],
    ]);
    expect(rejoined.rows[1]!.backupLag).toBeDefined();
  }, 60_000);

  it('exits 3 when no replica answers', async () => {
    const servers = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
    const r = cli(['status', '--servers', servers.join(','), '--timeout', '1000']);
    expect(r.status).toBe(3);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(r.stdout).toMatch(/no answer/);
    const j = cli(['status', '--servers', servers.join(','), '--timeout', '1000', '--json']);
    expect(j.status).toBe(3);
    expect((JSON.parse(j.stdout) as { replicas: Row[] }).replicas.every((row) => typeof row.error === 'string')).toBe(true);
  });
});

describe('tandem-kv serve startup', () => {
  /** Start serve with `args`, collect stderr until `done` says so (or 15 s), then SIGTERM it. */
  async function serveStderr(args: string[], done: (stderr: string) => boolean): Promise<string> {
    const child = spawn(process.execPath, [builtCliPath(), 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    await until('serve started', () => done(stderr) && /listening on|"event":"serving"/.test(stdout), 15_000);
    child.kill('SIGTERM');
    return stderr;
  }

  it('prints the worst-case failover bound on stderr at the default log level', async () => {
    const port = await freePort();
    const replication = { heartbeatTimeoutMs: 300, requestTimeoutMs: 120 };
    const stderr = await serveStderr(
      [
        '--listen',
        `tcp://127.0.0.1:${port}`,
        '--peer',
        'tcp://127.0.0.1:1',
        '--role',
        'primary',
        '--replication',
        JSON.stringify(replication),
      ],
      (s) => s.includes('failover bound'),
    );
    const b = computeTimingBounds(resolveConfig(replication));
    const line = stderr.split('\n').find((l) => l.startsWith('tandem-kv: failover bound:'));
    expect(line).toBe(
      `tandem-kv: failover bound: process crash ≤ ${b.processCrashFailoverMs} ms (fast path off), host crash ≤ ${b.worstCaseFailoverMs} ms (takeover ${b.takeoverMs} ms + request retry 120 ms)`,
    );
  });

  it('with fastFailover the process-crash bound is the fast path, and --json keeps the line on stderr', async () => {
    const port = await freePort();
    const replication = { fastFailover: true };
    const stderr = await serveStderr(
      [
        '--listen',
        `tcp://127.0.0.1:${port}`,
        '--peer',
        'tcp://127.0.0.1:1',
        '--role',
        'primary',
        '--json',
        '--replication',
        JSON.stringify(replication),
      ],
      (s) => s.includes('failover bound'),
    );
    const b = computeTimingBounds(resolveConfig(replication));
    expect(b.processCrashFailoverMs).toBeLessThan(b.worstCaseFailoverMs);
    expect(stderr).toContain(
      `tandem-kv: failover bound: process crash ≤ ${b.processCrashFailoverMs} ms, host crash ≤ ${b.worstCaseFailoverMs} ms`,
    );
  });
});
