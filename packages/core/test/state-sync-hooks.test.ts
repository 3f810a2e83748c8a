/**
 * The StateSync hooks a streaming strategy uses (attachPrimary / fetch / the 'transfer' hello / the
 * delta join), exercised with an in-process strategy that hands the joiner the primary's state through
 * shared memory — the core's side of the contract, without @tandem/state-transfer (which has its own
 * end-to-end test, packages/state-transfer/test/streaming-state-sync.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PrimaryStateView, ReplicaEvent, StateFetchResult, StateSync } from '../src/api.js';
import { codec } from '../src/codec.js';
import { DivergenceError, isCoreError } from '../src/errors.js';
import { createClient } from '../src/client.js';
import type { Entry } from '../src/messages.js';
import { createReplica } from '../src/replica.js';
import { wholeStateSync } from '../src/state-sync.js';
import { TestCluster, sleep, until } from './helpers/fault-net.js';
import { FAST, kv, writer, type KvState } from './helpers/setup.js';

const stoppers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
});

/** What the primary's strategy and the joiner's strategy share (they run in one process here). */
interface Shared {
  view: PrimaryStateView | undefined;
  backlog: Entry[];
  /** (seq, digest) at which the joiner's state was compared with the primary's and found equal. */
  verified: StateFetchResult | undefined;
  fetches: number;
  transfers: number;
}

/**
 * A strategy that copies the primary's state at seq S from its live view, lets it run on, applies the
 * entries after S from the backlog, and records a verification only when both digests are equal at the
 * same seq. `honest: false` claims a verified state without any check.
 */
function sharedMemorySync(shared: Shared, honest = true): StateSync {
  return {
    ...wholeStateSync,
    attachPrimary(view) {
      shared.view = view;
      shared.backlog = [];
      const off = view.onApplied((e) => shared.backlog.push(e));
      return {
        acceptTransfer(conn) {
          shared.transfers++;
          // Echo the first message after the hello: it must arrive here, not at the replica.
          void (async () => {
            for await (const m of conn) {
              await conn.send(m);
              break;
            }
          })();
        },
        verifiedAt: ({ haveSeq, haveDigest }) => shared.verified?.seq === haveSeq && shared.verified.digest === haveDigest,
        entriesAfter(seq) {
          if (seq === view.appliedSeq) return [];
          const i = shared.backlog.findIndex((e) => e.seq === seq + 1);
          return i < 0 ? undefined : shared.backlog.slice(i);
        },
        detach() {
          off();
          shared.view = undefined;
        },
      };
    },
    async fetch(ctx) {
      shared.fetches++;
      const view = shared.view;
      if (!honest) return { seq: ctx.target.appliedSeq, digest: ctx.target.digest() };
      if (view === undefined) return undefined;
      const seq = view.appliedSeq;
      ctx.target.install({ seq, state: kv.restore(kv.snapshot(view.state as KvState)), dedup: view.exportDedup() });
      await sleep(30); // the primary goes on serving
      for (;;) {
        for (const e of shared.backlog) if (e.seq === ctx.target.appliedSeq + 1) ctx.target.apply(e);
        // Compare in one turn: nothing is applied between the two digests.
        if (ctx.target.appliedSeq === view.appliedSeq) {
          const digest = ctx.target.digest();
          if (digest !== view.digest()) throw new Error('digest mismatch');
          shared.verified = { seq: ctx.target.appliedSeq, digest };
          return shared.verified;
        }
        await sleep(1);
      }
    },
  };
}

let rigNo = 0;
async function rig(syncA: StateSync, syncB: StateSync) {
  const cluster = new TestCluster();
  const n = ++rigNo;
  const addrA = `mem://ssh-a${n}`;
  const addrB = `mem://ssh-b${n}`;
  cluster.nameAddress(addrA, 'A');
  cluster.nameAddress(addrB, 'B');
  const a = createReplica({
    service: kv,
    env: cluster.node('A').env,
    listen: addrA,
    peer: addrB,
    roleHint: 'primary',
    nodeId: 'A',
    config: FAST,
    stateSync: syncA,
  });
  const b = createReplica({
    service: kv,
    env: cluster.node('B').env,
    listen: addrB,
    peer: addrA,
    roleHint: 'backup',
    nodeId: 'B',
    config: FAST,
    stateSync: syncB,
  });
  const events = { a: [] as ReplicaEvent[], b: [] as ReplicaEvent[] };
  a.on((e) => events.a.push(e));
  b.on((e) => events.b.push(e));
  stoppers.push(
    () => a.stop(),
    () => b.stop(),
  );
  await a.start();
  const c = createClient({ service: kv, env: cluster.node('C').env, servers: [addrA, addrB], config: FAST });
  stoppers.push(() => c.close());
  return { cluster, a, b, events, c, addrA };
}

