// Every fault hook of the memory network, proven on virtual time (a manual scheduler) with a seeded random.
import { describe, expect, it } from 'vitest';
import { createMemoryNetwork, isTransportError, type Connection, type MemoryNetwork } from '@tandem/transport';
import { flush, ManualScheduler } from './manual-scheduler.js';
import { mulberry32 } from './prng.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface World {
  net: MemoryNetwork;
  clock: ManualScheduler;
  client: Connection;
  server: Connection;
  /** Messages received by the server, as text, in arrival order. */
  atServer: string[];
  atClient: string[];
}

async function world(seed = 1, fromHost = 'a', toHost = 'b'): Promise<World> {
  const clock = new ManualScheduler();
  const net = createMemoryNetwork({ schedule: clock.schedule, random: mulberry32(seed) });
  const listener = await net.listen(`mem://${toHost}`);
  const accepting = listener[Symbol.asyncIterator]().next();
  const dialing = net.host(fromHost).dial(`mem://${toHost}`);
  await clock.advance(0);
  const client = await dialing;
  const server = (await accepting).value as Connection;
  const w: World = { net, clock, client, server, atServer: [], atClient: [] };
  void (async () => {
    for await (const m of server) w.atServer.push(dec.decode(m));
  })();
  void (async () => {
    for await (const m of client) w.atClient.push(dec.decode(m));
  })();
  return w;
}

async function sendAll(conn: Connection, texts: string[]): Promise<void> {
  for (const t of texts) void conn.send(enc.encode(t));
  await flush();
}

const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

