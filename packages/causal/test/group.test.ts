// The group API over the real in-memory transport, on virtual time (the network's schedule and the
// group's env are the same VirtualClock).
import { createMemoryNetwork, type MemoryNetwork } from '@tandem/transport';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createCausalGroup,
  isCausalBufferFullError,
  isCausalClosedError,
  type CausalGroup,
  type CausalGroupOptions,
  type Delivery,
} from '../src/index.js';
import { mulberry32, VirtualClock } from './helpers/virtual-clock.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

interface World {
  clock: VirtualClock;
  net: MemoryNetwork;
  groups: Record<string, CausalGroup>;
  /** Per member: "from:payload" in delivery order. */
  log: Record<string, string[]>;
  errors: Record<string, Error[]>;
}

const open: CausalGroup[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

async function world(ids: readonly string[], options: Partial<CausalGroupOptions> = {}, seed = 1): Promise<World> {
  const clock = new VirtualClock();
  const net = createMemoryNetwork({ schedule: clock.schedule, random: mulberry32(seed) });
  const members = Object.fromEntries(ids.map((id) => [id, `mem://${id}`]));
  const w: World = { clock, net, groups: {}, log: {}, errors: {} };
  for (const self of ids) {
    const g = await createCausalGroup({ self, members, transport: net.host(self), env: clock, ...options });
    open.push(g);
    w.groups[self] = g;
    w.log[self] = [];
    w.errors[self] = [];
    g.onDeliver((d: Delivery<Uint8Array>) => w.log[self]!.push(`${d.from}:${dec(d.payload)}`));
    g.onError((e) => w.errors[self]!.push(e));
  }
  await clock.advance(1); // dial and say HELLO
  return w;
}

describe('createCausalGroup over the memory transport', () => {
  it("FIG. 4b: Pro3 delivers Pro2's initialisation before Pro1's use although Pro2→Pro3 is slow", async () => {
    const w = await world(['pro1', 'pro2', 'pro3']);
    const { pro1, pro2 } = w.groups as Required<typeof w.groups>;
    w.net.setLinkFaults('pro2', 'pro3', { delayMs: 50 }); // 408'
    pro2!.onDeliver(({ from }) => {
      pro2!.send('pro3', enc('initialise')); // 408
      pro2!.send(from, enc('resource ready')); // 407, without waiting for Pro3
    });
    pro1!.onDeliver(() => pro1!.send('pro3', enc('use resource'))); // 409
    pro1!.send('pro2', enc('request resource')); // 406
    await w.clock.advance(10);
    expect(w.log.pro1).toEqual(['pro2:resource ready']);
    expect(w.log.pro3).toEqual([]); // Pro1's message is here, held
    expect(w.groups.pro3!.heldMessages()).toMatchObject([{ id: { from: 'pro1' }, missing: [{ from: 'pro2', kind: 'direct' }] }]);
    await w.clock.advance(50);
    expect(w.log.pro3).toEqual(['pro2:initialise', 'pro1:use resource']);
    expect(Object.values(w.errors).flat()).toEqual([]);
  });

  it('broadcasts and direct messages in causal order at every member', async () => {
    const w = await world(['a', 'b', 'c', 'd']);
    w.net.setLinkFaults('a', 'd', { delayMs: 40 });
    w.groups.b!.onDeliver(({ payload }) => {
      if (dec(payload) === 'a:hello') w.groups.b!.broadcast(enc('b saw a:hello'));
    });
    w.groups.c!.onDeliver(({ payload }) => {
      if (dec(payload) === 'b saw a:hello') w.groups.c!.send('d', enc('c→d after b'));
    });
    w.groups.a!.broadcast(enc('a:hello'));
    await w.clock.advance(100);
    expect(w.log.d).toEqual(['a:a:hello', 'b:b saw a:hello', 'c:c→d after b']);
    expect(w.log.c).toEqual(['a:a:hello', 'b:b saw a:hello']);
    expect(w.log.a).toEqual(['b:b saw a:hello']);
  });

  it('lossy, duplicating, reordering links: every message delivered exactly once, in causal order', async () => {
    const w = await world(['a', 'b', 'c'], { retransmitMs: 20 }, 7);
    w.net.setLinkFaults('*', '*', { delayMs: 1, jitterMs: 10, dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.2 });
    const n = 30;
    for (let i = 0; i < n; i++) {
      w.groups.a!.send('c', enc(`a${i}`));
      w.groups.b!.broadcast(enc(`b${i}`));
    }
    await w.clock.advance(5_000);
    const fromA = w.log.c!.filter((x) => x.startsWith('a:'));
    const fromB = w.log.c!.filter((x) => x.startsWith('b:'));
    expect(fromA).toEqual(Array.from({ length: n }, (_, i) => `a:a${i}`));
    expect(fromB).toEqual(Array.from({ length: n }, (_, i) => `b:b${i}`));
    expect(w.log.a).toEqual(Array.from({ length: n }, (_, i) => `b:b${i}`));
    const stats = w.groups.a!.stats();
    expect(stats.links.every((l) => l.unacknowledged === 0)).toBe(true);
    expect(stats.links.some((l) => l.retransmitted > 0)).toBe(true);
    await w.groups.b!.flushed();
  });

  it('a severed connection is redialled and what was in flight is sent again', async () => {
    const w = await world(['a', 'b']);
    w.net.setLinkFaults('a', 'b', { delayMs: 5 });
    for (let i = 0; i < 5; i++) w.groups.a!.send('b', enc(`m${i}`));
    await w.clock.advance(2);
    expect(w.net.sever('a')).toBeGreaterThan(0); // the five are lost in flight
    for (let i = 5; i < 10; i++) w.groups.a!.send('b', enc(`m${i}`));
    await w.clock.advance(1_000);
    expect(w.log.b).toEqual(Array.from({ length: 10 }, (_, i) => `a:m${i}`));
  });

  it("a full held buffer refuses the sender's messages (typed, reported) and they are delivered once there is room", async () => {
    const w = await world(['a', 'b', 'c'], { maxHeldMessages: 2, retransmitMs: 10 });
    w.net.setLinkFaults('a', 'c', { delayMs: 100 });
    w.groups.a!.send('c', enc('first'));
    w.groups.a!.broadcast(enc('then'));
    await w.clock.advance(5);
    for (let i = 0; i < 8; i++) w.groups.b!.send('c', enc(`b${i}`)); // each depends on a's broadcast, itself late
    let maxHeld = 0;
    for (let t = 0; t < 400; t += 5) {
      await w.clock.advance(5);
      maxHeld = Math.max(maxHeld, w.groups.c!.stats().held);
    }
    expect(maxHeld).toBeLessThanOrEqual(2);
    expect(w.errors.c!.some((e) => isCausalBufferFullError(e) && e.buffer === 'held' && e.member === 'b')).toBe(true);
    await w.clock.advance(2_000);
    expect(w.log.c).toEqual(['a:first', 'a:then', ...Array.from({ length: 8 }, (_, i) => `b:b${i}`)]);
    expect(w.groups.b!.stats().links.find((l) => l.peer === 'c')!.refusedByPeer).toBeGreaterThan(0);
  });

  it('a predecessor that never arrives: onGap reports it after the deadline, nothing is delivered out of order', async () => {
    const w = await world(['a', 'b', 'c'], { gapTimeoutMs: 1_000 });
    const gaps: unknown[] = [];
    w.groups.c!.onGap((g) => gaps.push({ waiting: g.waiting, missing: g.missing, waitedMs: g.waitedMs }));
    w.net.partition(['a'], ['c']); // a's messages to c are lost, and its redials time out
    w.groups.a!.send('c', enc('lost'));
    w.groups.a!.send('b', enc('hi'));
    w.groups.b!.onDeliver(() => w.groups.b!.send('c', enc('after a')));
    await w.clock.advance(999);
    expect(gaps).toEqual([]);
    await w.clock.advance(100);
    expect(gaps).toEqual([
      {
        waiting: { from: 'b', kind: 'direct', seq: 1 },
        missing: [{ from: 'a', kind: 'direct', after: 0, upTo: 1, held: false }],
        waitedMs: 1_000,
      },
    ]);
    expect(w.log.c).toEqual([]);
    w.net.heal(); // the link comes back: a redials, resends, c delivers in order
    await w.clock.advance(10_000);
    expect(w.log.c).toEqual(['a:lost', 'b:after a']);
  });

  it('the unacknowledged queue to a peer is bounded: send throws CausalBufferFullError, nothing stamped', async () => {
    const w = await world(['a', 'b'], { maxUnackedMessages: 3 });
    w.net.partition(['a'], ['b']);
    for (let i = 0; i < 3; i++) w.groups.a!.send('b', enc(`m${i}`));
    expect(() => w.groups.a!.send('b', enc('m3'))).toThrow(
      expect.objectContaining({ name: 'CausalBufferFullError', buffer: 'unacknowledged', member: 'b' }),
    );
    expect(() => w.groups.a!.broadcast(enc('x'))).toThrow(expect.objectContaining({ name: 'CausalBufferFullError' }));
    w.net.heal();
    await w.clock.advance(10_000);
    expect(w.log.b).toEqual(['a:m0', 'a:m1', 'a:m2']);
    expect(w.groups.a!.send('b', enc('m3')).seq).toBe(4); // the refused send did not use a number
    await w.clock.advance(100);
    expect(w.log.b).toHaveLength(4);
  });

  it('a member with a different member list is rejected, loudly, on both sides', async () => {
    const clock = new VirtualClock();
    const net = createMemoryNetwork({ schedule: clock.schedule });
    const errors: Error[] = [];
    const a = await createCausalGroup({ self: 'a', members: { a: 'mem://a', b: 'mem://b' }, transport: net.host('a'), env: clock });
    const b = await createCausalGroup({
      self: 'b',
      members: { a: 'mem://a', b: 'mem://b', c: 'mem://c' },
      transport: net.host('b'),
      env: clock,
    });
    open.push(a, b);
    a.onError((e) => errors.push(e));
    b.onError((e) => errors.push(e));
    a.send('b', enc('x'));
    await clock.advance(50);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.name === 'CausalProtocolError')).toBe(true);
    expect(errors.some((e) => /different member list/.test(e.message))).toBe(true);
  });

  it('misuse: strangers, self, closed', async () => {
    const w = await world(['a', 'b']);
    expect(() => w.groups.a!.send('a', enc('x'))).toThrow(RangeError);
    expect(() => w.groups.a!.send('z', enc('x'))).toThrow(RangeError);
    await w.groups.a!.close();
    await w.groups.a!.close();
    try {
      w.groups.a!.broadcast(enc('x'));
      expect.unreachable();
    } catch (err) {
      expect(isCausalClosedError(err)).toBe(true);
    }
    await expect(createCausalGroup({ self: 'x', members: { a: 'mem://a' }, transport: w.net, env: w.clock })).rejects.toThrow(RangeError);
  });

  it('a throwing delivery handler is reported and does not stop other handlers or deliveries', async () => {
    const w = await world(['a', 'b']);
    w.groups.b!.onDeliver(() => {
      throw new Error('handler bug');
    });
    w.groups.a!.send('b', enc('1'));
    w.groups.a!.send('b', enc('2'));
    await w.clock.advance(10);
    expect(w.log.b).toEqual(['a:1', 'a:2']);
    expect(w.errors.b!.map((e) => e.message)).toEqual(['handler bug', 'handler bug']);
  });
});
