/**
 * Availability (docs/PROTOCOL.md, "Failure detector", "Follower", "Blocked"): a slow backup is not
 * dropped; a dropped backup follows the solo primary and takes over when it dies; when nothing can
 * prove that no acknowledged write is lost the replica says so, and an operator's promote restores
 * service. In-process on the memory transport with SIGKILL/SIGSTOP-like nodes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Replica, ReplicaEvent } from '../src/api.js';
import { computeTimingBounds } from '../src/config.js';
import { codec } from '../src/codec.js';
import type { Entry, Message } from '../src/messages.js';
import { nodeEnv } from '../src/node-env.js';
import { replyDigest } from '../src/service.js';
import { createMemoryNetwork, type Connection } from '@tandem/transport';
import { createReplica } from '../src/replica.js';
import { sleep, until } from './helpers/fault-net.js';
import { FAST, kv, startPair, type KvState, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
const extra: Replica<KvState>[] = [];
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
  await Promise.all(extra.splice(0).map((r) => r.stop().catch(() => undefined)));
});

/** Acknowledged increments of `n`, issued one after another. */
async function incr(p: Pair, client: ReturnType<Pair['client']>, times: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < times; i++) {
    await client.call({ op: 'incr', key: 'n' });
    ok++;
  }
  void p;
  return ok;
}

/** `before` writes, then B is paused until A drops it and serves alone, then `after` writes by A alone. */
async function dropBackup(p: Pair, client: ReturnType<Pair['client']>, before: number, after: number): Promise<void> {
  await incr(p, client, before);
  p.nodeB.pause(); // B misses flushes; A drops it and serves alone, covering it
  await until(() => p.a.status().role === 'solo-primary', 'A serves alone');
  expect(p.a.status().covering).toBeDefined();
  await incr(p, client, after); // acknowledged by A alone; their state information goes to B through the client
}

describe('failure detector', () => {
  it('a backup that stalls repeatedly for less than peerFaultyMs (a busy machine) is never declared faulty', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    const stallMs = Math.round(computeTimingBounds(FAST).takeoverMs * 0.6); // far beyond the old 3 × ackTimeoutMs
    expect(stallMs).toBeGreaterThan((FAST.maxRetransmits! + 1) * FAST.ackTimeoutMs!);
    let acked = 0;
    for (let round = 0; round < 5; round++) {
      p.nodeB.pause();
      const writes = (async () => {
        for (let i = 0; i < 5; i++) acked += (await c.call({ op: 'incr', key: 'n' }), 1);
      })();
      await sleep(stallMs);
      p.nodeB.resume();
      await writes;
      await sleep(30);
    }
    await until(() => p.b.status().appliedSeq === acked, 'backup caught up');
    expect(p.events.a.filter((e) => e.type === 'peer-faulty')).toEqual([]);
    expect(p.b.status().role).toBe('backup');
    expect(p.b.state.get('n')).toBe(String(acked));
  });
});

