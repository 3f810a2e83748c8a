/**
 * Availability with real processes (docs/PROTOCOL.md, "Follower", "Blocked", "Operator actions"): a primary
 * SIGKILLed right after it dropped its backup no longer stops the pair for good (it did on 78d7e4e: the
 * dropped replica stayed `joining`, the restarted one `starting`); and where loss cannot be excluded the
 * replica says so and `tandem-kv promote --accept-loss` restores service.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { computeTimingBounds } from '@tandem/core';
import { ReplicaPair } from '../src/harness/cluster.js';
import { builtCliPath } from '../src/harness/replica-process.js';
import { keygen } from '../src/security-options.js';
import { checkMarkers, MarkerClient, sleep, TEST_REPLICATION, until } from './fault-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'tandem-kv-avail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups = [];
});

async function keyedPair(name: string): Promise<{ pair: ReplicaPair; keyFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  await keygen(keyFile, {}, true);
  const pair = await ReplicaPair.start({ replication: TEST_REPLICATION, extraArgs: ['--cluster-key-file', keyFile] });
  cleanups.push(() => pair.stop());
  return { pair, keyFile };
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [builtCliPath(), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** SIGSTOP the backup until the primary has dropped it and serves alone. */
async function stopBackupUntilDropped(pair: ReplicaPair): Promise<void> {
  pair.b.signal('SIGSTOP');
  cleanups.push(() => pair.b.signal('SIGCONT'));
  await pair.a.waitForRole(['solo-primary'], 10_000);
}

describe('the primary dies right after it dropped its backup', () => {
  it('the dropped replica takes over with every acknowledged write; the restarted one joins it', async () => {
    const { pair } = await keyedPair('stall');
    const honest = new MarkerClient(pair.addresses, 'k', 'h', TEST_REPLICATION);
    cleanups.push(() => honest.close());
    await honest.appendMany(10);
    await stopBackupUntilDropped(pair);
    await honest.appendMany(10); // acknowledged by the primary alone
    await pair.a.kill();
    pair.b.signal('SIGCONT');
    const takeover = await pair.b.waitForEvent((e) => e.event === 'takeover', 15_000, 'takeover');
    expect(takeover).toMatchObject({ follower: true });
    expect(pair.b.events.some((e) => e.event === 'blocked')).toBe(false);
    const check = await checkMarkers(pair.b, ['k'], honest.acked.keys(), honest.issued);
    expect({ lost: check.lost, duplicated: check.duplicated }).toEqual({ lost: [], duplicated: [] });
    expect(honest.acked.size).toBe(20);
    pair.spawn('a', 'backup');
    await pair.a.waitForRole(['backup'], 15_000);
    await honest.appendMany(3);
    await until(
      'the restarted replica applied the new writes',
      async () => (await pair.a.status()).appliedSeq === (await pair.b.status()).appliedSeq,
    );
  }, 90_000);
});

describe('where loss cannot be excluded', () => {
  it('the dropped replica, itself stopped past joinTimeoutMs, reports BLOCKED with the range; `tandem-kv promote --accept-loss` restores service', async () => {
    const { pair, keyFile } = await keyedPair('blocked');
    const honest = new MarkerClient(pair.addresses, 'k', 'h', TEST_REPLICATION);
    cleanups.push(() => honest.close());
    await honest.appendMany(10);
    const before = new Set(honest.acked.keys());
    await stopBackupUntilDropped(pair);
    await honest.appendMany(5);
    await sleep(computeTimingBounds({ ...TEST_REPLICATION }).joinTimeoutMs + 500); // b stays stopped that long
    await pair.a.kill();
    pair.b.signal('SIGCONT');
    const blocked = await pair.b.waitForEvent((e) => e.event === 'blocked', 15_000, 'blocked');
    expect(blocked).toMatchObject({ haveSeq: 10, mayLoseFrom: 11 });
    // A restarted replica with no state must not start a fresh epoch over it.
    pair.spawn('a', 'primary');
    await sleep(1500);
    expect((await pair.a.status()).role).toBe('starting');
    const status = cli(['status', '--servers', pair.addresses.join(','), '--cluster-key-file', keyFile]);
    expect(status.status).toBe(1);
    expect(status.stdout).toMatch(/BLOCKED/);
    expect(status.stdout).toMatch(/promote --server/);
    expect(cli(['promote', '--server', pair.addresses[1], '--cluster-key-file', keyFile]).status).toBe(2); // needs --accept-loss
    const promoted = cli(['promote', '--server', pair.addresses[1], '--accept-loss', '--cluster-key-file', keyFile]);
    expect(promoted.status, promoted.stderr).toBe(0);
    await pair.b.waitForEvent((e) => e.event === 'promoted', 5000, 'promoted');
    await pair.a.waitForRole(['backup'], 15_000);
    const check = await checkMarkers(pair.b, ['k'], before, honest.issued);
    expect(check.lost).toEqual([]); // everything acknowledged while the pair was whole is there
    const r = await honest.append();
    expect(r?.epoch).toBeGreaterThan(1);
  }, 90_000);
});
