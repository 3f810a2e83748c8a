/**
 * Rolling upgrade v1 → v2 of a running pair under load (real `tandem-kv serve` processes on loopback
 * TCP): no client request fails, every acknowledged write is there afterwards, and both replicas end on
 * service version 2 with equal state digests. Plus the v1 → v2 migration itself, in process.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { initialKvState, applyKv, kvService, kvServiceV2, kvServiceVersion, kvMigrationV1toV2 } from '../src/service.js';
import { rollingUpgrade, splitCommand, type UpgradePhase } from '../src/commands/upgrade.js';
import { probeReplica } from '../src/role-probe.js';
import { createTransportRegistry } from '../src/transports.js';
import { freePort } from '../src/harness/free-port.js';
import { builtCliPath, ReplicaProcess } from '../src/harness/replica-process.js';
import { kvRequestSchema, type KvRequest } from '../src/schema.js';
import { createClient, nodeEnv } from '@tandem/core';
import { MarkerClient, sleep, TEST_REPLICATION } from './fault-harness.js';
import { versionedStateSync } from '@tandem/state-transfer';

const running: ReplicaProcess[] = [];
const clients: MarkerClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(writers.splice(0).map((w) => w.close()));
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

function spawnReplica(listen: string, peer: string, role: 'primary' | 'backup', nodeId: string, serviceVersion: number): ReplicaProcess {
  const p = ReplicaProcess.spawn({ listen, peer, role, nodeId, replication: TEST_REPLICATION, serviceVersion });
  running.push(p);
  return p;
}

/** A client writing fresh keys (`key = value`, both unique); remembers what was acknowledged and what failed. */
class KeyWriter {
  readonly client: MarkerClient['client'];
  readonly tag: string;
  readonly acked = new Map<string, string>();
  readonly failures: string[] = [];
  issued = 0;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(servers: readonly [string, string], tag: string) {
    this.tag = tag;
    this.client = createClient({
      service: kvService,
      env: nodeEnv({ network: createTransportRegistry() }),
      servers,
      config: { ...TEST_REPLICATION, callDeadlineMs: 15_000 },
    });
    writers.push(this);
  }

  async write(): Promise<void> {
    const n = this.issued++;
    const key = `${this.tag}.${n}`;
    const value = `${this.tag}:${n}`;
    try {
      await this.client.call({ op: 'set', key, value });
      this.acked.set(key, value);
    } catch (err) {
      this.failures.push(`${key}: ${(err as Error).name}: ${(err as Error).message}`);
    }
  }

  async writeMany(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.write();
  }

  startLoop(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) await this.write();
    })();
  }

  async stopLoop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async close(): Promise<void> {
    await this.stopLoop();
    await this.client.close();
  }
}

const writers: KeyWriter[] = [];

function servingVersion(p: ReplicaProcess): unknown {
  return p.events.find((e) => e.event === 'serving')?.serviceVersion;
}

describe('kv service version 2 and its migration', () => {
  it('migrates a v1 snapshot to v2 through versionedStateSync, and v2 answers exactly like v1', () => {
    const v1 = initialKvState();
    const script: KvRequest[] = [
      { op: 'set', key: 'a', value: 'x' },
      { op: 'append', key: 'a', value: 'y' },
      { op: 'incr', key: 'n', by: 5 },
      { op: 'acquire', name: 'L', ttlMs: 1000 },
    ].map((r) => kvRequestSchema.parse(r));
    for (const r of script) applyKv(v1, r, { time: 100, clientId: 'c' });
    const installed = versionedStateSync(kvServiceV2).install({ seq: 4, version: 1, snapshot: kvService.snapshot(v1), dedup: [] });
    expect(installed.version).toBe(2);
    const v2 = kvServiceV2.restore(installed.snapshot);
    expect([...v2.data]).toEqual([
      ['a', { v: 'xy', t: 0 }],
      ['n', { v: '5', t: 0 }],
    ]);
    const more: KvRequest[] = [
      { op: 'get', key: 'a' },
      { op: 'cas', key: 'a', expected: 'xy', value: 'z' },
      { op: 'incr', key: 'n' },
      { op: 'scan', prefix: '' },
      { op: 'acquire', name: 'L', ttlMs: 10, owner: 'other' },
    ].map((r) => kvRequestSchema.parse(r));
    const ctx = { time: 200, clientId: 'c', seq: 0, epoch: 1, requestId: 0, random: () => 0 };
    expect(more.map((r) => kvServiceV2.apply(v2, r, ctx))).toEqual(more.map((r) => kvService.apply(v1, r, ctx)));
    expect(v2.data.get('a')).toEqual({ v: 'z', t: 200 });
    expect(kvServiceVersion(2).readValue(v2, 'a')).toBe('z');
  });

  it('refuses what is not a v1 snapshot, and a v1 replica refuses a v2 state', () => {
    expect(() => kvMigrationV1toV2.snapshot!({ data: [['k', 1]], locks: [], lastToken: 0 })).toThrow(TypeError);
    expect(() => versionedStateSync(kvService).install({ seq: 1, version: 2, snapshot: {}, dedup: [] })).toThrow(/newer/);
    expect(() => kvServiceVersion(3)).toThrow(RangeError);
  });

  it('splits an --exec command line', () => {
    expect(splitCommand(`node "my dir/cli.js" serve --service-version 2`)).toEqual([
      'node',
      'my dir/cli.js',
      'serve',
      '--service-version',
      '2',
    ]);
  });
});

