/**
 * Bounded busy polling for a relay's round trips.
 *
 * A relay between an X client and its servers costs each round trip two extra process wake-ups: the
 * daemon sleeps in epoll until the server's reply arrives, and again until the client's next request.
 * On a small machine a wake-up costs about as much as the relaying itself. After every write the daemon
 * therefore keeps its event loop turning for up to `micros` microseconds (an immediate re-queued while the
 * budget lasts): libuv then polls its sockets without sleeping (epoll with a zero timeout), and an answer
 * that arrives meanwhile is handled at once instead of after a wake-up. Once nothing has been written for
 * `micros`, the loop sleeps as usual, so an idle conference costs nothing; a busy one spends at most
 * `micros` of CPU per burst of writes. 0 turns it off.
 */
export interface BusyPollClock {
  /** Milliseconds, monotonic (performance.now). */
  now(): number;
  /** Runs `fn` on the next turn of the event loop, after polling for I/O without sleeping (setImmediate). */
  soon(fn: () => void): void;
}

const nodeClock: BusyPollClock = {
  now: () => performance.now(),
  soon: (fn) => void setImmediate(fn),
};

/** Default budget: covers an X server's reply to a simple request and the client's next request. */
export const DEFAULT_BUSY_POLL_MICROS = 50;

export class BusyPoll {
  private until = 0;
  private spinning = false;
  /** Turns of the event loop spent polling (diagnostics and tests). */
  turns = 0;
  private readonly budgetMs: number;
  private readonly turn = (): void => {
    if (this.clock.now() < this.until) {
      this.turns++;
      this.clock.soon(this.turn);
    } else this.spinning = false;
  };

  constructor(
    readonly micros = DEFAULT_BUSY_POLL_MICROS,
    private readonly clock: BusyPollClock = nodeClock,
  ) {
    if (!Number.isFinite(micros) || micros < 0)
      throw new RangeError(`busy-poll budget must be a non-negative number of microseconds, got ${micros}`);
    this.budgetMs = micros / 1000;
  }

  /** Something was written: poll without sleeping for the next `micros` µs. */
  arm(): void {
    if (this.budgetMs === 0) return;
    this.until = this.clock.now() + this.budgetMs;
    if (!this.spinning) {
      this.spinning = true;
      this.clock.soon(this.turn);
    }
  }

  /** True while the budget of the last write lasts. */
  get active(): boolean {
    return this.spinning;
  }
}
