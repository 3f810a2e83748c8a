import { afterEach, describe, expect, it } from 'vitest';
import { until, type TraceRecord } from './helpers/fault-net.js';
import { startPair, type Pair } from './helpers/setup.js';
import type { PiggybackMode } from '../src/api.js';
import { decodeEntries } from '../src/codec.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

describe.each<PiggybackMode>(['entries', 'seq-digest'])('normal path (%s)', (piggyback) => {
  it('replies from the primary and the backup reaches the same state', async () => {
    pair = await startPair({ piggyback });
    const c = pair.client('C');
    for (let i = 0; i < 20; i++) {
      const r = await c.callWithInfo({ op: 'put', key: `k${i}`, value: `v${i}` });
      expect(r.reply.value).toBeNull();
      expect(r.seq).toBe(i + 1);
      expect(r.epoch).toBe(1);
    }
    expect((await c.call({ op: 'get', key: 'k3' })).value).toBe('v3');
    await until(() => pair!.b.status().appliedSeq === 21, 'backup applied everything');
    expect(pair.b.status().stateDigest).toBe(pair.a.status().stateDigest);
    expect(pair.b.state.get('k19')).toBe('v19');
    expect(pair.b.status().divergences).toBe(0);
    expect(pair.a.status().role).toBe('primary');
    expect(pair.b.status().role).toBe('backup');
  });

  it('hands the reply to the application before the forward is sent', async () => {
    pair = await startPair({ piggyback, flushIntervalMs: 25, heartbeatTimeoutMs: 200 });
    const c = pair.client('C');
    const { cluster } = pair;
    await c.call({ op: 'put', key: 'warm', value: 'up' });
    await c.drain();
    let traceAtThen = -1;
    await c.call({ op: 'put', key: 'x', value: '1' }).then(() => {
      traceAtThen = cluster.trace.length;
    });
    await c.drain();
    const fwd = cluster.trace.findIndex(
      (r: TraceRecord) =>
        r.from === 'C' &&
        r.msg.t === 'fwd' &&
        [...r.msg.entries, ...(r.msg.packed ?? []).flatMap((p) => decodeEntries(p.bytes))].some((e) => e.seq === 2),
    );
    expect(fwd).toBeGreaterThanOrEqual(0);
    expect(traceAtThen).toBeGreaterThan(0);
    expect(traceAtThen).toBeLessThanOrEqual(fwd); // the app's then() ran before the fwd was sent
    const rep = cluster.trace.findIndex((r) => r.from === 'A' && r.msg.t === 'rep' && r.msg.seq === 2);
    expect(rep).toBeLessThan(fwd);
    // …and the backup acknowledged the forward
    expect(cluster.trace.some((r) => r.from === 'B' && r.msg.t === 'fwdAck')).toBe(true);
  });

  it('reply carries the state information of the piggyback mode', async () => {
    pair = await startPair({ piggyback, flushIntervalMs: 50, heartbeatTimeoutMs: 400 });
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'a', value: '1' });
    await c.call({ op: 'put', key: 'b', value: '2' });
    const reps = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep');
    const last = reps[reps.length - 1]!.msg;
    if (last.t !== 'rep') throw new Error('not a rep');
    expect(last.digest).toMatch(/^[0-9a-f]{16}$/);
    if (piggyback === 'entries') {
      expect(decodeEntries(last.entries!).map((e) => e.seq)).toContain(2);
    } else {
      expect(last.entries).toBeUndefined();
    }
  });
});
