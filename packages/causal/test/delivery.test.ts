// The pure core, message by message: the test decides what arrives when.
import { describe, expect, it } from 'vitest';
import {
  CausalDelivery,
  isCausalBufferFullError,
  isCausalClosedError,
  isCausalProtocolError,
  stampSize,
  type CausalMessage,
} from '../src/index.js';
import { members, type Msg } from './helpers/members.js';
import { VirtualClock } from './helpers/virtual-clock.js';

describe('point-to-point causal delivery (Schiper–Eggli–Sandoz)', () => {
  it("FIG. 4b: Pro3 processes the initialisation from Pro2 before Pro1's use, even when Pro2's message is late (408')", () => {
    const { m } = members(['pro1', 'pro2', 'pro3']);
    const { pro1, pro2, pro3 } = m as Required<typeof m>;
    const request = pro1!.core.send('pro2', 'request resource'); // 406
    pro2!.core.receive(request);
    const init = pro2!.core.send('pro3', 'initialise'); // 408: sent before the reply, so it precedes it causally
    const reply = pro2!.core.send('pro1', 'resource ready'); // 407, at once: no round trip to Pro3
    pro1!.core.receive(reply);
    const use = pro1!.core.send('pro3', 'use resource'); // 409
    expect(pro3!.core.receive(use).status).toBe('held'); // 408 is still on its way (408')
    expect(pro3!.log).toEqual([]);
    expect(pro3!.core.heldMessages()).toEqual([
      {
        id: { from: 'pro1', kind: 'direct', seq: 2 },
        heldSince: 0,
        missing: [{ from: 'pro2', kind: 'direct', after: 0, upTo: 1, held: false }],
      },
    ]);
    const outcome = pro3!.core.receive(init);
    expect(outcome).toEqual({ status: 'delivered', id: { from: 'pro2', kind: 'direct', seq: 1 }, delivered: 2 });
    expect(pro3!.log).toEqual(['initialise', 'use resource']);
    expect(pro3!.core.held).toBe(0);
  });

  it("concurrent messages are not ordered: had Pro2 replied before initialising, Pro3 could take Pro1's message first", () => {
    const { m } = members(['pro1', 'pro2', 'pro3']);
    const { pro1, pro2, pro3 } = m as Required<typeof m>;
    pro2!.core.receive(pro1!.core.send('pro2', 'request'));
    const reply = pro2!.core.send('pro1', 'ready');
    const init = pro2!.core.send('pro3', 'initialise');
    pro1!.core.receive(reply);
    expect(pro3!.core.receive(pro1!.core.send('pro3', 'use')).status).toBe('delivered');
    expect(pro3!.core.receive(init).status).toBe('delivered');
    expect(pro3!.log).toEqual(['use', 'initialise']);
  });

  it('FIFO between two members: later direct messages wait for earlier ones', () => {
    const { m } = members(['a', 'b']);
    const sent = ['1', '2', '3', '4'].map((p) => m.a!.core.send('b', p));
    for (const i of [3, 1, 2, 0]) m.b!.core.receive(sent[i]!);
    expect(m.b!.log).toEqual(['1', '2', '3', '4']);
  });

  it('a transitive chain across four members', () => {
    const { m } = members(['a', 'b', 'c', 'd']);
    const toD1 = m.a!.core.send('d', 'a→d');
    m.b!.core.receive(m.a!.core.send('b', 'a→b'));
    m.c!.core.receive(m.b!.core.send('c', 'b→c'));
    const toD2 = m.c!.core.send('d', 'c→d');
    expect(m.d!.core.receive(toD2).status).toBe('held');
    m.d!.core.receive(toD1);
    expect(m.d!.log).toEqual(['a→d', 'c→d']);
  });

  it('in-transit metadata is purged: a long request/reply exchange keeps stamps small', () => {
    const { m } = members(['client', 'server', 'other']);
    let last: Msg | undefined;
    for (let i = 0; i < 200; i++) {
      m.server!.core.receive(m.client!.core.send('server', `req ${i}`));
      last = m.server!.core.send('client', `rep ${i}`);
      m.client!.core.receive(last);
    }
    expect(last!.stamp.inTransit).toEqual([]); // the client's request was acknowledged by the reply itself
    // header, from, to, and the direct vector [200, 200, 0] written dense (6 bytes); no broadcast vector, no in-transit set
    expect(stampSize(last!.stamp)).toBe(9);
    const req = m.client!.core.send('server', 'req');
    expect(req.stamp.inTransit).toEqual([]);
  });
});

