import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineService } from '../src/service.js';
import { until } from './helpers/fault-net.js';
import { startPair, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

let calls = 0;
/** Deliberately non-deterministic: the reply depends on a process-global counter, not on (state, request, ctx). */
const leaky = defineService({
  name: 'kv', // same name as the pair's clients expect
  request: z.object({ op: z.string() }).passthrough(),
  reply: z.object({ value: z.string().nullable(), seq: z.number() }),
  initialState: () => new Map<string, string>(),
  apply: (_state, _req, ctx) => ({ value: String(++calls), seq: ctx.seq }),
  snapshot: (s) => [...s],
  restore: (s) => new Map(s as [string, string][]),
});

describe('divergence detection', () => {
  it('a non-deterministic service is reported loudly on the backup (event + counter)', async () => {
    pair = await startPair({}, leaky as never);
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    await until(() => pair!.b.status().divergences > 0, 'divergence detected');
    const ev = pair.events.b.find((e) => e.type === 'divergence');
    expect(ev).toMatchObject({ type: 'divergence', seq: 1 });
    expect(ev?.type === 'divergence' && ev.expectedDigest !== ev.actualDigest).toBe(true);
  });

  it('a deterministic service using ctx.time and ctx.random() does not diverge', async () => {
    const dice = defineService({
      name: 'kv',
      request: z.object({ op: z.string() }).passthrough(),
      reply: z.object({ value: z.string().nullable(), seq: z.number() }),
      initialState: () => ({ rolls: [] as number[] }),
      apply: (s, _r, ctx) => {
        s.rolls.push(Math.floor(ctx.random() * 6) + ctx.time);
        return { value: `${ctx.random()}@${ctx.time}`, seq: ctx.seq };
      },
      snapshot: (s) => s.rolls,
      restore: (r) => ({ rolls: r as number[] }),
    });
    pair = await startPair({}, dice as never);
    const c = pair.client('C');
    const values = new Set<string>();
    for (let i = 0; i < 10; i++) values.add((await c.call({ op: 'get', key: 'roll' })).value!);
    expect(values.size).toBe(10);
    await until(() => pair!.b.status().appliedSeq === 10, 'replicated');
    expect(pair.b.status().divergences).toBe(0);
    expect(pair.b.status().stateDigest).toBe(pair.a.status().stateDigest);
  });
});

describe('forward cross-check', () => {
  it("a forwarded entry that disagrees with the primary's flush is reported, and the primary's copy wins", async () => {
    pair = await startPair({ piggyback: 'seq-digest', flushIntervalMs: 30, heartbeatTimeoutMs: 300 });
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'a', value: '1' });
    await until(() => pair!.b.status().appliedSeq === 1, 'seq 1 at B');
    // a rogue client forwards a forged seq 3 (B cannot apply it yet: seq 2 is missing)
    const { codec } = await import('../src/codec.js');
    const conn = await pair.cluster.node('rogue').env.network.dial(pair.addrB);
    void (async () => {
      for await (const _ of conn) void _;
    })();
    await conn.send(codec.encode({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'rogue', epoch: 0 }));
    await conn.send(
      codec.encode({
        t: 'fwd',
        fwdId: 1,
        entries: [
          {
            seq: 3,
            epoch: 1,
            clientId: 'rogue',
            requestId: 9,
            body: { op: 'put', key: 'evil', value: 'x' },
            time: 0,
            seed: 0,
            digest: 'ffffffffffffffff',
          },
        ],
      }),
    );
    await c.call({ op: 'put', key: 'b', value: '2' });
    await c.call({ op: 'put', key: 'c', value: '3' });
    await until(() => pair!.b.status().appliedSeq === 3, 'B applied 3');
    expect(pair.b.state.get('c')).toBe('3');
    expect(pair.b.state.has('evil')).toBe(false);
    expect(pair.events.b.some((e) => e.type === 'divergence' && e.seq === 3)).toBe(true);
    expect(pair.b.status().stateDigest).toBe(pair.a.status().stateDigest);
    await conn.close();
  });
});
