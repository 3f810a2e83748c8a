/** Client-stack behaviour against scripted fake servers (raw protocol), so each reply is under test control. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '@tandem/transport';
import { codec } from '../src/codec.js';
import { createClient } from '../src/client.js';
import type { Message } from '../src/messages.js';
import { TestCluster, until } from './helpers/fault-net.js';
import { FAST, kv, startPair, type Pair } from './helpers/setup.js';
import { ForwardQueue } from '../src/forward-queue.js';
import { resolveConfig } from '../src/config.js';
import { isCoreError, StaleEpochError } from '../src/errors.js';

type Script = (msg: Message, reply: (m: Message) => void, conn: Connection) => void;

/** A fake replica: accepts connections and hands every decoded message to `script`. */
async function fakeServer(cluster: TestCluster, address: string, script: Script): Promise<void> {
  const listener = await cluster.node(`fake-${address}`).env.network.listen(address);
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        for await (const bytes of conn) {
          script(codec.decode(bytes), (m) => void conn.send(codec.encode(m)), conn);
        }
      })();
    }
  })();
}

const rep = (requestId: number, epoch: number, seq: number, value: string): Message => ({
  t: 'rep',
  requestId,
  epoch,
  seq,
  digest: '0000000000000000',
  time: 0,
  seed: 0,
  body: { value, seq },
  replicated: true,
});

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