describe('group multicast (CBCAST)', () => {
  it('delivers m from j when VT(m)[j] = VT(p)[j] + 1 and VT(m)[k] ≤ VT(p)[k] otherwise', () => {
    const { m } = members(['a', 'b', 'c']);
    const b1 = m.a!.core.broadcast('a1');
    m.b!.core.receive(b1);
    const b2 = m.b!.core.broadcast('b1 after a1');
    expect(m.c!.core.receive(b2).status).toBe('held');
    expect(m.c!.core.heldMessages()[0]!.missing).toEqual([{ from: 'a', kind: 'broadcast', after: 0, upTo: 1, held: false }]);
    expect(m.c!.core.receive(b1).delivered).toBe(2);
    expect(m.c!.log).toEqual(['a1', 'b1 after a1']);
    expect(m.c!.core.broadcastClock().toArray()).toEqual([1, 1, 0]);
  });

  it('FIFO per sender; concurrent broadcasts in arrival order', () => {
    const { m } = members(['a', 'b', 'c']);
    const a = ['a1', 'a2', 'a3'].map((p) => m.a!.core.broadcast(p));
    const b = m.b!.core.broadcast('b1');
    m.c!.core.receive(a[2]!);
    m.c!.core.receive(a[1]!);
    m.c!.core.receive(b);
    m.c!.core.receive(a[0]!);
    expect(m.c!.log).toEqual(['b1', 'a1', 'a2', 'a3']);
  });

  it('causal order holds across kinds: a direct message after a broadcast, a broadcast after a direct message', () => {
    const { m } = members(['a', 'b', 'c']);
    const direct = m.a!.core.send('c', 'a→c');
    const bcast = m.a!.core.broadcast('a: all');
    m.b!.core.receive(bcast);
    const fromB = m.b!.core.send('c', 'b→c after a: all');
    expect(m.c!.core.receive(fromB).status).toBe('held'); // needs a's broadcast
    expect(m.c!.core.receive(bcast).status).toBe('held'); // which needs a's earlier direct message
    expect(m.c!.core.receive(direct).delivered).toBe(3);
    expect(m.c!.log).toEqual(['a→c', 'a: all', 'b→c after a: all']);
  });

  it('the sender does not deliver its own broadcast', () => {
    const { m } = members(['a', 'b']);
    m.a!.core.broadcast('x');
    expect(m.a!.log).toEqual([]);
  });
});

describe('duplicates', () => {
  it('a retransmission of a delivered or held message is dropped', () => {
    const { m } = members(['a', 'b', 'c']);
    const d1 = m.a!.core.send('b', 'd1');
    const d2 = m.a!.core.send('b', 'd2');
    const bc = m.c!.core.broadcast('bc');
    expect(m.b!.core.receive(d2).status).toBe('held');
    expect(m.b!.core.receive(d2).status).toBe('duplicate');
    expect(m.b!.core.receive(d1).status).toBe('delivered');
    expect(m.b!.core.receive(d1).status).toBe('duplicate');
    expect(m.b!.core.receive(d2).status).toBe('duplicate');
    expect(m.b!.core.receive(bc).status).toBe('delivered');
    expect(m.b!.core.receive(bc).status).toBe('duplicate');
    expect(m.b!.log).toEqual(['d1', 'd2', 'bc']);
    expect(m.b!.core.stats().duplicates).toBe(4);
  });
});

