/**
 * A backup that rejoins while the primary is under load and the state is large (the state copy takes a
 * while to install). Found by `tandem-kv demo` and the replication benchmark: the primary starts its
 * flush-ack clock when it sends the snapshot, declares the still-installing joiner faulty ("no flushAck
 * after N retransmissions") and serves alone; the joiner then becomes backup, hears no flushes, takes
 * over while the primary is alive, and the primary's solo-period writes are lost when it steps down.
 *
 * This is a bug in @tandem/core (replica.ts), outside this app's slice. The test reproduces it and
 * stays red until the core is fixed; it runs when TANDEM_KV_KNOWN_BUGS=1 (otherwise it prints why not).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaPair } from '../src/harness/cluster.js';
import { checkMarkers, MarkerClient, TEST_REPLICATION, until } from './fault-harness.js';

const RUN = process.env.TANDEM_KV_KNOWN_BUGS === '1';
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

describe('rejoin under load with a large state', () => {
  if (!RUN) {
    it('not run by default (printed reason)', () => {
      const reason = 'reproduces a known @tandem/core bug (joiner declared faulty during its state copy → split brain → lost writes); set TANDEM_KV_KNOWN_BUGS=1 to run it';
      console.info(`[kv] ${reason}`);
      expect(reason).toContain('TANDEM_KV_KNOWN_BUGS');
    });
    return;
  }
  it('every acknowledged write survives the rejoin, and no second takeover happens while the primary is alive', async () => {
    const config = { ...TEST_REPLICATION };
    const pair = await ReplicaPair.start({ replication: config });
    cleanups.push(() => pair.stop());
    const filler = new MarkerClient(pair.addresses, 'filler', 'f', config);
    cleanups.push(() => filler.close());
    const big = 'x'.repeat(200_000);
    for (let i = 0; i < 60; i++) await filler.client.call({ op: 'set', key: `big/${i}`, value: big });
    const clients = [0, 1, 2, 3].map((n) => new MarkerClient(pair.addresses, `k${n}`, `c${n}`, config));
    for (const c of clients) cleanups.push(() => c.close());
    for (const c of clients) c.startLoop();
    await pair.b.kill();
    await pair.a.waitForRole(['solo-primary'], 5000);
    pair.spawn('b', 'backup');
    await pair.b.waitForRole(['backup'], 15_000);
    const n = clients.map((c) => c.acked.size);
    await until('load after the rejoin', () => clients.every((c, i) => c.acked.size >= n[i]! + 50), 20_000);
    for (const c of clients) await c.stopLoop();
    const serving = (await pair.serving()) ?? pair.a;
    const check = await checkMarkers(serving, clients.map((c) => c.key), clients.flatMap((c) => [...c.acked.keys()]), clients.flatMap((c) => [...c.issued]));
    expect({ lost: check.lost.length, duplicated: check.duplicated.length }).toEqual({ lost: 0, duplicated: 0 });
    expect((await serving.status()).epoch).toBe(1); // the primary never died: no takeover should have happened
  });
});
