// Virtual time for the tests: a CausalEnv whose timers run when the test advances the clock.
import type { CausalEnv, CausalTimer } from '../../src/index.js';
import { MinHeap } from '../../src/min-heap.js';

interface Task {
  time: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements CausalEnv {
  #now = 0;
  readonly #queue = new MinHeap<Task>();

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): CausalTimer {
    const task: Task = { time: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#queue.push(task.time, task);
    return { cancel: () => void (task.cancelled = true) };
  }

  /** The memory network's Schedule signature. */
  readonly schedule = (ms: number, fn: () => void): CausalTimer => this.setTimer(ms, fn);

  /** The next live task due by `until`, removed from the queue (ties: scheduling order). */
  #next(until: number): Task | undefined {
    for (;;) {
      const key = this.#queue.peekKey();
      if (key === undefined || key > until) return undefined;
      const task = this.#queue.pop()!;
      if (!task.cancelled) return task;
    }
  }

  /** Synchronous: run every task due up to `until` (absolute time), in (time, order) order. Returns tasks run. */
  runUntil(until: number): number {
    let n = 0;
    for (let task = this.#next(until); task; task = this.#next(until)) {
      this.#now = Math.max(this.#now, task.time);
      task.fn();
      n++;
    }
    this.#now = Math.max(this.#now, until);
    return n;
  }

  /** Synchronous: run until no task is left (or `limit` ms of virtual time pass). */
  runAll(limit = 10_000_000): void {
    const end = this.#now + limit;
    for (let task = this.#next(end); task; task = this.#next(end)) {
      this.#now = Math.max(this.#now, task.time);
      task.fn();
    }
  }

  /** Asynchronous: like runUntil(now + ms) but lets promise continuations run between tasks (for transports). */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await flush();
      const task = this.#next(until);
      if (!task) break;
      this.#now = Math.max(this.#now, task.time);
      task.fn();
    }
    this.#now = until;
    await flush();
  }
}

/** Lets pending promise continuations run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

/** mulberry32: a small seeded PRNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