describe('gap reports', () => {
  it('a message held past the deadline yields one CausalGapError naming what it waits for, and stays held', () => {
    const { clock, m } = members(['a', 'b', 'c'], { gapTimeoutMs: 1_000 });
    const lost = m.a!.core.send('c', 'lost');
    m.b!.core.receive(m.a!.core.send('b', 'a→b'));
    clock.runUntil(300);
    expect(m.c!.core.receive(m.b!.core.send('c', 'b→c')).status).toBe('held');
    clock.runUntil(1_299);
    expect(m.c!.gaps).toEqual([]);
    clock.runUntil(1_300);
    expect(m.c!.gaps).toHaveLength(1);
    const gap = m.c!.gaps[0]!;
    expect(gap.name).toBe('CausalGapError');
    expect(gap).toMatchObject({
      member: 'c',
      waiting: { from: 'b', kind: 'direct', seq: 1 },
      missing: [{ from: 'a', kind: 'direct', after: 0, upTo: 1, held: false }],
      heldSince: 300,
      waitedMs: 1_000,
    });
    expect(gap.message).toBe("c has held b's direct #1 for 1000 ms, waiting for a's direct #1 (not received)");
    clock.runUntil(100_000);
    expect(m.c!.gaps).toHaveLength(1); // once
    expect(m.c!.log).toEqual([]);
    m.c!.core.receive(lost); // late, but not too late
    expect(m.c!.log).toEqual(['lost', 'b→c']);
  });

  it('no report for a message delivered before its deadline; deadlines are per message', () => {
    const { clock, m } = members(['a', 'b'], { gapTimeoutMs: 100 });
    const [x, y, z, w1, w2] = ['x', 'y', 'z', 'w1', 'w2'].map((p) => m.a!.core.send('b', p));
    m.b!.core.receive(y!); // held at 0, deadline 100
    clock.runUntil(50);
    m.b!.core.receive(x!); // releases y before its deadline
    clock.runUntil(80);
    m.b!.core.receive(w2!); // held at 80, deadline 180
    clock.runUntil(179);
    expect(m.b!.gaps).toEqual([]);
    clock.runUntil(180);
    expect(m.b!.gaps.map((g) => [g.waiting.seq, g.heldSince, g.waitedMs, g.missing])).toEqual([
      [5, 80, 100, [{ from: 'a', kind: 'direct', after: 2, upTo: 4, held: false }]],
    ]);
    m.b!.core.receive(z!);
    m.b!.core.receive(w1!);
    expect(m.b!.log).toEqual(['x', 'y', 'z', 'w1', 'w2']);
    clock.runUntil(10_000);
    expect(m.b!.gaps).toHaveLength(1);
  });

  it('a long wait behind many short ones: each reported at its own deadline, once', () => {
    const { clock, m } = members(['a', 'b', 'c'], { gapTimeoutMs: 10_000 });
    m.a!.core.send('c', 'lost');
    m.c!.core.receive(m.a!.core.send('c', 'stuck')); // held at 0, for good
    for (let i = 0; i < 3_000; i++) {
      const first = m.b!.core.send('c', `b${2 * i}`);
      m.c!.core.receive(m.b!.core.send('c', `b${2 * i + 1}`)); // held a moment…
      m.c!.core.receive(first); // …and released
      clock.runUntil(clock.now() + 1);
    }
    expect(m.c!.log).toHaveLength(6_000);
    clock.runUntil(9_999);
    expect(m.c!.gaps).toEqual([]);
    clock.runUntil(20_000);
    expect(m.c!.gaps.map((g) => [g.waiting.from, g.heldSince, g.waitedMs])).toEqual([['a', 0, 10_000]]);
  });

  it('a held message that waits for a held one says so (the root cause is further back)', () => {
    const { clock, m } = members(['a', 'b', 'c'], { gapTimeoutMs: 10 });
    m.a!.core.send('c', 'lost');
    const second = m.a!.core.send('c', 'second');
    m.b!.core.receive(m.a!.core.send('b', 'a→b'));
    const fromB = m.b!.core.send('c', 'b→c');
    m.c!.core.receive(second);
    m.c!.core.receive(fromB);
    clock.runUntil(10);
    expect(m.c!.gaps.map((g) => g.missing)).toEqual([
      [{ from: 'a', kind: 'direct', after: 0, upTo: 1, held: false }],
      [{ from: 'a', kind: 'direct', after: 0, upTo: 2, held: true }],
    ]);
  });

  it('discard() drops what is held from one member', () => {
    const { clock, m } = members(['a', 'b'], { gapTimeoutMs: 10 });
    m.a!.core.send('b', 'lost');
    m.b!.core.receive(m.a!.core.send('b', 'x'));
    m.b!.core.receive(m.a!.core.send('b', 'y'));
    expect(m.b!.core.discard('a')).toBe(2);
    expect(m.b!.core.held).toBe(0);
    expect(m.b!.core.heldBytes).toBe(0);
    clock.runUntil(100);
    expect(m.b!.gaps).toEqual([]);
  });

  it("after discard() the other members' held messages are still delivered when their predecessors come", () => {
    const { m } = members(['a', 'b', 'c']);
    m.a!.core.send('c', 'lost');
    m.c!.core.receive(m.a!.core.send('c', 'a2'));
    const b1 = m.b!.core.send('c', 'b1');
    m.c!.core.receive(m.b!.core.send('c', 'b2'));
    expect(m.c!.core.held).toBe(2);
    expect(m.c!.core.discard('a')).toBe(1);
    m.c!.core.receive(b1);
    expect(m.c!.log).toEqual(['b1', 'b2']);
    expect(m.c!.core.held).toBe(0);
  });
});

