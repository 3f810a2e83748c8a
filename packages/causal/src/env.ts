/**
 * The environment the causal protocol takes time and timers from. Protocol code in this package never
 * calls `Date.now()` or `setTimeout` itself, so the same code runs in production (`systemEnv()`) and under
 * a deterministic simulator on virtual time. `@tandem/core`'s `Env` satisfies this interface as it is.
 */

/** A scheduled callback that can be cancelled. */
export interface CausalTimer {
  /** Cancel the callback if it has not run yet. */
  cancel(): void;
}

/** Clock and timers of the causal layer, injected so that it runs on the simulator's virtual time. */
export interface CausalEnv {
  /** Milliseconds, monotonic within the process. */
  now(): number;
  /** Run `fn` once after `ms` milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): CausalTimer;
}

/**
 * The production environment: `performance.now()` and `setTimeout`. Its timers are unref'd: the causal
 * layer's own housekeeping (gap deadlines, retransmission, redial) never keeps a process alive by itself.
 */
export function systemEnv(): CausalEnv {
  return {
    now: () => performance.now(),
    setTimer(ms, fn) {
      const timer = setTimeout(fn, Math.max(0, ms));
      timer.unref?.();
      return { cancel: () => clearTimeout(timer) };
    },
  };
}
