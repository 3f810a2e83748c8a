/**
 * Virtual time. Events (timers, message deliveries, fault actions) sit in a priority queue ordered by
 * (time, insertion order); the run loop takes the next one, sets the clock to its time, runs it, then lets
 * every promise continuation it caused run (a drain through one `setImmediate`: Node runs all pending
 * microtasks before the next macrotask, and nothing in a simulation touches real I/O or real timers). The
 * same seed therefore replays the same sequence of events — which the trace hash proves.
 */
import { setImmediate as realImmediate } from 'node:timers';

/** A scheduled event that can be cancelled. */
export interface ScheduledEvent {
  /** Cancel the event if it has not run. */
  cancel(): void;
}

interface QueuedEvent {
  time: number;
  order: number;
  label: string;
  fn: () => void;
  cancelled: boolean;
}

/** When a run stops: at a virtual time, when a predicate holds, or after a number of events. */
export interface RunLimits {
  /** Stop before running any event later than this virtual time (the clock is then set to it). */
  until?: number;
  /** Checked after every event (and its drain): stop when it returns true. */
  stopWhen?: () => boolean;
  /** Safety bound on events in this call. Default 5,000,000. */
  maxEvents?: number;
}

/** A callback or continuation threw inside the simulation. */
export class SimulationError extends Error {
  static override readonly name = 'SimulationError';
  override readonly name = 'SimulationError';
}

const drain = (): Promise<void> => new Promise((resolve) => realImmediate(resolve));

/** The simulator's event queue on virtual time: events run one at a time in time order, ties in scheduling order. */
export class Scheduler {
  #now = 0;
  #order = 0;
  #heap: QueuedEvent[] = [];
  #events = 0;
  #trace = 0x811c9dc5;
  #traceLog: string[] | undefined;
  /** The last few executed events, always kept (for reports when a run spins). */
  readonly #recent: string[] = [];
  /** Errors thrown by event callbacks (the run continues; the harness reports them). */
  readonly errors: { time: number; label: string; error: unknown }[] = [];

  constructor(options: { recordTrace?: boolean } = {}) {
    if (options.recordTrace) this.#traceLog = [];
  }

  /** The current virtual time, ms. */
  get now(): number {
    return this.#now;
  }

  /** Events run so far. */
  get eventCount(): number {
    return this.#events;
  }

  /** FNV-1a (32-bit) over every executed event's time and label: equal for equal runs. */
  get traceHash(): string {
    return (this.#trace >>> 0).toString(16).padStart(8, '0') + ':' + this.#events;
  }

  /** The executed events (only with `recordTrace`). */
  get trace(): readonly string[] {
    return this.#traceLog ?? [];
  }

  /** Run `fn` at virtual time now + ms (ms < 0 counts as 0). A positive delay always advances the clock,
   * even when it is below the resolution of a double at the current time (as a real clock would). */
  after(ms: number, label: string, fn: () => void): ScheduledEvent {
    const d = Math.max(0, Number.isFinite(ms) ? ms : 0);
    let time = this.#now + d;
    if (d > 0 && time <= this.#now) time = this.#now + Math.max(Number.MIN_VALUE, Math.abs(this.#now) * Number.EPSILON);
    return this.at(time, label, fn);
  }

  /** Run `fn` at virtual time `time` (not earlier than now); `label` goes into the trace. */
  at(time: number, label: string, fn: () => void): ScheduledEvent {
    const ev: QueuedEvent = { time: Math.max(time, this.#now), order: this.#order++, label, fn, cancelled: false };
    this.#push(ev);
    return {
      cancel: () => {
        ev.cancelled = true;
      },
    };
  }

  /** Add a line to the trace without scheduling anything (e.g. an observation of the harness). */
  note(label: string): void {
    this.#mix(`${this.#now.toFixed(3)} ${label}`);
  }

  /** True when no live event is queued. */
  get idle(): boolean {
    return this.#heap.every((e) => e.cancelled);
  }

  /** Run events until the queue is empty or a limit is reached. */
  async run(limits: RunLimits = {}): Promise<void> {
    const maxEvents = limits.maxEvents ?? 5_000_000;
    let ran = 0;
    await drain();
    for (;;) {
      if (limits.stopWhen?.()) return;
      const next = this.#peekLive();
      if (next === undefined || (limits.until !== undefined && next.time > limits.until)) {
        if (limits.until !== undefined && limits.until > this.#now) this.#now = limits.until;
        return;
      }
      this.#pop();
      this.#now = next.time;
      this.#events++;
      this.#mix(`${next.time.toFixed(3)} ${next.label}`);
      try {
        next.fn();
      } catch (error) {
        this.errors.push({ time: next.time, label: next.label, error });
      }
      await drain();
      if (++ran >= maxEvents) throw new SimulationError(`more than ${maxEvents} events without reaching the stop condition`);
    }
  }

  /** The last 64 executed events. */
  get recent(): readonly string[] {
    return this.#recent;
  }

  #mix(line: string): void {
    this.#traceLog?.push(line);
    this.#recent.push(line);
    if (this.#recent.length > 64) this.#recent.shift();
    let h = this.#trace;
    for (let i = 0; i < line.length; i++) {
      h ^= line.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    this.#trace = h >>> 0;
  }

  #peekLive(): QueuedEvent | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
    return this.#heap[0];
  }

  #less(a: QueuedEvent, b: QueuedEvent): boolean {
    return a.time < b.time || (a.time === b.time && a.order < b.order);
  }

  #push(ev: QueuedEvent): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): QueuedEvent | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