describe('bounded memory', () => {
  function flood(limits: { maxHeldMessages?: number; maxHeldBytes?: number; maxHeldPerSender?: number }) {
    const { m } = members(['a', 'b', 'c'], limits);
    const first = m.a!.core.send('c', 'first');
    const fromA = Array.from({ length: 20 }, (_, i) => m.a!.core.send('c', `a${i}`));
    m.b!.core.receive(m.a!.core.send('b', 'to b'));
    const fromB = Array.from({ length: 5 }, (_, i) => m.b!.core.send('c', `b${i}`));
    return { m, first, fromA, fromB };
  }

  it('refuses past maxHeldMessages with a typed error naming the sender; a deliverable message is always taken', () => {
    const { m, first, fromA, fromB } = flood({ maxHeldMessages: 5 });
    const outcomes = fromA.map((x) => m.c!.core.receive(x));
    expect(outcomes.filter((o) => o.status === 'held')).toHaveLength(5);
    const refused = outcomes.filter((o) => o.status === 'refused');
    expect(refused).toHaveLength(15);
    const error = refused[0]!.error!;
    expect(isCausalBufferFullError(error)).toBe(true);
    expect(error).toMatchObject({ name: 'CausalBufferFullError', buffer: 'held', member: 'a', limit: 'messages', max: 5 });
    expect(m.c!.core.receive(fromB[0]!).status).toBe('refused');
    expect(m.c!.core.held).toBe(5);
    expect(m.c!.core.receive(first).status).toBe('delivered'); // full, yet deliverable: taken, and releases 5
    expect(m.c!.log).toEqual(['first', 'a0', 'a1', 'a2', 'a3', 'a4']);
    for (const x of [...fromA, ...fromB]) m.c!.core.receive(x); // retransmissions
    expect(m.c!.log).toHaveLength(26);
    expect(m.c!.core.stats()).toMatchObject({ refused: 16, maxHeldSeen: 5, held: 0 });
  });

  it('maxHeldPerSender keeps one flooding sender from taking the whole buffer', () => {
    const { m, fromA, fromB } = flood({ maxHeldMessages: 10, maxHeldPerSender: 3 });
    const a = fromA.map((x) => m.c!.core.receive(x).status);
    expect(a.filter((s) => s === 'held')).toHaveLength(3);
    expect(m.c!.core.receive(fromA[5]!).error).toMatchObject({ limit: 'perSender', max: 3, member: 'a' });
    expect(fromB.map((x) => m.c!.core.receive(x).status)).toEqual(['held', 'held', 'held', 'refused', 'refused']);
  });

  it('maxHeldBytes counts payload and metadata', () => {
    const { m, fromA } = flood({ maxHeldBytes: 1_000 });
    const statuses = fromA.map((x) => m.c!.core.receive(x).status);
    const held = statuses.filter((s) => s === 'held').length;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(20);
    expect(m.c!.core.heldBytes).toBeLessThanOrEqual(1_000);
    expect(m.c!.core.receive(fromA[19]!).error).toMatchObject({ limit: 'bytes', max: 1_000 });
  });
});