describe('a backup catching up a long run', () => {
  it('applies it in batches and acknowledges as it goes, instead of going silent for the whole run', async () => {
    // A scripted primary: it admits the replica as its backup, then sends one flush of 1 000 entries.
    const net = createMemoryNetwork();
    const listener = await net.listen('mem://scripted-primary');
    const b = createReplica({
      service: kv,
      env: nodeEnv({ network: net }),
      listen: 'mem://batch-b',
      peer: 'mem://scripted-primary',
      roleHint: 'backup',
      nodeId: 'B',
      config: FAST,
    });
    extra.push(b);
    void b.start();
    const it = listener[Symbol.asyncIterator]();
    const conn = (await it.next()).value as Connection;
    const acks: number[] = [];
    const msgs = conn[Symbol.asyncIterator]();
    const send = (m: Message): Promise<void> => conn.send(codec.encode(m));
    for (;;) {
      const m = codec.decode((await msgs.next()).value as Uint8Array);
      if (m.t === 'status') await send({ t: 'statusReply', role: 'primary', epoch: 1, appliedSeq: 0, nodeId: 'P' });
      if (m.t === 'stateReq') {
        await send({ t: 'stateSnap', epoch: 1, seq: 0, version: 1, snapshot: [], dedup: [] });
        break;
      }
    }
    const entries: Entry[] = Array.from({ length: 1000 }, (_, i) => ({
      seq: i + 1,
      epoch: 1,
      clientId: 'c',
      requestId: i + 1,
      body: { op: 'incr', key: 'n' },
      time: 1,
      seed: 1,
      digest: replyDigest({ value: String(i + 1), seq: i + 1 }, undefined),
    }));
    void (async () => {
      for (;;) {
        const next = await msgs.next();
        if (next.done) return;
        const m = codec.decode(next.value);
        if (m.t === 'flushAck') acks.push(m.upToSeq);
      }
    })();
    await until(() => acks.length >= 1, 'the first ack (the installed copy)');
    await send({ t: 'flush', epoch: 1, flushId: 1, entries });
    await until(() => acks.length >= 2, 'the ack of the big flush');
    expect(acks[1]).toBeLessThan(1000); // acknowledged after the first batch, not after all 1 000
    expect(acks[1]).toBeGreaterThan(0);
    await send({ t: 'flush', epoch: 1, flushId: 2, entries: [] });
    await until(() => b.status().appliedSeq === 1000, 'all applied, batch after batch');
    expect(b.status().divergences).toBe(0);
    await listener.close();
  });
});

describe('a dropped backup follows the solo primary', () => {
  it('the primary dies right after dropping its backup: the dropped replica takes over with every acknowledged write (the stall case)', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await dropBackup(p, c, 3, 4);
    await c.drain().catch(() => undefined);
    p.nodeA.crash();
    p.nodeB.resume();
    await until(() => p.b.status().role === 'solo-primary', 'B took over', 8000);
    expect(p.b.state.get('n')).toBe('7');
    expect(p.b.status().blocked).toBeUndefined();
    expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('8');
  });

  it('a paused backup that resumes while the solo primary serves comes back by resume (no transfer)', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await dropBackup(p, c, 2, 3);
    // When B calls itself backup again it already holds what A acknowledged alone (they came with the
    // admission, not with a later flush: A dying right after must not lose them).
    let seqWhenBackup = -1;
    p.b.on((e) => {
      if (e.type === 'role' && e.role === 'backup') seqWhenBackup = p.b.status().appliedSeq;
    });
    p.nodeB.resume();
    await until(() => p.a.status().role === 'primary' && p.b.status().appliedSeq === 5, 'B resumed');
    expect(seqWhenBackup).toBe(5);
    expect(p.events.a.filter((e) => e.type === 'peer-joined').at(-1)).toMatchObject({ mode: 'resume' });
    expect(p.a.status().covering).toBeUndefined();
  });

  it('the solo primary is paused (not dead): the dropped replica cannot prove anything, says so, and resumes when it comes back', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await dropBackup(p, c, 2, 2);
    p.nodeA.pause();
    p.nodeB.resume();
    await until(() => p.b.status().blocked !== undefined, 'B says it is blocked', 5000);
    expect(p.b.status().role).toBe('joining');
    expect(p.events.b.some((e) => e.type === 'takeover')).toBe(false);
    p.nodeA.resume();
    await until(() => p.a.status().role === 'primary' && p.b.status().role === 'backup', 'pair again');
    await until(() => p.b.status().appliedSeq === 4, 'B caught up');
    expect(p.b.status().blocked).toBeUndefined();
    expect(p.a.status().epoch).toBe(1);
  });
});

describe('a restarted replica does not start a fresh state beside a live one', () => {
  it("restarted with roleHint 'auto' while the primary is paused (it accepts connections, never answers): it waits", async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await incr(p, c, 3);
    p.nodeB.crash();
    await until(() => p.a.status().role === 'solo-primary', 'A alone');
    p.nodeA.pause();
    const nodeB2 = p.cluster.node('B2');
    const b2 = createReplica({
      service: kv,
      env: nodeB2.env,
      listen: p.addrB,
      peer: p.addrA,
      roleHint: 'auto',
      nodeId: 'B2',
      config: FAST,
    });
    extra.push(b2);
    void b2.start().catch(() => undefined);
    await sleep(computeTimingBounds(FAST).takeoverMs * 3);
    expect(b2.status().role).toBe('starting'); // before: it led with an empty state after takeoverMs
    p.nodeA.resume();
    await until(() => b2.status().role === 'backup', 'B2 joined A');
    expect(b2.state.get('n')).toBe('3');
  });
});

