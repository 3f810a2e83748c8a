import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/sim/random.js';
import { Scheduler, SimulationError } from '../../src/sim/scheduler.js';

describe('Scheduler', () => {
  it('runs events in (time, insertion) order, skips cancelled ones, and stops at `until`', async () => {
    const s = new Scheduler({ recordTrace: true });
    const seen: string[] = [];
    s.after(5, 'b', () => seen.push(`b@${s.now}`));
    s.after(1, 'a', () => seen.push(`a@${s.now}`));
    s.after(5, 'c', () => seen.push(`c@${s.now}`));
    s.after(3, 'x', () => seen.push('x')).cancel();
    s.after(50, 'late', () => seen.push('late'));
    await s.run({ until: 10 });
    expect(seen).toEqual(['a@1', 'b@5', 'c@5']);
    expect(s.now).toBe(10);
    expect(s.trace).toEqual(['1.000 a', '5.000 b', '5.000 c']);
  });

  it('lets promise continuations of an event run before the next event', async () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.after(1, 'first', () => {
      void (async () => {
        for (let i = 0; i < 100; i++) await Promise.resolve();
        seen.push('continuation');
      })();
    });
    s.after(1, 'second', () => seen.push('second'));
    await s.run();
    expect(seen).toEqual(['continuation', 'second']);
  });

  it('advances the clock for any positive delay, even below double resolution', async () => {
    const s = new Scheduler();
    s.after(1e6, 'big', () => {});
    await s.run();
    let fired = -1;
    s.after(1e-12, 'tiny', () => (fired = s.now));
    await s.run();
    expect(fired).toBeGreaterThan(1e6);
  });

  it('stops on stopWhen, records callback errors, and refuses to spin forever', async () => {
    const s = new Scheduler();
    let n = 0;
    const tick = () => {
      n++;
      s.after(1, 'tick', tick);
    };
    s.after(0, 'tick', tick);
    s.after(2, 'boom', () => {
      throw new Error('boom');
    });
    await s.run({ stopWhen: () => n >= 10 });
    expect(n).toBe(10);
    expect(s.errors.map((e) => String(e.error))).toEqual(['Error: boom']);
    const spin = new Scheduler();
    const again = () => spin.after(0, 'spin', again);
    again();
    await expect(spin.run({ maxEvents: 1000 })).rejects.toBeInstanceOf(SimulationError);
  });
});

describe('SeededRandom', () => {
  it('is a deterministic function of the seed, uniform enough, with helpers in range', () => {
    const a = new SeededRandom(99);
    const b = new SeededRandom(99);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(new SeededRandom(100).next()).not.toBe(xs[0]);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    const r = new SeededRandom(1);
    for (let i = 0; i < 200; i++) {
      const k = r.int(3, 5);
      expect(k === 3 || k === 4 || k === 5).toBe(true);
    }
    expect(r.bytes(7)).toHaveLength(7);
    expect(() => r.pick([])).toThrow(RangeError);
  });
});