describe('misuse and malformed input', () => {
  it('rejects strangers, self-sends, misaddressed and own messages', () => {
    const { m } = members(['a', 'b', 'c']);
    expect(() => m.a!.core.send('z', 'x')).toThrow(RangeError);
    expect(() => m.a!.core.send('a', 'x')).toThrow(RangeError);
    const toB = m.a!.core.send('b', 'x');
    expect(() => m.c!.core.receive(toB)).toThrow(expect.objectContaining({ name: 'CausalProtocolError' }));
    expect(() => m.a!.core.receive(toB)).toThrow(expect.objectContaining({ name: 'CausalProtocolError' }));
    const bad: CausalMessage<string> = { payload: 'x', stamp: { ...toB.stamp, direct: [0, 0, 0] } };
    try {
      m.b!.core.receive(bad);
      expect.unreachable();
    } catch (err) {
      expect(isCausalProtocolError(err)).toBe(true);
    }
    expect(() => new CausalDelivery({ self: 'x', members: ['a'], env: new VirtualClock(), deliver: () => {} })).toThrow(RangeError);
    expect(() => new CausalDelivery({ self: 'a', members: ['a', 'a'], env: new VirtualClock(), deliver: () => {} })).toThrow(RangeError);
    expect(() => new CausalDelivery({ self: 'a', members: ['a'], env: new VirtualClock(), deliver: () => {}, gapTimeoutMs: -1 })).toThrow(
      RangeError,
    );
  });

  it('receive() from inside a delivery callback is refused; a throwing callback does not lose later deliveries', () => {
    const inner: Msg[] = [];
    const { m } = members(['a', 'b'], {
      onDeliver: (self, d) => {
        if (self === 'b' && d.payload === '1') {
          expect(() => m.b!.core.receive(inner[0]!)).toThrow(/inside a delivery callback/);
          throw new Error('application bug');
        }
      },
    });
    const one = m.a!.core.send('b', '1');
    const two = m.a!.core.send('b', '2');
    inner.push(two);
    m.b!.core.receive(two);
    expect(() => m.b!.core.receive(one)).toThrow('application bug');
    expect(m.b!.log).toEqual(['1', '2']);
  });

  it('sends from inside a delivery callback depend on the message being delivered', () => {
    const { m } = members(['a', 'b', 'c'], {
      onDeliver: (self, d) => {
        if (self === 'b') forwarded.push(m.b!.core.send('c', `fwd ${d.payload}`));
      },
    });
    const forwarded: Msg[] = [];
    const direct = m.a!.core.send('c', 'a→c');
    m.b!.core.receive(m.a!.core.send('b', 'x'));
    expect(m.c!.core.receive(forwarded[0]!).status).toBe('held');
    m.c!.core.receive(direct);
    expect(m.c!.log).toEqual(['a→c', 'fwd x']);
  });

  it('close() drops held messages and refuses further use with CausalClosedError', () => {
    const { clock, m } = members(['a', 'b'], { gapTimeoutMs: 10 });
    m.a!.core.send('b', 'lost');
    m.b!.core.receive(m.a!.core.send('b', 'x'));
    m.b!.core.close();
    m.b!.core.close();
    clock.runUntil(100);
    expect(m.b!.gaps).toEqual([]);
    expect(m.b!.core.closed).toBe(true);
    try {
      m.b!.core.send('a', 'y');
      expect.unreachable();
    } catch (err) {
      expect(isCausalClosedError(err)).toBe(true);
    }
  });

  it("restoring a snapshot checks that it is this member's state in this group", () => {
    const { m } = members(['a', 'b']);
    const x = m.a!.core.send('b', 'x');
    m.b!.core.receive(x);
    const state = JSON.parse(JSON.stringify(m.b!.core.snapshot()));
    const make = (self: string, ids: string[], st: unknown) => () =>
      new CausalDelivery<string>({ self, members: ids, env: new VirtualClock(), deliver: () => {}, state: st as never });
    expect(make('b', ['a', 'b'], state)().directClock().toArray()).toEqual([1, 0]);
    expect(make('a', ['a', 'b'], state)).toThrow(expect.objectContaining({ name: 'CausalProtocolError' }));
    expect(make('b', ['a', 'b', 'c'], state)).toThrow(/different member list/);
    expect(make('b', ['a', 'b'], { ...state, direct: [1] })).toThrow(/vectors of 2 counts/);
    const restored = make('b', ['a', 'b'], state)();
    expect(restored.receive(x).status).toBe('duplicate');
    expect(restored.receive(m.a!.core.send('b', 'y')).status).toBe('delivered');
  });
});
