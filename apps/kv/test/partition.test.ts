/**
 * A primary/backup partition with both replicas alive (docs/PARTITIONS.md), with real `tandem-kv serve`
 * processes, a relay on each direction of the replicas' link, and a real etcd. Six clients: with the
 * witness all reach both replicas throughout; without it two of them reach one replica each during the
 * partition (a client on each side):
 *  - with `--witness etcd://…`: one side serves, the other stays passive; after the heal nothing
 *    acknowledged is lost and the recorded history is linearizable;
 *  - without a witness: the split brain shows (each side serves; the older side's writes are lost when the
 *    partition heals) — the documented behaviour, counted and printed;
 *  - etcd stopped while the pair is healthy: it keeps serving; etcd down and the primary SIGKILLed: the
 *    backup does not take over until etcd is back, then does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKvHistory, parseKvHistory, startEtcd, type EtcdServer } from '@tandem/testkit';
import { ReplicaPair } from '../src/harness/cluster.js';
import { freePort } from '../src/harness/free-port.js';
import { Workload } from '../src/harness/workload.js';
import { createTransportRegistry } from '../src/transports.js';
import { sleep, TEST_REPLICATION, until } from './fault-harness.js';
import { Relay } from './relay.js';
import { requireEtcd } from '../../../packages/witness-etcd/test/etcd-harness.js';

// Loud skip without etcd, a failing test under CI=true (the witness package's own rule).
const haveEtcd = requireEtcd('partition');

let etcd: EtcdServer | undefined;
let runNo = 0;

interface RunResult {
  lost: number;
  duplicated: number;
  acknowledged: number;
  linearizable: boolean;
  failure: string;
  /** Epochs that acknowledged writes, with [first, last] reply times (ms). */
  epochs: Map<number, [number, number]>;
  rounds: number;
}

/**
 * Start a pair whose peer link goes through two relays, run 6 clients that reach both replicas directly,
 * partition the link `rounds` times (each `partitionMs`, then heal and wait for a healthy pair), stop the
 * load and check the history.
 */
async function partitionRun(opts: { witness: boolean; rounds: number; partitionMs: number; oneSided: boolean }): Promise<RunResult> {
  const ports: [number, number] = [await freePort(), await freePort()];
  const toB = await Relay.start({ target: `tcp://127.0.0.1:${ports[1]}` });
  const toA = await Relay.start({ target: `tcp://127.0.0.1:${ports[0]}` });
  const prefix = `/tandem/partition-${process.pid}-${++runNo}`;
  const pair = await ReplicaPair.start({
    ports,
    replication: TEST_REPLICATION,
    peerOverride: { a: toB.address, b: toA.address },
    ...(opts.witness ? { extraArgs: ['--witness', `etcd://${etcd!.hostPort}${prefix}`, '--witness-lease-s', '1'] } : {}),
  });
  // oneSided: clients 0 and 1 reach one replica directly and the other through a relay that the partition
  // cuts too — during it, client 0 reaches only A and client 1 only B (a client on each side, so a split
  // brain cannot hide). Otherwise every client reaches both replicas directly all the time: the witness's
  // guarantee assumes it (a client that reaches only the primary cannot forward to the backup: see
  // docs/PARTITIONS.md, "What is not covered").
  const viaB = await Relay.start({ target: `tcp://127.0.0.1:${ports[1]}` });
  const viaA = await Relay.start({ target: `tcp://127.0.0.1:${ports[0]}` });
  const relays = opts.oneSided ? [toA, toB, viaA, viaB] : [toA, toB];
  const epochs = new Map<number, [number, number]>();
  const workload = new Workload({
    servers: pair.addresses,
    serversFor: (c) =>
      !opts.oneSided ? undefined : c === 0 ? [pair.addresses[0], viaB.address] : c === 1 ? [viaA.address, pair.addresses[1]] : undefined,
    clients: 6,
    network: createTransportRegistry(),
    config: TEST_REPLICATION,
    onResult: (r) => {
      if (!r.ok || r.epoch === undefined) return;
      const span = epochs.get(r.epoch);
      if (span === undefined) epochs.set(r.epoch, [r.return, r.return]);
      else span[1] = r.return;
    },
  });
  let rounds = 0;
  try {
    workload.start();
    for (let i = 0; i < opts.rounds; i++) {
      await sleep(300);
      for (const r of relays) r.partition();
      await sleep(opts.partitionMs);
      for (const r of relays) r.heal();
      rounds++;
      await pair.healthy(20_000);
    }
    await sleep(200);
    await workload.stop();
    const serving = await pair.serving();
    if (serving === undefined) throw new Error('no replica serves after the heal');
    const { values } = await serving.read(workload.keysToRead());
    const v = workload.verify(values);
    const report = checkKvHistory(parseKvHistory(workload.history));
    return {
      lost: v.lost,
      duplicated: v.duplicated,
      acknowledged: v.acknowledged,
      linearizable: report.verdict === 'linearizable',
      failure: report.verdict === 'linearizable' ? '' : JSON.stringify(report.failure ?? {}).slice(0, 1500),
      epochs,
      rounds,
    };
  } finally {
    await workload.stop().catch(() => undefined);
    await pair.stop();
    for (const r of [toA, toB, viaA, viaB]) await r.close();
  }
}