describe('when nothing can prove that no acknowledged write is lost', () => {
  it('a dropped backup that was itself stopped longer than joinTimeoutMs does not trust what waited in its sockets: blocked, not a takeover', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await dropBackup(p, c, 2, 3);
    await sleep(computeTimingBounds(FAST).joinTimeoutMs + 200); // B stays stopped past joinTimeoutMs
    p.nodeA.crash();
    p.nodeB.resume();
    await until(() => p.b.status().blocked !== undefined, 'B blocked', 5000);
    expect(p.events.b.some((e) => e.type === 'takeover')).toBe(false);
    expect(p.b.status().blocked).toMatchObject({ haveSeq: 2, mayLoseFrom: 3 });
    await p.b.promote({ acceptLoss: true });
    expect(p.b.status().role).toBe('solo-primary');
  }, 15_000);

  it('the primary dies while a restarted backup is still joining: the joiner reports blocked with the range; promote restores service', async () => {
    // Slow joins: the whole-state copy of a service that installs slowly.
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await incr(p, c, 5);
    p.nodeB.crash(); // B dies; A serves alone (nothing to cover: B is gone)
    await until(() => p.a.status().role === 'solo-primary', 'A alone');
    await incr(p, c, 3);
    // B restarts with no state and is about to join; A dies before it has the copy.
    const nodeB2 = p.cluster.node('B2');
    p.cluster.dropRule = ({ msg }) => msg.t === 'stateSnap';
    const b2 = createReplica({
      service: kv,
      env: nodeB2.env,
      listen: p.addrB,
      peer: p.addrA,
      roleHint: 'backup',
      nodeId: 'B2',
      config: FAST,
    });
    extra.push(b2);
    const events: ReplicaEvent[] = [];
    b2.on((e) => events.push(e));
    void b2.start().catch(() => undefined);
    await until(() => b2.status().epoch === 1, 'B2 saw the primary');
    p.nodeA.crash();
    await until(() => b2.status().blocked !== undefined, 'B2 blocked', 5000);
    const blocked = b2.status().blocked!;
    expect(blocked).toMatchObject({ haveSeq: 0, mayLoseFrom: 1, mayLoseTo: 8 });
    expect(events.some((e) => e.type === 'blocked')).toBe(true);
    // A restarts with no state: it must not start a fresh epoch over B2's knowledge; it waits.
    const nodeA2 = p.cluster.node('A2');
    const a2 = createReplica({
      service: kv,
      env: nodeA2.env,
      listen: p.addrA,
      peer: p.addrB,
      roleHint: 'primary',
      nodeId: 'A2',
      config: FAST,
    });
    extra.push(a2);
    void a2.start().catch(() => undefined);
    await sleep(300);
    expect(a2.status().role).toBe('starting');
    expect(b2.status().role).not.toBe('solo-primary');
    // The operator accepts the loss.
    p.cluster.dropRule = undefined;
    await b2.promote({ acceptLoss: true });
    expect(b2.status()).toMatchObject({ role: 'solo-primary', epoch: 2 });
    // It applied what the clients had forwarded to it (a prefix of the history: seq 1 on), and says the rest may be lost.
    const promoted = events.find((e) => e.type === 'promoted') as Extract<ReplicaEvent, { type: 'promoted' }>;
    expect(promoted).toMatchObject({ lostFrom: promoted.appliedSeq + 1, lostTo: 8 });
    expect(b2.state.get('n') ?? null).toBe(promoted.appliedSeq === 0 ? null : String(promoted.appliedSeq));
    await until(() => a2.status().role === 'backup', 'A2 joined the promoted replica');
    const c2 = p.client('C2');
    expect((await c2.call({ op: 'incr', key: 'n' })).value).toBe(String(promoted.appliedSeq + 1));
    await expect(b2.promote({ acceptLoss: false as unknown as true })).rejects.toThrow(/acceptLoss/);
  });
});
