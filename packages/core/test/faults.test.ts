/**
 * Every fault case of the patent (and DESIGN.md's fault model) as a named test, in-process over a
 * in-memory transport (@tandem/transport) with fault injection (crash = SIGKILL-like, pause = SIGSTOP-like, drop, duplicate).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PiggybackMode } from '../src/api.js';
import { decodeEntries } from '../src/codec.js';
import { sleep, until } from './helpers/fault-net.js';
import { startPair, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

/** A deterministic PRNG for drop decisions (test code). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('flush', () => {
  it('flushes by count: the Nth unflushed entry triggers a flush right after its reply', async () => {
    pair = await startPair({ flushMaxEntries: 4, flushIntervalMs: 200, heartbeatTimeoutMs: 1000, maxUnackedEntries: 100 });
    const c = pair.client('C');
    const flushesBefore = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'flush').length;
    for (let i = 0; i < 4; i++) await c.call({ op: 'incr', key: 'n' });
    const trace = pair.cluster.trace;
    const rep4 = trace.findIndex((r) => r.from === 'A' && r.msg.t === 'rep' && r.msg.seq === 4);
    const next = trace.slice(rep4 + 1).find((r) => r.from === 'A');
    expect(next?.msg.t).toBe('flush');
    if (next?.msg.t !== 'flush') throw new Error('unreachable');
    expect(next.msg.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'flush').length).toBe(flushesBefore + 1);
    await until(() => pair!.b.status().appliedSeq === 4, 'backup applied the flush');
  });

  it('flushes by time: a single entry reaches the backup without more traffic', async () => {
    pair = await startPair({ flushMaxEntries: 1000, maxUnackedEntries: 2000 });
    const c = pair.client('C');
    // Lose the client's forward so only the primary's timed flush can deliver the entry.
    pair.cluster.dropRule = ({ msg }) => msg.t === 'fwd';
    await c.call({ op: 'put', key: 'k', value: 'v' });
    await until(() => pair!.b.status().appliedSeq === 1, 'timed flush delivered the entry');
    const flush = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'flush' && r.msg.entries.length > 0)[0];
    expect(flush?.msg.t === 'flush' && flush.msg.entries.map((e) => e.seq)).toEqual([1]);
  });

  it('trims the unacked log when the backup acknowledges', async () => {
    pair = await startPair({ piggyback: 'entries' });
    const c = pair.client('C');
    pair.cluster.dropRule = ({ msg }) => msg.t === 'flushAck' || msg.t === 'fwd';
    // heartbeats are still flowing; with acks lost the log keeps its entries (until retransmits run out)
    await c.call({ op: 'incr', key: 'n' });
    await c.call({ op: 'incr', key: 'n' });
    expect(pair.a.status().unackedEntries).toBe(2);
    const last = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep').pop()!.msg;
    // each entry rides once per connection: the second reply carries only what the first did not
    expect(last.t === 'rep' && decodeEntries(last.entries!).map((e) => e.seq)).toEqual([2]);
    // a client connecting later gets every unacknowledged entry with its first reply
    const late = pair.client('L');
    await late.call({ op: 'get', key: 'n' });
    const first = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep').pop()!.msg;
    expect(first.t === 'rep' && decodeEntries(first.entries!).map((e) => e.seq)).toEqual([1, 2, 3]);
    pair.cluster.dropRule = undefined;
    await until(() => pair!.a.status().unackedEntries === 0, 'log trimmed after flushAck');
    await c.call({ op: 'incr', key: 'n' });
    const after = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep').pop()!.msg;
    expect(after.t === 'rep' && decodeEntries(after.entries!).map((e) => e.seq)).toEqual([4]);
  });
});

describe("'entries' piggyback: each entry once per connection", () => {
  it('after giving up a forward, the client asks for a resync and its next reply carries every unacknowledged entry', async () => {
    pair = await startPair({ flushIntervalMs: 300, heartbeatTimeoutMs: 1000, flushMaxEntries: 100, maxUnackedEntries: 1000 });
    const c = pair.client('C');
    // Forwards are lost (the client gives them up); acks too, so the entries stay unacknowledged at P.
    let fwdLost = true;
    pair.cluster.dropRule = ({ msg }) => (fwdLost && msg.t === 'fwd') || msg.t === 'flushAck';
    await c.call({ op: 'incr', key: 'n' });
    await c.call({ op: 'incr', key: 'n' });
    await until(() => c.pendingForwards === 0, 'forwards given up');
    fwdLost = false;
    await c.call({ op: 'incr', key: 'n' });
    const reqs = pair.cluster.find((r) => r.from === 'C' && r.msg.t === 'req');
    expect(reqs.map((r) => r.msg.t === 'req' && r.msg.resync === true)).toEqual([false, false, true]);
    const last = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep').pop()!.msg;
    expect(last.t === 'rep' && decodeEntries(last.entries!).map((e) => e.seq)).toEqual([1, 2, 3]);
  });
});

describe('exactly once', () => {
  it('dedup on the primary: a retransmitted request gets the recorded reply and is applied once', async () => {
    pair = await startPair();
    const c = pair.client('C');
    let dropped = 0;
    pair.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'rep' && dropped++ === 0;
    const r = await c.callWithInfo({ op: 'incr', key: 'n' });
    expect(r.reply.value).toBe('1');
    expect(r.seq).toBe(1);
    const reqs = pair.cluster.find((x) => x.from === 'C' && x.to === 'A' && x.msg.t === 'req');
    expect(reqs.length).toBeGreaterThanOrEqual(2); // the retransmission reached A
    expect(pair.a.state.get('n')).toBe('1');
    expect(pair.a.status().appliedSeq).toBe(1);
    await until(() => pair!.b.status().appliedSeq === 1, 'backup caught up');
    expect(pair.b.state.get('n')).toBe('1');
  });

  it('dedup after failover: the new primary returns the recorded reply, not a second application', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    // A applies the 2nd incr, its reply is lost, the flush carries it to B, then A dies.
    pair.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'rep';
    const pending = c.callWithInfo({ op: 'incr', key: 'n' });
    await until(() => pair!.b.status().appliedSeq === 2, 'flush delivered seq 2');
    pair.nodeA.crash();
    const r = await pending;
    expect(r.reply.value).toBe('2');
    expect(r.seq).toBe(2); // the recorded reply, same seq
    expect(r.epoch).toBe(2);
    expect(pair.b.state.get('n')).toBe('2');
    expect(pair.b.status().appliedSeq).toBe(2);
  });
});

describe('fault injection (test-only broken variants for simulators)', () => {
  it("'skip-dedup' really applies a retransmission twice — the dedup test above would catch it", async () => {
    pair = await startPair({}, undefined, 'skip-dedup');
    const c = pair.client('C');
    let dropped = 0;
    pair.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'rep' && dropped++ === 0;
    const r = await c.call({ op: 'incr', key: 'n' });
    expect(r.value).toBe('2');
    expect(pair.a.state.get('n')).toBe('2');
  });
});

describe('fault cases', () => {
  it('primary crash before reply: the client retries to both, the backup takes over, applied exactly once', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    await until(() => pair!.b.status().appliedSeq === 1, 'backup has seq 1');
    const p = pair;
    p.cluster.dropRule = ({ from, msg }) => {
      if (from === 'A' && msg.t === 'rep') {
        p.nodeA.crash(); // dies at the moment it would reply
        return true;
      }
      return false;
    };
    const r = await c.callWithInfo({ op: 'incr', key: 'n' });
    expect(r.reply.value).toBe('2');
    expect(r.epoch).toBe(2);
    expect(p.b.state.get('n')).toBe('2');
    // the client re-sent the request to both servers after its timeout
    const toB = p.cluster.find((x) => x.from === 'C' && x.to === 'B' && x.msg.t === 'req');
    expect(toB.length).toBeGreaterThan(0);
  });

  describe.each<PiggybackMode>(['entries', 'seq-digest'])('primary crash after reply, before flush (%s)', (piggyback) => {
    it('the backup gets the entry from the client forward', async () => {
      pair = await startPair({ piggyback });
      const c = pair.client('C');
      await c.call({ op: 'put', key: 'base', value: '0' });
      await until(() => pair!.b.status().appliedSeq === 1, 'backup has seq 1');
      // From now on A's flushes with entries never arrive (A "crashes before flushing").
      pair.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'flush' && msg.entries.length > 0;
      await c.call({ op: 'put', key: 'k', value: 'v' });
      await c.drain(); // the forward was acknowledged by B
      pair.nodeA.crash();
      const r = await c.callWithInfo({ op: 'get', key: 'k' });
      expect(r.reply.value).toBe('v');
      expect(pair.b.state.get('k')).toBe('v');
      expect(r.epoch).toBe(2);
      expect(pair.events.b.some((e) => e.type === 'lost-entries')).toBe(false);
    });
  });

  it('client crash after request: the backup gets the entry from the primary flush', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'warm', value: 'connection' });
    await c.drain();
    const fwdsBefore = pair.cluster.find((r) => r.from === 'C' && r.msg.t === 'fwd').length;
    const p = pair;
    // The client dies once its request has reached the primary (at the moment the reply leaves A).
    p.cluster.dropRule = ({ from, msg }) => {
      if (from === 'A' && msg.t === 'rep' && msg.seq === 2) {
        p.cluster.node('C').crash();
        return true;
      }
      return false;
    };
    void c.call({ op: 'put', key: 'k', value: 'from-dead-client' }).catch(() => undefined);
    await until(() => pair!.b.status().appliedSeq === 2, 'flush delivered the entry');
    expect(pair.b.state.get('k')).toBe('from-dead-client');
    expect(pair.cluster.find((r) => r.from === 'C' && r.msg.t === 'fwd')).toHaveLength(fwdsBefore);
    expect(pair.a.state.get('k')).toBe('from-dead-client');
  });

  it("primary-host crash, 'entries' mode: a surviving client's reply carries the dead client's entry", async () => {
    pair = await startPair({ piggyback: 'entries' });
    const local = pair.client('A-host-client');
    const remote = pair.client('C2');
    // Nothing from the primary's host reaches B any more (flushes with entries, the local client's forwards).
    pair.cluster.dropRule = ({ from, msg }) => (from === 'A' && msg.t === 'flush' && msg.entries.length > 0) || from === 'A-host-client';
    // local's request must reach A: only its outgoing fwd is dropped (the req goes A-host-client → A).
    pair.cluster.dropRule = ({ from, msg }) =>
      (from === 'A' && msg.t === 'flush' && msg.entries.length > 0) || (from === 'A-host-client' && msg.t === 'fwd');
    await local.call({ op: 'put', key: 'local', value: 'L' });
    const r2 = await remote.callWithInfo({ op: 'put', key: 'remote', value: 'R' });
    await remote.drain();
    pair.nodeA.crash();
    pair.cluster.node('A-host-client').crash();
    await until(() => pair!.b.status().role === 'solo-primary', 'B took over');
    expect(pair.b.state.get('local')).toBe('L'); // carried by the remote client's forward
    expect(pair.b.state.get('remote')).toBe('R');
    expect(r2.seq).toBe(2);
    expect(pair.events.b.some((e) => e.type === 'lost-entries')).toBe(false);
  });

  it("primary-host crash, 'seq-digest' mode: the documented gap — the dead client's entry is lost and reported", async () => {
    pair = await startPair({ piggyback: 'seq-digest' });
    const local = pair.client('A-host-client');
    const remote = pair.client('C2');
    pair.cluster.dropRule = ({ from, msg }) =>
      (from === 'A' && msg.t === 'flush' && msg.entries.length > 0) || (from === 'A-host-client' && msg.t === 'fwd');
    await local.call({ op: 'put', key: 'local', value: 'L' });
    const r2 = await remote.callWithInfo({ op: 'put', key: 'remote', value: 'R' });
    await remote.drain();
    pair.nodeA.crash();
    pair.cluster.node('A-host-client').crash();
    await until(() => pair!.b.status().role === 'solo-primary', 'B took over');
    // B holds seq 2 (from the surviving client) but not seq 1: it cannot order seq 2, reports it loudly.
    expect(r2.seq).toBe(2);
    expect(pair.b.state.has('local')).toBe(false);
    expect(pair.b.state.has('remote')).toBe(false);
    const lost = pair.events.b.find((e) => e.type === 'lost-entries');
    expect(lost).toMatchObject({ type: 'lost-entries', seqs: [2] });
  });

  it('message loss and duplication: retransmission recovers, every call applied exactly once', async () => {
    pair = await startPair();
    const c = pair.client('C');
    const rnd = lcg(42);
    const lossy = new Set(['req', 'rep', 'fwd', 'fwdAck', 'flush', 'flushAck', 'notPrimary']);
    pair.cluster.dropRule = ({ msg }) => lossy.has(msg.t) && rnd() < 0.08;
    pair.cluster.duplicateRule = ({ msg }) => lossy.has(msg.t) && rnd() < 0.05;
    const values: string[] = [];
    for (let i = 0; i < 60; i++) values.push((await c.call({ op: 'incr', key: 'n' })).value!);
    expect(values).toEqual(Array.from({ length: 60 }, (_, i) => String(i + 1)));
    expect(pair.cluster.trace.some((r) => r.dropped)).toBe(true);
    pair.cluster.dropRule = undefined;
    pair.cluster.duplicateRule = undefined;
    const serving = [pair.a, pair.b].find((r) => r.status().role.endsWith('primary'))!;
    expect(serving.state.get('n')).toBe('60');
    expect([pair.a, pair.b].every((r) => r.status().divergences === 0)).toBe(true);
  });

  it('backup crash: the primary goes solo and keeps serving', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    pair.nodeB.crash();
    await until(() => pair!.a.status().role === 'solo-primary', 'A solo');
    expect(pair.events.a.some((e) => e.type === 'peer-faulty')).toBe(true);
    for (let i = 0; i < 5; i++) await c.call({ op: 'incr', key: 'n' });
    expect(pair.a.state.get('n')).toBe('6');
    expect(pair.a.status().epoch).toBe(1);
  });

  it('paused primary: the backup takes over; the resumed primary never answers with the old epoch and steps down', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    await c.call({ op: 'incr', key: 'n' });
    p.nodeA.pause();
    const during = c.callWithInfo({ op: 'incr', key: 'n' }); // reaches A while paused, then retried to both
    const r = await during;
    expect(r.epoch).toBe(2);
    expect(p.b.status()).toMatchObject({ role: 'solo-primary', epoch: 2 });
    const resumedAt = p.cluster.trace.length;
    p.nodeA.resume();
    await until(() => p.events.a.some((e) => e.type === 'step-down'), 'A stepped down');
    await until(() => p.a.status().role === 'backup', 'A rejoined as backup');
    const oldEpochReplies = p.cluster.trace.slice(resumedAt).filter((x) => x.from === 'A' && x.msg.t === 'rep');
    expect(oldEpochReplies).toHaveLength(0);
    expect(p.a.status().epoch).toBe(2);
    // the pair works again, now B primary and A backup
    const r2 = await c.callWithInfo({ op: 'incr', key: 'n' });
    expect(r2.reply.value).toBe('3');
    await until(() => p.a.status().appliedSeq === p.b.status().appliedSeq, 'A caught up');
    expect(p.a.status().stateDigest).toBe(p.b.status().stateDigest);
  });
});

describe('rejoin', () => {
  it('a restarted replica finds the active primary, copies its state and becomes backup', async () => {
    pair = await startPair();
    const p = pair;
    const c = p.client('C');
    for (let i = 0; i < 5; i++) await c.call({ op: 'incr', key: 'n' });
    p.nodeA.crash();
    await c.call({ op: 'incr', key: 'n' });
    expect(p.b.status().role).toBe('solo-primary');
    // restart A on a fresh node at the same address
    const { createReplica } = await import('../src/replica.js');
    const { kv, FAST } = await import('./helpers/setup.js');
    const a2 = createReplica({
      service: kv,
      env: p.cluster.node('A2').env,
      listen: p.addrA,
      peer: p.addrB,
      roleHint: 'primary',
      nodeId: 'A',
      config: FAST,
    });
    try {
      await a2.start();
      expect(a2.status().role).toBe('backup');
      await until(() => p.b.status().role === 'primary', 'B primary with backup');
      expect(p.events.b.some((e) => e.type === 'peer-joined')).toBe(true);
      await c.call({ op: 'incr', key: 'n' });
      await until(() => a2.status().appliedSeq === p.b.status().appliedSeq, 'A2 caught up');
      expect(a2.state.get('n')).toBe('7');
      expect(a2.status().stateDigest).toBe(p.b.status().stateDigest);
    } finally {
      await a2.stop();
    }
  });
});

describe.each<PiggybackMode>(['entries', 'seq-digest'])('primary crash under concurrent load (%s)', (piggyback) => {
  it.each([10, 40])('crash after %i ms: every reply any client received is reflected, nothing applied twice', async (ms) => {
    pair = await startPair({ piggyback });
    const p = pair;
    const clients = [p.client('C1'), p.client('C2'), p.client('C3')];
    const got: string[][] = [[], [], []];
    let stop = false;
    const work = Promise.all(
      clients.map(async (c, i) => {
        while (!stop && got[i]!.length < 300) got[i]!.push((await c.call({ op: 'incr', key: `k${i}` })).value!);
      }),
    );
    await sleep(ms);
    p.nodeA.crash();
    await until(() => p.b.status().role === 'solo-primary', 'takeover');
    await sleep(50);
    stop = true;
    await work;
    for (let i = 0; i < 3; i++) {
      // each client's counter went 1, 2, 3, … with no gap and no repeat, and B holds the last value
      expect(got[i]).toEqual(Array.from({ length: got[i]!.length }, (_, k) => String(k + 1)));
      expect(p.b.state.get(`k${i}`)).toBe(String(got[i]!.length));
    }
    expect(p.events.b.some((e) => e.type === 'lost-entries')).toBe(false);
  });
});
