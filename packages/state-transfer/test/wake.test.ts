/**
 * WakeSignal is what the server's send loop sleeps on between "nothing to do" and the joiner's next ack.
 * The loop checks its window, returns "no progress", and only then (a microtask later) waits: an ack
 * handled in between must not be lost, or a transfer whose window is full and fully acknowledged waits
 * forever (seen as a kv rolling upgrade stuck at chunk 10 until the joiner's idle timeout).
 */
import { describe, expect, it } from 'vitest';
import { WakeSignal } from '../src/protocol/wake.js';

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

describe('WakeSignal', () => {
  it('a notify() with nobody waiting wakes the next wait()', async () => {
    const w = new WakeSignal();
    w.notify();
    expect(await settled(w.wait())).toBe(true);
  });

  it('is consumed by one wait(): the one after it sleeps until the next notify()', async () => {
    const w = new WakeSignal();
    w.notify();
    w.notify();
    expect(await settled(w.wait())).toBe(true);
    const next = w.wait();
    expect(await settled(next)).toBe(false);
    w.notify();
    expect(await settled(next)).toBe(true);
  });

  it('wakes every waiter of one notify()', async () => {
    const w = new WakeSignal();
    const a = w.wait();
    const b = w.wait();
    w.notify();
    expect([await settled(a), await settled(b)]).toEqual([true, true]);
  });
});
