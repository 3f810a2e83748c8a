/**
 * A reusable "something changed" signal: `wait()` resolves at the next `notify()` — or at once when a
 * `notify()` came while nobody was waiting (that one is kept until a `wait()` takes it). The server's
 * send loop checks its window, finds nothing to do and only then waits; an acknowledgement handled in
 * that gap used to be lost, and a transfer whose whole window was acknowledged then waited for ever
 * (until the joiner's idle timeout dropped the connection, and again after the resume).
 */
export class WakeSignal {
  #waiters: (() => void)[] = [];
  #pending = false;

  wait(): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  notify(): void {
    const w = this.#waiters;
    if (w.length === 0) {
      this.#pending = true;
      return;
    }
    this.#waiters = [];
    for (const f of w) f();
  }
}
