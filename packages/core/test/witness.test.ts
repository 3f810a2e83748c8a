/** A replica and its witness (witness-gate.ts): grants, lapses, renewals, releases, an unreachable witness. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicaEvent } from '../src/api.js';
import { sleep, until } from './helpers/fault-net.js';
import { startPair, type Pair } from './helpers/setup.js';
import { WitnessModel } from './helpers/test-witness.js';
import { WitnessGate } from '../src/witness-gate.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

async function soloA(w: WitnessModel): Promise<Pair> {
  const p = await startPair({}, undefined, undefined, { witness: { a: w.handle('A'), b: w.handle('B') } });
  p.nodeB.pause();
  await until(() => p.a.status().role === 'solo-primary', 'A dropped B and serves alone');
  return p;
}

describe('witness', () => {
  it('a primary asks before it drops its backup, and serves alone only once granted', async () => {
    const w = new WitnessModel();
    pair = await soloA(w);
    expect(w.asked.find((a) => a.reason === 'peer-faulty')).toMatchObject({ nodeId: 'A', epoch: 1, answer: 'granted' });
    expect(w.owner).toEqual({ nodeId: 'A', epoch: 1 });
    expect(pair.a.status()).toMatchObject({ role: 'solo-primary' });
  });

  it('a solo primary whose grant lapsed holds requests and steps down when the witness refuses', async () => {
    const w = new WitnessModel();
    pair = await soloA(w);
    const p = pair;
    const c = p.client('C', { callDeadlineMs: 300 });
    await c.call({ op: 'incr', key: 'n' });
    // The lease lapsed and the peer won meanwhile (it took over at epoch 2).
    w.handle('A').lapsed = true;
    w.expire();
    w.decide({ nodeId: 'B', epoch: 2, reason: 'takeover' });
    await expect(c.call({ op: 'incr', key: 'n' })).rejects.toThrow();
    await until(() => p.events.a.some((e: ReplicaEvent) => e.type === 'step-down'), 'A stepped down');
    expect(p.a.status().role).toBe('joining');
    expect(w.asked.some((a) => a.nodeId === 'A' && a.reason === 'renew' && a.answer === 'refused')).toBe(true);
    expect(p.a.state.get('n')).toBe('1'); // the held request was never applied
  });

  it('a lapsed grant that the witness renews answers the held requests', async () => {
    const w = new WitnessModel();
    pair = await soloA(w);
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    w.handle('A').lapsed = true;
    expect(await c.call({ op: 'incr', key: 'n' })).toMatchObject({ value: '2' });
    expect(w.asked.some((a) => a.nodeId === 'A' && a.reason === 'renew' && a.answer === 'granted')).toBe(true);
    expect(pair.a.status().role).toBe('solo-primary');
  });

  it('a solo primary gives the grant up when its backup is back', async () => {
    const w = new WitnessModel();
    pair = await soloA(w);
    const p = pair;
    p.nodeB.resume();
    await until(() => p.a.status().role === 'primary' && p.b.status().role === 'backup', 'B rejoined');
    await until(() => w.released.length > 0, 'grant released');
    expect(w.released[0]).toEqual({ nodeId: 'A', epoch: 1 });
    expect(w.owner).toBeUndefined();
  });

  it('an unreachable witness keeps the primary passive (asking again), not stepped down; it serves alone once answered', async () => {
    const w = new WitnessModel();
    pair = await startPair({}, undefined, undefined, { witness: { a: w.handle('A'), b: w.handle('B') } });
    const p = pair;
    w.handle('A').unreachable = true;
    p.nodeB.pause();
    await until(() => w.asked.filter((a) => a.nodeId === 'A' && a.answer === 'unreachable').length >= 2, 'asked twice');
    expect(p.a.status().role).toBe('primary');
    expect(p.events.a.some((e: ReplicaEvent) => e.type === 'step-down')).toBe(false);
    expect(p.a.status().witness).toMatch(/unreachable/);
    w.handle('A').unreachable = false;
    await until(() => p.a.status().role === 'solo-primary', 'A serves alone once the witness answers');
  });

  it('a backup takes over at epoch + 1 only once granted', async () => {
    const w = new WitnessModel();
    pair = await startPair({}, undefined, undefined, { witness: { a: w.handle('A'), b: w.handle('B') } });
    const p = pair;
    w.owner = { nodeId: 'A', epoch: 1 }; // A holds it (as if it had served alone and not released yet)
    p.nodeA.crash();
    await until(() => w.asked.some((a) => a.nodeId === 'B' && a.reason === 'takeover' && a.answer === 'refused'), 'B refused');
    await sleep(50);
    expect(p.b.status().role).toBe('backup');
    w.expire(); // A's lease ran out
    await until(() => p.b.status().role === 'solo-primary', 'B took over');
    expect(p.b.status().epoch).toBe(2);
    expect(w.owner).toEqual({ nodeId: 'B', epoch: 2 });
  });
});

describe('witness gate', () => {
  it('a grant that comes back after the replica moved on is released at once, not kept', async () => {
    const w = new WitnessModel();
    const h = w.handle('B');
    const ctx = {
      opts: { witness: h },
      nodeId: 'B',
      log: () => {},
      rateLog: { log: (_k: string, f: (n: number) => void) => f(0) },
    } as unknown as ConstructorParameters<typeof WitnessGate>[0];
    const gate = new WitnessGate(ctx);
    expect(await gate.ask('takeover', 2, () => false)).toBe('refused');
    expect(w.released).toEqual([{ nodeId: 'B', epoch: 2 }]);
    expect(w.owner).toBeUndefined();
    expect(await gate.ask('takeover', 2, () => true)).toBe('granted');
    expect(w.owner).toEqual({ nodeId: 'B', epoch: 2 });
  });
});
