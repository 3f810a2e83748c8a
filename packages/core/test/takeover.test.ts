import { afterEach, describe, expect, it } from 'vitest';
import { startPair, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

describe('takeover', () => {
  it('backup takes over after heartbeat silence with a higher epoch and keeps the state', async () => {
    pair = await startPair();
    const c = pair.client('C');
    for (let i = 0; i < 10; i++) await c.call({ op: 'incr', key: 'n' });
    pair.nodeA.crash();
    const r = await c.callWithInfo({ op: 'incr', key: 'n' });
    expect(r.reply.value).toBe('11');
    expect(r.epoch).toBe(2);
    expect(pair.b.status()).toMatchObject({ role: 'solo-primary', epoch: 2, appliedSeq: 11 });
    const takeover = pair.events.b.find((e) => e.type === 'takeover');
    expect(takeover).toMatchObject({ type: 'takeover', epoch: 2, appliedSeq: 10 });
  });

  it('heartbeats (empty flushes) keep the backup from taking over while the primary is idle', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'k', value: 'v' });
    const before = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'flush' && r.msg.entries.length === 0).length;
    await new Promise((r) => setTimeout(r, 300)); // several heartbeat timeouts of idleness
    const heartbeats = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'flush' && r.msg.entries.length === 0).length;
    expect(heartbeats).toBeGreaterThan(before + 5);
    expect(pair.b.status().role).toBe('backup');
    expect(pair.events.b.some((e) => e.type === 'takeover')).toBe(false);
  });
});