describe('rolling upgrade v1 → v2 under load (real processes)', () => {
  it('no failed request, every acknowledged write present, both replicas on v2 with equal digests', async () => {
    const addresses = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`] as const;
    const procs = new Map<string, ReplicaProcess>();
    procs.set(addresses[0], spawnReplica(addresses[0], addresses[1], 'primary', 'a1', 1));
    await procs.get(addresses[0])!.waitForRole(['primary', 'solo-primary'], 10_000);
    procs.set(addresses[1], spawnReplica(addresses[1], addresses[0], 'backup', 'b1', 1));
    await procs.get(addresses[1])!.waitForRole(['backup'], 10_000);

    // Concurrent clients, each writing its own fresh keys the whole time (small values, so the state and
    // the replies stay small); each call retries until its deadline.
    const load = Array.from({ length: 6 }, (_, i) => new KeyWriter(addresses, `w${i}`));
    for (const w of load) await w.writeMany(20); // a v1 state to migrate
    for (const w of load) w.startLoop();
    await sleep(300);

    const network = createTransportRegistry();
    const phases: UpgradePhase[] = [];
    let generation = 2;
    const result = await rollingUpgrade(
      addresses,
      {
        role: async (address) => (await probeReplica(network, address, 1000))?.role,
        stop: async (address) => {
          await sleep(200); // let load run against the pair in each configuration
          await procs.get(address)!.stop();
        },
        start: async (address, peer) => {
          const p = spawnReplica(address, peer, 'backup', `v2-${generation++}`, 2);
          procs.set(address, p);
          return `pid ${p.pid}`;
        },
      },
      { phaseTimeoutMs: 15_000, onPhase: (phase) => phases.push(phase) },
    ).catch((err: Error) => {
      const state = running.map(
        (p) =>
          `${p.options.nodeId} (v${servingVersion(p)}): ${p.events.map((e) => e.event + (e.role ? ':' + String(e.role) : '')).join(', ')}\n  stderr: ${p.stderrTail.join('\n  ')}`,
      );
      throw new Error(`${err.message}\nphases: ${phases.join(', ')}\n${state.join('\n')}`);
    });
    await sleep(300); // load on the upgraded pair

    for (const w of load) await w.stopLoop();
    const issued = load.reduce((n, w) => n + w.issued, 0);
    const acked = new Map(load.flatMap((w) => [...w.acked]));
    const failed = load.flatMap((w) => w.failures);
    expect({ failed }).toEqual({ failed: [] });
    expect(acked.size).toBe(issued);
    expect(acked.size).toBeGreaterThan(6 * 20);
    expect(phases).toEqual(['inspect', 'stop-backup', 'new-backup', 'new-backup', 'failover', 'failover', 'new-other', 'done']);

    const primary = procs.get(result.primary)!;
    const backup = procs.get(result.backup)!;
    expect([servingVersion(primary), servingVersion(backup)]).toEqual([2, 2]);
    // Every acknowledged write, read straight from the v2 primary's state (first written under v1, migrated).
    const keys = [...acked.keys()];
    const { values } = await primary.read(keys);
    const wrong = keys.filter((k, i) => values[i] !== acked.get(k));
    expect({ missingOrWrong: wrong.slice(0, 10), count: wrong.length }).toEqual({ missingOrWrong: [], count: 0 });

    let last = '';
    const deadline = Date.now() + 5000;
    for (;;) {
      const [sp, sb] = await Promise.all([primary.status(), backup.status()]);
      last = `primary ${sp.role} seq ${sp.appliedSeq} ${sp.stateDigest}, backup ${sb.role} seq ${sb.appliedSeq} ${sb.stateDigest}`;
      if (sp.appliedSeq === sb.appliedSeq && sp.stateDigest === sb.stateDigest && sp.role === 'primary' && sb.role === 'backup') break;
      if (Date.now() > deadline) throw new Error(`digests did not converge: ${last}`);
      await sleep(50);
    }
    expect(last).toMatch(/^primary primary/);
    const [sp, sb] = await Promise.all([primary.status(), backup.status()]);
    expect(sp.divergences + sb.divergences).toBe(0);
  });
});

describe('tandem-kv rejoin (real processes)', () => {
  it('joins a v1 primary as a v2 backup: state migrated, VERIFIED, then serves as backup', async () => {
    const [pa, pb] = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
    const primary = spawnReplica(pa, pb, 'primary', 'p1', 1);
    await primary.waitForRole(['primary', 'solo-primary'], 10_000);
    const c = new MarkerClient([pa, pb], 'rj', 'r', TEST_REPLICATION);
    clients.push(c);
    await c.appendMany(10);
    const child = spawn(
      process.execPath,
      [
        builtCliPath(),
        'rejoin',
        '--listen',
        pb,
        '--peer',
        pa,
        '--service-version',
        '2',
        '--json',
        '--timeout',
        '20000',
        '--replication',
        JSON.stringify(TEST_REPLICATION),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const events: Record<string, unknown>[] = [];
      let buf = '';
      child.stdout!.setEncoding('utf8');
      const verified = new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stdout!.on('data', (d: string) => {
          buf += d;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            const e = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
            buf = buf.slice(i + 1);
            events.push(e);
            if (e.event === 'rejoin-verified') resolve(e);
          }
        });
        void exited.then((code) => reject(new Error(`rejoin exited (${code}) before VERIFIED: ${JSON.stringify(events)}`)));
      });
      const v = await verified;
      expect(events.find((e) => e.event === 'rejoin-state')).toMatchObject({ fromVersion: 1, toVersion: 2 });
      expect(v.seq).toBeGreaterThanOrEqual(10);
      await c.appendMany(5); // still serving as backup: the primary keeps a backup
      expect((await primary.status()).role).toBe('primary');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