describe.skipIf(!haveEtcd)('P/B partition, clients reaching both (real processes, real etcd)', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('with the witness: one side serves at a time, nothing acknowledged is lost, the history is linearizable', async () => {
    const r = await partitionRun({ witness: true, rounds: 3, partitionMs: 2500, oneSided: false });
    console.info(
      `[partition] witness: ${r.rounds} partitions, ${r.acknowledged} acknowledged, lost ${r.lost}, duplicated ${r.duplicated}, epochs ${[...r.epochs.keys()].join(',')}, ${r.linearizable ? 'linearizable' : 'NOT linearizable'}`,
    );
    expect(r.acknowledged).toBeGreaterThan(100);
    expect({ lost: r.lost, duplicated: r.duplicated }).toEqual({ lost: 0, duplicated: 0 });
    expect(r.linearizable, r.failure).toBe(true);
  }, 180_000);

  it('without a witness: the split brain shows — both sides acknowledge, and the older side loses its writes on heal', async () => {
    // A client on each side makes the split brain show every time (with clients that reach both, the
    // loss depends on which side they happen to be talking to when both serve: 0 in some runs).
    const r = await partitionRun({ witness: false, rounds: 2, partitionMs: 2500, oneSided: true });
    console.info(
      `[partition] NO witness (documented split brain): ${r.rounds} partitions, ${r.acknowledged} acknowledged, LOST ${r.lost}, duplicated ${r.duplicated}, epochs ${[...r.epochs.keys()].join(',')}, ${r.linearizable ? 'linearizable' : 'NOT linearizable'}`,
    );
    // What the witness prevents: acknowledged writes lost, seen by the counters and by the checker.
    expect(r.lost).toBeGreaterThan(0);
    expect(r.linearizable).toBe(false);
  }, 240_000);

  it('etcd down: a healthy pair keeps serving; the backup of a killed primary waits for etcd, then takes over', async () => {
    const prefix = `/tandem/partition-${process.pid}-${++runNo}`;
    const pair = await ReplicaPair.start({
      replication: TEST_REPLICATION,
      extraArgs: ['--witness', `etcd://${etcd!.hostPort}${prefix}`, '--witness-lease-s', '1'],
    });
    const workload = new Workload({ servers: pair.addresses, clients: 2, network: createTransportRegistry(), config: TEST_REPLICATION });
    try {
      workload.start();
      await sleep(300);
      await etcd!.kill();
      const before = workload.completed;
      await sleep(1500);
      expect(workload.completed - before).toBeGreaterThan(20); // serving without etcd
      expect(workload.failed).toBe(0);
      const { primary, backup } = await pair.healthy(5000);
      const epoch = (await backup.status()).epoch;
      await primary.kill();
      await sleep(2000); // several takeover bounds: the backup asks, etcd does not answer
      const waiting = await backup.status();
      expect(waiting.role).toBe('backup');
      expect(waiting.witness).toMatch(/unreachable/);
      await etcd!.restart();
      await until('the backup took over once etcd is back', async () => (await backup.status()).role === 'solo-primary', 20_000);
      expect((await backup.status()).epoch).toBe(epoch + 1);
      await sleep(300);
      await workload.stop();
      const { values } = await backup.read(workload.keysToRead());
      const v = workload.verify(values);
      expect({ lost: v.lost, duplicated: v.duplicated }).toEqual({ lost: 0, duplicated: 0 });
    } finally {
      await workload.stop().catch(() => undefined);
      await pair.stop();
      if (etcd) await etcd.restart().catch(() => undefined);
    }
  }, 120_000);
});