describe('client', () => {
  it('rejects a reply from an epoch older than one it has seen (stale primary) and waits for a current one', async () => {
    const cluster = new TestCluster();
    let aCount = 0;
    await fakeServer(cluster, 'mem://fa', (m, reply) => {
      if (m.t !== 'req') return;
      aCount++;
      // first call: epoch 2; second call: a deposed primary answering with epoch 1
      reply(rep(m.requestId, aCount === 1 ? 2 : 1, aCount, aCount === 1 ? 'first' : 'stale'));
    });
    await fakeServer(cluster, 'mem://fb', (m, reply) => {
      if (m.t === 'req') reply(rep(m.requestId, 2, 2, 'current'));
    });
    const c = createClient({ service: kv, env: cluster.node('C').env, servers: ['mem://fa', 'mem://fb'], config: FAST });
    expect((await c.call({ op: 'get', key: 'x' })).value).toBe('first');
    const r = await c.callWithInfo({ op: 'get', key: 'x' });
    expect(r.reply.value).toBe('current');
    expect(r.epoch).toBe(2);
    expect(c.staleReplies).toBeGreaterThanOrEqual(1);
    await c.close();
  });

  it('a call that meets only a deposed primary fails at its deadline with ServiceUnavailableError caused by StaleEpochError', async () => {
    const cluster = new TestCluster();
    let aCount = 0;
    await fakeServer(cluster, 'mem://sa', (m, reply) => {
      if (m.t !== 'req') return;
      aCount++;
      // first call: epoch 2; then only a deposed primary answering with epoch 1 (the other replica is gone)
      reply(rep(m.requestId, aCount === 1 ? 2 : 1, aCount, aCount === 1 ? 'first' : 'stale'));
    });
    const c = createClient({
      service: kv,
      env: cluster.node('C').env,
      servers: ['mem://sa', 'mem://sb-none'],
      config: { ...FAST, callDeadlineMs: 200 },
    });
    expect((await c.call({ op: 'get', key: 'x' })).value).toBe('first');
    const err = await c.call({ op: 'get', key: 'x' }).catch((e: unknown) => e);
    expect(isCoreError(err, 'ServiceUnavailableError')).toBe(true);
    const cause = (err as Error).cause;
    expect(isCoreError(cause, 'StaleEpochError')).toBe(true);
    expect(cause).toBeInstanceOf(StaleEpochError);
    expect(cause).toMatchObject({ epoch: 1, knownEpoch: 2 });
    expect(c.staleReplies).toBeGreaterThanOrEqual(1);
    await c.close();
  });

  it('fails with ServiceUnavailableError after callDeadlineMs when nothing answers', async () => {
    const cluster = new TestCluster();
    const c = createClient({
      service: kv,
      env: cluster.node('C').env,
      servers: ['mem://none1', 'mem://none2'],
      config: { ...FAST, callDeadlineMs: 150 },
    });
    const err = await c.call({ op: 'get', key: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ServiceUnavailableError' });
    // no stale answer met: the cause is the dial error (nothing listens), not a StaleEpochError
    expect((err as Error).cause).toMatchObject({ name: 'ConnectionRefusedError' });
    await c.close();
  });

  it('an invalid request is rejected locally with InvalidRequestError; the primary also refuses to sequence one', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await expect(c.call({ op: 'nope' } as never)).rejects.toMatchObject({ name: 'InvalidRequestError' });
    // bypass the client's check with a raw request
    const conn = await pair.cluster.node('raw').env.network.dial(pair.addrA);
    const replies: Message[] = [];
    void (async () => {
      for await (const b of conn) replies.push(codec.decode(b));
    })();
    await conn.send(codec.encode({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'raw', epoch: 0 }));
    await conn.send(codec.encode({ t: 'req', clientId: 'raw', requestId: 1, body: { op: 'put', key: 5 } }));
    await until(() => replies.length > 0, 'reply');
    expect(replies[0]).toMatchObject({ t: 'rep', seq: 0, error: { name: 'InvalidRequestError' } });
    expect(pair.a.status().appliedSeq).toBe(0);
    await conn.close();
  });

  it('a service error becomes ApplicationError, is recorded and replicated without divergence', async () => {
    pair = await startPair();
    const c = pair.client('C');
    const err = await c.call({ op: 'fail', message: 'boom' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ApplicationError', remoteName: 'TypeError', remoteMessage: 'boom' });
    await until(() => pair!.b.status().appliedSeq === 1, 'replicated');
    expect(pair.b.status().divergences).toBe(0);
  });

  it('the forward queue is bounded: full at maxPendingForwards, space again after an ack', async () => {
    const cluster = new TestCluster();
    const cfg = resolveConfig({ ...FAST, maxPendingForwards: 3, forwardDelayMs: 0, ackTimeoutMs: 1000 });
    const sent: Uint8Array[] = [];
    const q = new ForwardQueue(cluster.node('C').env, cfg, { send: (_i, b) => (sent.push(b), true) });
    const entry = (seq: number) => ({ seq, epoch: 1, clientId: 'c', requestId: seq, body: null, time: 0, seed: 0, digest: 'x' });
    q.enqueue(1, [entry(1), entry(2)]);
    q.enqueue(1, [entry(2), entry(3)]); // seq 2 is not queued twice
    expect(q.pending).toBe(3);
    expect(q.isFull).toBe(true);
    let spaced = false;
    void q.whenSpace().then(() => (spaced = true));
    await until(() => sent.length > 0, 'batch sent');
    const fwd = codec.decode(sent[0]!);
    if (fwd.t !== 'fwd') throw new Error('expected fwd');
    expect(fwd.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(spaced).toBe(false);
    q.onAck(fwd.fwdId);
    await until(() => spaced, 'space after ack');
    expect(q.pending).toBe(0);
    q.close();
  });

  it("replyMode 'sync' (the conventional baseline): the backup acknowledges before the client gets the reply, no forward", async () => {
    pair = await startPair({ replyMode: 'sync' });
    const c = pair.client('C');
    const r = await c.callWithInfo({ op: 'incr', key: 'n' });
    const t = pair.cluster.trace;
    const ack = t.findIndex((x) => x.from === 'B' && x.msg.t === 'flushAck' && x.msg.upToSeq >= r.seq);
    const reply = t.findIndex((x) => x.from === 'A' && x.msg.t === 'rep' && x.msg.seq === r.seq);
    expect(ack).toBeGreaterThanOrEqual(0);
    expect(ack).toBeLessThan(reply);
    await c.drain();
    expect(pair.cluster.find((x) => x.from === 'C' && x.msg.t === 'fwd')).toHaveLength(0);
  });
});