describe('memory network fault injection', () => {
  it('delay: a message arrives exactly delayMs later on the injected clock', async () => {
    const w = await world();
    w.net.setLinkFaults('a', 'b', { delayMs: 100 });
    await sendAll(w.client, ['late']);
    await w.clock.advance(99);
    expect(w.atServer).toEqual([]);
    await w.clock.advance(1);
    expect(w.atServer).toEqual(['late']);
  });

  it('jitter: delays vary per message but order is kept', async () => {
    const w = await world(3);
    w.net.setLinkFaults('*', '*', { delayMs: 10, jitterMs: 50 });
    await sendAll(w.client, numbered(200));
    let arrivalSteps = 0;
    for (let t = 0; t < 70; t++) {
      const before = w.atServer.length;
      await w.clock.advance(1);
      if (w.atServer.length > before) arrivalSteps++;
      if (t < 9) expect(w.atServer).toEqual([]); // nothing before the fixed delay
    }
    expect(arrivalSteps).toBeGreaterThan(1); // spread over time, not one burst
    expect(w.atServer).toEqual(numbered(200));
  });

  it('drop: dropRate 1 loses everything (sends still succeed); 0.5 loses a seed-determined subset', async () => {
    const all = await world();
    all.net.setLinkFaults('a', 'b', { dropRate: 1 });
    await Promise.all(numbered(10).map((t) => all.client.send(enc.encode(t))));
    await all.clock.advance(10);
    expect(all.atServer).toEqual([]);
    expect(all.net.stats.dropped).toBe(10);

    const run = async (seed: number): Promise<string[]> => {
      const w = await world(seed);
      w.net.setLinkFaults('a', 'b', { dropRate: 0.5 });
      await sendAll(w.client, numbered(100));
      await w.clock.advance(10);
      return w.atServer;
    };
    const first = await run(42);
    expect(first.length).toBeGreaterThan(20);
    expect(first.length).toBeLessThan(80);
    expect(await run(42)).toEqual(first); // same seed, same losses
    expect(await run(43)).not.toEqual(first);
    // what survives keeps its order
    expect(first).toEqual(numbered(100).filter((m) => first.includes(m)));
  });

  it('duplicate: duplicateRate 1 delivers every message twice, in order', async () => {
    const w = await world();
    w.net.setLinkFaults('a', 'b', { duplicateRate: 1 });
    await sendAll(w.client, ['x', 'y']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual(['x', 'x', 'y', 'y']);
    expect(w.net.stats.duplicated).toBe(2);
  });

  it('reorder: a reordered message is delivered after the next one; a lone one after a short hold', async () => {
    const w = await world();
    w.net.setLinkFaults('a', 'b', { reorderRate: 1 });
    await sendAll(w.client, ['first']);
    w.net.setLinkFaults('a', 'b', {});
    await sendAll(w.client, ['second']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual(['second', 'first']);

    w.net.setLinkFaults('a', 'b', { reorderRate: 1 });
    await sendAll(w.client, ['alone']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual(['second', 'first']);
    await w.clock.advance(10);
    expect(w.atServer).toEqual(['second', 'first', 'alone']);
    expect(w.net.stats.reordered).toBe(2);
  });

  it('faults are directional and the most specific setting wins', async () => {
    const w = await world();
    w.net.setLinkFaults('*', '*', { dropRate: 1 });
    w.net.setLinkFaults('b', 'a', { dropRate: 0 });
    await sendAll(w.client, ['up']);
    await sendAll(w.server, ['down']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual([]);
    expect(w.atClient).toEqual(['down']);
    w.net.clearFaults();
    await sendAll(w.client, ['up again']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual(['up again']);
  });

  it('sever: both ends close at once with by "remote", reason "severed"; messages in flight are lost', async () => {
    const w = await world();
    w.net.setLinkFaults('a', 'b', { delayMs: 50 });
    await sendAll(w.client, ['in flight']);
    expect(w.net.sever('a', 'b')).toBe(1);
    const [c, s] = await Promise.all([w.client.closed, w.server.closed]);
    expect(c).toEqual({ by: 'remote', reason: 'severed' });
    expect(s).toEqual({ by: 'remote', reason: 'severed' });
    await w.clock.advance(100);
    expect(w.atServer).toEqual([]);
    const err = await w.client.send(enc.encode('after')).catch((e: unknown) => e);
    expect(isTransportError(err, 'ConnectionClosedError')).toBe(true);
    expect(w.net.sever('a', 'b')).toBe(0);
  });

  it('partition: traffic between groups is lost and dials time out; other hosts are unaffected; heal restores', async () => {
    const w = await world(1, 'a', 'b');
    const other = await w.net.listen('mem://c');
    const otherAccept = other[Symbol.asyncIterator]().next();
    w.net.partition(['a'], ['b']);
    await sendAll(w.client, ['blocked']);
    await w.clock.advance(10);
    expect(w.atServer).toEqual([]);
    expect(w.net.stats.blocked).toBe(1);

    const dialB = w.net
      .host('a')
      .dial('mem://b', { timeoutMs: 1000 })
      .catch((e: unknown) => e);
    const dialC = w.net.host('a').dial('mem://c', { timeoutMs: 1000 });
    await w.clock.advance(999);
    expect((await otherAccept).done).toBe(false); // c is in no group: reachable
    await dialC;
    await w.clock.advance(1);
    expect(isTransportError(await dialB, 'TimeoutError')).toBe(true);

    w.net.heal();
    await sendAll(w.client, ['through']);
    await w.clock.advance(0);
    expect(w.atServer).toEqual(['through']);
  });

  it('backpressure: a send waits while the receiver leaves more than its high-water mark unread', async () => {
    const clock = new ManualScheduler();
    const net = createMemoryNetwork({ schedule: clock.schedule });
    const listener = await net.listen('mem://slow', { receiveHighWaterMark: 1000 });
    const accepting = listener[Symbol.asyncIterator]().next();
    const dialing = net.dial('mem://slow');
    await clock.advance(0);
    const client = await dialing;
    const server = (await accepting).value as Connection;
    let settled = 0;
    for (let i = 0; i < 10; i++) void client.send(new Uint8Array(400)).then(() => settled++);
    await clock.advance(10);
    expect(settled).toBeLessThan(10); // nobody reads: the sender is held back
    const held = settled;
    const reader = server[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) {
      const r = reader.next();
      await clock.advance(1);
      expect((await r).value!.byteLength).toBe(400);
    }
    expect(settled).toBe(10);
    expect(held).toBeGreaterThan(0);
  });

  it('is deterministic: the same seed gives the same deliveries under every fault at once', async () => {
    const run = async (seed: number): Promise<string> => {
      const w = await world(seed);
      w.net.setLinkFaults('*', '*', { delayMs: 1, jitterMs: 5, dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.2 });
      await sendAll(w.client, numbered(200));
      await sendAll(w.server, numbered(200));
      await w.clock.advance(100);
      return `${w.atServer.join(',')}|${w.atClient.join(',')}`;
    };
    const a = await run(7);
    expect(await run(7)).toBe(a);
    expect(await run(8)).not.toBe(a);
  });
});
