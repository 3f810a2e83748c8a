/**
 * A rolling upgrade of a @tandem/core replica pair under client load: version 1 → version 2 of a kv
 * service whose state format changes. Start the new version as backup (it receives the version-1 state
 * and migrates it), hand over by stopping the old primary (planned failover: the new version takes over,
 * clients retry with the same request ids), then upgrade the other replica. Zero failed client
 * requests, every acknowledged write present at the end, equal digests on both replicas.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, createReplica, type Client, type Replica, type ServiceDefinition } from '@tandem/core';
import { createMemoryNetwork } from '@tandem/transport';
import { versionedStateSync, type SnapshotMap } from '../src/index.js';
import { FAST_CONFIG, kvRequest, kvServiceV1, kvServiceV2, sleep, testEnv, waitRole, type KvRequest } from './helpers.js';

const reply = z.union([z.string(), z.null()]);
const v1: ServiceDefinition<SnapshotMap<string>, KvRequest, string | null> = { ...kvServiceV1(), reply };
const v2 = { ...kvServiceV2(), request: kvRequest, reply } as ServiceDefinition<SnapshotMap<unknown>, KvRequest, string | null>;

let T0 = 0;
const replicas: Replica<unknown>[] = [];
const clients: Client<KvRequest, string | null>[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const r of replicas.splice(0)) await r.stop().catch(() => {});
});

describe('rolling upgrade (version 1 → 2) of a replica pair', () => {
  it('upgrades both replicas under load with zero failed client requests', async () => {
    const network = createMemoryNetwork();
    T0 = Date.now();
    const A = 'mem://upgrade-a';
    const B = 'mem://upgrade-b';
    const start = (
      service: ServiceDefinition<never, KvRequest, string | null>,
      listen: string,
      peer: string,
      roleHint: 'primary' | 'backup' | 'auto',
      nodeId: string,
    ) => {
      const r = createReplica({
        service,
        env: testEnv(network),
        listen,
        peer,
        roleHint,
        nodeId,
        config: FAST_CONFIG,
        stateSync: versionedStateSync(service),
      });
      replicas.push(r as Replica<unknown>);
      r.on((e) => process.env.DBG && console.log(`${Date.now() - T0} ms ${nodeId} ${JSON.stringify(e)}`));
      return r as Replica<unknown>;
    };
    const a1 = start(v1 as never, A, B, 'primary', 'a-v1');
    const b1 = start(v1 as never, B, A, 'backup', 'b-v1');
    await Promise.all([a1.start(), b1.start()]);
    await waitRole(a1, ['primary']);
    await waitRole(b1, ['backup']);

    // Load: 4 clients, each writing its own keys in sequence, until told to stop.
    const t0 = Date.now();
    const mark = (what: string) => process.env.DBG && console.log(`${Date.now() - t0} ms: ${what}`);
    for (const r of [a1, b1]) r.on((e) => e.type !== 'protocol-error' && mark(`${r.status().nodeId} ${JSON.stringify(e)}`));
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const acknowledged = new Map<string, string>();
    const workers = [0, 1, 2, 3].map(async (w) => {
      const c = createClient({ service: v1, env: testEnv(network), servers: [A, B], config: FAST_CONFIG });
      clients.push(c);
      for (let i = 0; !stop && i < 100_000; i++) {
        const key = `w${w}:${i % 50}`;
        const value = `${w}-${i}`;
        try {
          await c.call({ op: 'set', key, value });
          acknowledged.set(key, value);
          ok++;
        } catch (err) {
          failures.push(`${key}: ${(err as Error).name}: ${(err as Error).message}`);
          mark(`failure ${key}`);
        }
        // The in-memory network delivers in microtasks: let timers run between calls.
        await new Promise((r) => setImmediate(r));
      }
    });
    await sleep(400);

    // 1. Upgrade the backup: it joins the version-1 primary and migrates the state it receives.
    mark('stop b1');
    await b1.stop();
    const b2 = start(v2 as never, B, A, 'backup', 'b-v2');
    await b2.start();
    await waitRole(b2, ['backup']);
    expect((b2.state as SnapshotMap<unknown>).get('w0:0')).toMatchObject({ len: expect.any(Number) });
    await sleep(400);

    // 2. Planned failover: stop the old primary; the new version takes over; clients retry there.
    mark('stop a1');
    await a1.stop();
    mark('a1 stopped');
    await waitRole(b2, ['solo-primary', 'primary']);
    mark('b2 serving');
    await sleep(400);

    // 3. Upgrade the other replica: it joins the new primary (same version, no migration).
    mark('start a2');
    const a2 = start(v2 as never, A, B, 'auto', 'a-v2');
    await a2.start();
    await waitRole(a2, ['backup']);
    await sleep(400);

    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(100);

    // Every acknowledged write is in the serving replica's state (migrated format).
    const state = b2.state as SnapshotMap<{ v: string }>;
    for (const [k, v] of acknowledged) expect(state.get(k)?.v).toBe(v);
    // Both replicas converge (equal seq → equal digests; the digest covers the logical content).
    const until = Date.now() + 5000;
    while (a2.status().appliedSeq !== b2.status().appliedSeq && Date.now() < until) await sleep(100);
    expect(a2.status().appliedSeq).toBe(b2.status().appliedSeq);
    expect(a2.status().stateDigest).toBe(b2.status().stateDigest);
    expect(a2.status().divergences + b2.status().divergences).toBe(0);
  }, 60_000);
});
