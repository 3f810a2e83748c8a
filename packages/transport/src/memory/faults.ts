/**
 * Fault-injection knobs of the in-memory network and the pluggable time/randomness it draws them from.
 * Everything is off by default, in which case a memory connection is reliable and ordered like TCP.
 */

/** Faults of one direction of a link (from one host to another). */
export interface LinkFaults {
  /** Fixed one-way delay of every message, in ms. Order is kept (a later message never overtakes). */
  delayMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per message. Order is still kept. */
  jitterMs: number;
  /** Probability that a message is silently lost (the send still succeeds). */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** Probability that a message is held back and delivered right after the next message of the link. */
  reorderRate: number;
}

/** The faults of a healthy link: no delay, jitter, drops, duplicates or reordering. */
export const NO_FAULTS: Readonly<LinkFaults> = Object.freeze({
  delayMs: 0,
  jitterMs: 0,
  dropRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
});

/** A cancellable scheduled callback. */
export interface ScheduledTask {
  /** Cancel the callback if it has not run yet. */
  cancel(): void;
}

/**
 * Runs `fn` after `delayMs` (0 = as soon as possible, still asynchronously). A simulator passes one
 * that runs on virtual time; it may return nothing if it cannot cancel (cancellation is then emulated).
 */
export type Schedule = (delayMs: number, fn: () => void) => ScheduledTask | void;

/** Uniform in [0, 1). */
export type RandomSource = () => number;

/** Default scheduler: microtask for 0 ms, setTimeout otherwise (this package is not protocol code). */
export const defaultSchedule: Schedule = (delayMs, fn) => {
  if (delayMs <= 0) {
    let cancelled = false;
    queueMicrotask(() => {
      if (!cancelled) fn();
    });
    return { cancel: () => void (cancelled = true) };
  }
  const timer = setTimeout(fn, delayMs);
  return { cancel: () => clearTimeout(timer) };
};

/** Wraps a Schedule so that every task can be cancelled, whatever the Schedule returns. */
export function cancellable(schedule: Schedule, delayMs: number, fn: () => void): ScheduledTask {
  let cancelled = false;
  const task = schedule(delayMs, () => {
    if (!cancelled) fn();
  });
  return {
    cancel: () => {
      cancelled = true;
      if (task) task.cancel();
    },
  };
}

/** The host part of a memory address: `mem://a/primary` → `a`, `mem://a#3` → `a`. */
export function hostOf(address: string): string {
  const name = address.startsWith('mem://') ? address.slice(6) : address;
  const cut = name.search(/[/#]/);
  return cut === -1 ? name : name.slice(0, cut);
}
