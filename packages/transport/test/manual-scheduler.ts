// Virtual time for the transport tests: the memory network's `schedule` driven by the test.
import type { ScheduledTask } from '@tandem/transport';

/** Virtual time: callbacks run in (time, insertion) order when the test advances the clock. */
export class ManualScheduler {
  now = 0;
  #order = 0;
  #queue: { time: number; order: number; fn: () => void; cancelled: boolean }[] = [];
  readonly schedule = (delayMs: number, fn: () => void): ScheduledTask => {
    const task = { time: this.now + Math.max(0, delayMs), order: this.#order++, fn, cancelled: false };
    this.#queue.push(task);
    return { cancel: () => void (task.cancelled = true) };
  };
  /** Run every task due up to now + ms (and the promise continuations they cause). */
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    for (;;) {
      await flush();
      this.#queue.sort((a, b) => a.time - b.time || a.order - b.order);
      const next = this.#queue[0];
      if (!next || next.time > until) break;
      this.#queue.shift();
      this.now = next.time;
      if (!next.cancelled) next.fn();
    }
    this.now = until;
    await flush();
  }
}

/** Lets pending promise continuations run. */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};
