/**
 * The gap deadlines of the causal-delivery core (delivery.ts): held messages in arrival order, and one
 * timer for the oldest one still waiting. Entries of messages delivered or reported since are skipped
 * lazily (and compacted away when they pile up).
 */
import type { CausalEnv, CausalTimer } from './env.js';

/** What the deadlines need of a held message. */
export interface GapEntry {
  readonly since: number;
  /** Still held (not delivered, discarded or dropped). */
  live: boolean;
  /** Its gap was reported already. */
  reported: boolean;
}

export class GapDeadlines<H extends GapEntry> {
  readonly #env: CausalEnv;
  readonly #timeoutMs: number;
  readonly #onDue: () => void;
  #queue: H[] = [];
  #head = 0;
  #timer: CausalTimer | undefined;
  #timerAt = Infinity;

  /** `onDue` runs when the oldest waiting message's deadline passes (call takeDue there). */
  constructor(env: CausalEnv, timeoutMs: number, onDue: () => void) {
    this.#env = env;
    this.#timeoutMs = timeoutMs;
    this.#onDue = onDue;
  }

  /** A message was held; `heldNow` is how many are held in all (bounds the skipped entries kept). */
  add(held: H, heldNow: number): void {
    this.#queue.push(held);
    // entries of messages delivered since are skipped lazily; keep them from piling up behind a long wait
    if (this.#queue.length - this.#head > 2 * heldNow + 1024) this.compact();
  }

  /** (Re)arms the timer for the oldest message still waiting; cancels it when none is. */
  arm(): void {
    while (this.#head < this.#queue.length) {
      const head = this.#queue[this.#head]!;
      if (head.live && !head.reported) break;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) this.compact();
    const head = this.#queue[this.#head];
    if (!head) {
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    const at = head.since + this.#timeoutMs;
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#env.setTimer(Math.max(0, at - this.#env.now()), () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#onDue();
    });
  }

  /** Drops the entries of messages no longer waiting. */
  compact(): void {
    this.#queue = this.#queue.slice(this.#head).filter((h) => h.live && !h.reported);
    this.#head = 0;
  }

  /** The waiting messages whose deadline has passed at `now`, in arrival order, marked reported. */
  takeDue(now: number): H[] {
    const due: H[] = [];
    for (; this.#head < this.#queue.length; this.#head++) {
      const held = this.#queue[this.#head]!;
      if (!held.live || held.reported) continue;
      if (held.since + this.#timeoutMs > now) break;
      held.reported = true;
      due.push(held);
    }
    return due;
  }

  /** Cancels the timer and forgets every entry (the core closed). */
  clear(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#queue = [];
    this.#head = 0;
  }
}
