import { describe, expect, it } from 'vitest';
import { BusyPoll, type BusyPollClock } from '../src/session/busy-poll.js';

/** A clock whose time moves `stepMs` at every turn, with the turns queued instead of run. */
function manualClock(stepMs: number): BusyPollClock & { queued: Array<() => void>; t: number; runAll(limit?: number): number } {
  const c = {
    t: 0,
    queued: [] as Array<() => void>,
    now: () => c.t,
    soon: (fn: () => void) => void c.queued.push(fn),
    runAll(limit = 10_000): number {
      let n = 0;
      while (c.queued.length > 0 && n < limit) {
        c.t += stepMs;
        c.queued.shift()!();
        n++;
      }
      return n;
    },
  };
  return c;
}

const STEP = 0.015625;

describe('BusyPoll', () => {
  it('keeps the loop turning for its budget after a write, then lets it sleep', () => {
    const clock = manualClock(STEP); // 15.625 µs per turn (exact in binary)
    const poll = new BusyPoll(62.5, clock);
    poll.arm();
    expect(poll.active).toBe(true);
    const turns = clock.runAll();
    // 62.5 µs of budget = 4 turns: 3 re-queued within it, the 4th finds it spent and stops.
    expect(turns).toBe(4);
    expect(poll.turns).toBe(3);
    expect(poll.active).toBe(false);
    expect(clock.queued).toHaveLength(0);
  });

  it('a write while polling extends the budget without a second poller', () => {
    const clock = manualClock(STEP);
    const poll = new BusyPoll(62.5, clock);
    poll.arm();
    clock.runAll(2); // 2 turns in
    poll.arm(); // the budget now ends 4 turns from here
    expect(clock.queued).toHaveLength(1);
    clock.runAll();
    expect(poll.turns).toBe(2 + 3);
    expect(poll.active).toBe(false);
  });

  it('a budget of 0 never polls; a bad budget is refused', () => {
    const clock = manualClock(STEP);
    const poll = new BusyPoll(0, clock);
    poll.arm();
    expect(poll.active).toBe(false);
    expect(clock.queued).toHaveLength(0);
    expect(() => new BusyPoll(-1)).toThrow(RangeError);
    expect(() => new BusyPoll(Number.NaN)).toThrow(RangeError);
  });

  it('on Node, polls with setImmediate for about its budget and stops', async () => {
    const poll = new BusyPoll(2000);
    poll.arm();
    expect(poll.active).toBe(true);
    await new Promise((r) => setTimeout(r, 30));
    expect(poll.active).toBe(false);
    expect(poll.turns).toBeGreaterThan(0);
  });
});