const modes = (events: ReplicaEvent[]): (string | undefined)[] =>
  events.filter((e) => e.type === 'peer-joined').map((e) => (e as { mode?: string }).mode);

describe('StateSync hooks: fetch, then a delta join', () => {
  it('a joiner that fetched a verified state while a client writes is admitted by delta: no whole-state stateSnap, equal digests, nothing lost after a takeover', async () => {
    const shared: Shared = { view: undefined, backlog: [], verified: undefined, fetches: 0, transfers: 0 };
    const sync = sharedMemorySync(shared);
    const r = await rig(sync, sync);
    for (let i = 0; i < 100; i++) await r.c.call({ op: 'put', key: `pre${i}`, value: 'x' });
    const w = writer(r.c, 'w');
    await sleep(30);
    await r.b.start();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    await sleep(100);
    const acked = await w.stop();
    await r.c.drain();
    await until(
      () => r.a.status().appliedSeq === r.b.status().appliedSeq && r.a.status().stateDigest === r.b.status().stateDigest,
      'equal digests',
    );

    const snaps = r.cluster.find((x) => x.from === 'A' && x.msg.t === 'stateSnap');
    expect(snaps.length).toBe(1);
    expect(snaps[0]!.msg).toMatchObject({ t: 'stateSnap', delta: true, snapshot: null, dedup: [] });
    const req = r.cluster.find((x) => x.from === 'B' && x.msg.t === 'stateReq');
    expect(req.map((x) => x.msg)).toEqual([
      { t: 'stateReq', nodeId: 'B', haveSeq: shared.verified!.seq, haveDigest: shared.verified!.digest },
    ]);
    expect(modes(r.events.a)).toEqual(['delta']);
    expect(shared.fetches).toBe(1);
    expect(r.events.b.filter((e) => e.type === 'divergence')).toEqual([]);
    // Entries were written between the fetch's verification and the join: they came with the flushes.
    expect(r.a.status().appliedSeq).toBeGreaterThan(shared.verified!.seq);

    r.cluster.node('A').crash();
    await until(() => r.b.status().role === 'solo-primary', 'B took over', 5000);
    const state = r.b.state as KvState;
    expect(acked.filter((k) => state.get(k) !== 'v')).toEqual([]);
    expect(state.get('pre99')).toBe('x');
  });

  it('a joiner claiming a state the primary never verified gets the whole-state copy', async () => {
    const shared: Shared = { view: undefined, backlog: [], verified: undefined, fetches: 0, transfers: 0 };
    const r = await rig(sharedMemorySync(shared), sharedMemorySync(shared, false));
    for (let i = 0; i < 50; i++) await r.c.call({ op: 'put', key: `k${i}`, value: 'v' });
    await r.b.start();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    expect(modes(r.events.a)).toEqual(['copy']);
    const snaps = r.cluster.find((x) => x.from === 'A' && x.msg.t === 'stateSnap');
    expect(snaps.map((x) => (x.msg as { delta?: boolean }).delta)).toEqual([undefined]);
    await until(() => (r.b.state as KvState).get('k49') === 'v', 'B has the copy');
  });

  it('a verified joiner whose entries the primary no longer holds is told to stream again (drop), then joins by delta', async () => {
    const shared: Shared = { view: undefined, backlog: [], verified: undefined, fetches: 0, transfers: 0 };
    const base = sharedMemorySync(shared);
    let refusals = 1;
    const forgetful: StateSync = {
      ...base,
      attachPrimary(view) {
        const a = base.attachPrimary!(view);
        return { ...a, entriesAfter: (seq) => (refusals-- > 0 ? undefined : a.entriesAfter!(seq)) };
      },
    };
    const r = await rig(forgetful, base);
    for (let i = 0; i < 50; i++) await r.c.call({ op: 'put', key: `k${i}`, value: 'v' });
    await r.b.start();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    const drops = r.cluster.find((x) => x.from === 'A' && x.msg.t === 'drop');
    expect(drops.map((x) => (x.msg as { reason: string }).reason)).toEqual(['delta join unavailable: stream again']);
    expect(shared.fetches).toBe(2);
    expect(modes(r.events.a)).toEqual(['delta']);
    expect(r.cluster.find((x) => x.from === 'A' && x.msg.t === 'stateSnap' && (x.msg as { delta?: boolean }).delta !== true)).toEqual([]);
    await until(() => (r.b.state as KvState).get('k49') === 'v', 'B has the data');
  });

  it('a joiner whose replay gives another reply digest gets a typed DivergenceError (and reports a divergence), then joins by copy', async () => {
    const shared: Shared = { view: undefined, backlog: [], verified: undefined, fetches: 0, transfers: 0 };
    const primarySync = sharedMemorySync(shared);
    const caught: unknown[] = [];
    const tampering: StateSync = {
      ...wholeStateSync,
      async fetch(ctx) {
        // Replay the primary's first entry on the initial state, with a digest that cannot match.
        ctx.target.install({ seq: 0, state: kv.initialState(), dedup: [] });
        const first = shared.backlog[0]!;
        try {
          ctx.target.apply({ ...first, digest: 'ffffffffffffffff' });
        } catch (err) {
          caught.push(err);
        }
        return undefined; // fall back to the whole-state copy
      },
    };
    const r = await rig(primarySync, tampering);
    for (let i = 0; i < 5; i++) await r.c.call({ op: 'put', key: `k${i}`, value: 'v' });
    await r.b.start();
    await until(() => r.a.status().role === 'primary' && r.b.status().role === 'backup', 'B joined');
    expect(caught).toHaveLength(1);
    const err = caught[0] as DivergenceError;
    expect(isCoreError(err, 'DivergenceError')).toBe(true);
    expect(err).toBeInstanceOf(DivergenceError);
    expect(err).toMatchObject({ name: 'DivergenceError', code: 'DIVERGENCE', seq: 1, expectedDigest: 'ffffffffffffffff' });
    expect(err.actualDigest).toBe(shared.backlog[0]!.digest);
    expect(r.events.b.filter((e) => e.type === 'divergence')).toEqual([
      { type: 'divergence', seq: 1, expectedDigest: 'ffffffffffffffff', actualDigest: err.actualDigest },
    ]);
    expect(modes(r.events.a)).toEqual(['copy']);
    await until(() => (r.b.state as KvState).get('k4') === 'v', 'B has the copy');
  });

  it("a 'transfer' hello hands the connection, with the messages after it, to the strategy; without one it is closed", async () => {
    const shared: Shared = { view: undefined, backlog: [], verified: undefined, fetches: 0, transfers: 0 };
    const r = await rig(sharedMemorySync(shared), wholeStateSync);
    const dial = () => r.cluster.node('C').env.network.dial(r.addrA);
    const conn = await dial();
    stoppers.push(() => conn.close());
    await conn.send(codec.encode({ t: 'hello', kind: 'transfer', service: kv.name, nodeId: 'J', epoch: 0 }));
    const payload = new Uint8Array([0xc1, 1, 2, 3]); // not a protocol message: only the strategy reads it
    await conn.send(payload);
    let echoed: Uint8Array | undefined;
    for await (const m of conn) {
      echoed = m;
      break;
    }
    expect(shared.transfers).toBe(1);
    expect([...(echoed ?? [])]).toEqual([...payload]);
    expect(r.events.a.filter((e) => e.type === 'protocol-error')).toEqual([]);

    // A replica whose strategy does not stream (B here, once it serves alone) closes such a connection.
    const solo = createReplica({
      service: kv,
      env: r.cluster.node('D').env,
      listen: 'mem://ssh-solo',
      peer: 'mem://ssh-nobody',
      roleHint: 'primary',
      nodeId: 'D',
      config: FAST,
    });
    stoppers.push(() => solo.stop());
    await solo.start();
    const c2 = await r.cluster.node('C').env.network.dial('mem://ssh-solo');
    await c2.send(codec.encode({ t: 'hello', kind: 'transfer', service: kv.name, nodeId: 'J', epoch: 0 }));
    const info = await c2.closed;
    expect(info.by).toBe('remote');
    expect(solo.status().role).toBe('solo-primary');
  });
});
