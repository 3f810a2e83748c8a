import { describe, expect, it } from 'vitest';
import type { Connection } from '@tandem/transport';
import { Simulation } from '../../src/sim/simulation.js';

/** A listening node `a` and a dialling node `b`; returns what `a` received, with virtual times. */
async function pair(sim: Simulation) {
  const a = sim.node('a');
  const b = sim.node('b');
  const got: { at: number; text: string }[] = [];
  const listener = await a.env().network.listen('sim://a');
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        for await (const m of conn) got.push({ at: sim.now, text: new TextDecoder().decode(m) });
      })();
    }
  })();
  const dialled = b.env().network.dial('sim://a');
  let conn: Connection | undefined;
  void dialled.then((c) => (conn = c));
  await sim.run({ stopWhen: () => conn !== undefined, until: 100 });
  const send = (text: string) => void conn!.send(new TextEncoder().encode(text));
  return { a, b, got, send };
}

describe('SimNode CPU model', () => {
  it('without a cost model events run at once (the classic behaviour)', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { got, send } = await pair(sim);
    const t0 = sim.now;
    send('x');
    await sim.runFor(10);
    expect(got.map((g) => g.at - t0)).toEqual([1]);
  });

  it('a busy node handles each message at the end of its CPU slice, one after the other (FIFO)', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    a.cpu = { perMessageMs: 3, perKiBMs: 0, perTimerMs: 0 };
    const t0 = sim.now;
    send('m1');
    send('m2');
    send('m3');
    await sim.runFor(20);
    expect(got.map((g) => g.text)).toEqual(['m1', 'm2', 'm3']);
    expect(got.map((g) => Math.round((g.at - t0) * 1000) / 1000)).toEqual([4, 7, 10]);
    expect(a.cpuTimeMs).toBeCloseTo(9);
  });

  it('the cost grows with the message size (perKiBMs)', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    a.cpu = { perMessageMs: 0, perKiBMs: 2, perTimerMs: 0 };
    const t0 = sim.now;
    send('y'.repeat(2048));
    await sim.runFor(20);
    expect(got[0]!.at - t0).toBeCloseTo(1 + 4);
  });

  it('a stall postpones timers and deliveries until it ends, in order; the node is up but busy', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    const seen: string[] = [];
    const t0 = sim.now;
    a.env().setTimer(2, () => seen.push(`timer@${sim.now - t0}`));
    a.stall(50);
    expect(a.state).toBe('up');
    expect(a.busy).toBe(true);
    send('during');
    await sim.runFor(100);
    expect(seen).toEqual(['timer@50']);
    expect(got.map((g) => [g.text, g.at - t0])).toEqual([['during', 50]]);
    expect(a.busy).toBe(false);
  });

  it('a pause freezes the work already queued, ahead of what arrives later; resume delivers it in order', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    a.cpu = { perMessageMs: 5, perKiBMs: 0, perTimerMs: 0 };
    send('q1');
    send('q2');
    await sim.runFor(2); // both arrived at +1: q1 runs at +6, q2 at +11
    a.pause();
    send('late');
    await sim.runFor(30);
    expect(got).toEqual([]);
    a.resume();
    await sim.runFor(30);
    expect(got.map((g) => g.text)).toEqual(['q1', 'q2', 'late']);
  });

  it('a resumed node is busy until the backlog of its pause is done (its fault ends then)', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    a.cpu = { perMessageMs: 5, perKiBMs: 0, perTimerMs: 0 };
    a.pause();
    send('m1');
    send('m2');
    send('m3');
    await sim.runFor(10);
    expect(a.busy).toBe(false);
    a.resume();
    const resumedAt = sim.now;
    expect(a.busy).toBe(true);
    await sim.run({ stopWhen: () => !a.busy, until: sim.now + 100 });
    expect(sim.now - resumedAt).toBe(15);
    expect(got.map((g) => g.text)).toEqual(['m1', 'm2', 'm3']);
  });

  it('a crash drops the queued work', async () => {
    const sim = new Simulation({ seed: 1 });
    sim.network.faults.minDelayMs = sim.network.faults.maxDelayMs = 1;
    const { a, got, send } = await pair(sim);
    a.cpu = { perMessageMs: 5, perKiBMs: 0, perTimerMs: 0 };
    send('lost');
    await sim.runFor(2);
    a.crash();
    await sim.runFor(20);
    expect(got).toEqual([]);
    expect(a.busy).toBe(false);
  });
});
