/**
 * Requests a serving replica's admission hook (ReplicaHooks.admit, api.ts) holds before sequencing: kept
 * by (clientId, requestId) in arrival order (a retransmission replaces the held copy), offered again after
 * every apply until none is admitted any more, answered with a HoldTimeoutError after holdTimeoutMs, told
 * notPrimary when the replica stops serving. Used by primary.ts only when hooks are given.
 */
import type { Env, TimerHandle } from './env.js';
import type { Link } from './link.js';
import type { Req } from './messages.js';

/** ReplicaHooks.holdTimeoutMs by default. */
export const DEFAULT_HOLD_TIMEOUT_MS = 10_000;

interface Held {
  link: Link;
  req: Req;
  since: number;
}

export class AdmissionHold {
  readonly #env: Env;
  readonly #max: number;
  readonly #held = new Map<string, Held>();
  #timer: TimerHandle | undefined;
  #reoffering = false;

  constructor(env: Env, max: number) {
    this.#env = env;
    this.#max = max;
  }

  get size(): number {
    return this.#held.size;
  }

  /** Hold `req` (beyond the bound it is dropped: the client retransmits). */
  hold(link: Link, req: Req, timeoutMs: number, epoch: () => number): void {
    const key = `${req.clientId}\u0000${req.requestId}`;
    const old = this.#held.get(key);
    if (old === undefined && this.#held.size >= this.#max) return;
    this.#held.set(key, { link, req, since: old?.since ?? this.#env.now() });
    this.#arm(timeoutMs, epoch);
  }

  /**
   * Offer the held requests again, in arrival order, until a pass admits none: `admit` says whether one
   * may go, `serve` handles it (and returns true when it applied something, which may admit others).
   */
  reoffer(admit: (req: Req) => boolean, serve: (link: Link, req: Req) => boolean, serving: () => boolean): void {
    if (this.#reoffering) return;
    this.#reoffering = true;
    try {
      let progress = true;
      while (progress && this.#held.size > 0 && serving()) {
        progress = false;
        for (const [key, h] of this.#held) {
          if (h.link.isClosed) {
            this.#held.delete(key);
            continue;
          }
          if (!admit(h.req)) continue;
          this.#held.delete(key);
          if (serve(h.link, h.req)) progress = true;
        }
      }
    } finally {
      this.#reoffering = false;
    }
  }

  /** Not serving any more: every held request is told notPrimary. */
  release(answer: (link: Link, req: Req) => void): void {
    for (const h of this.#held.values()) answer(h.link, h.req);
    this.#held.clear();
    this.cancel();
  }

  cancel(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #arm(limit: number, epoch: () => number): void {
    if (this.#timer !== undefined || this.#held.size === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const h of this.#held.values()) oldest = Math.min(oldest, h.since);
    this.#timer = this.#env.setTimer(Math.max(0, oldest + limit - this.#env.now()), () => {
      this.#timer = undefined;
      const now = this.#env.now();
      for (const [key, h] of this.#held) {
        if (now - h.since < limit) continue;
        this.#held.delete(key);
        h.link.send({
          t: 'rep',
          requestId: h.req.requestId,
          epoch: epoch(),
          seq: 0,
          digest: '',
          time: 0,
          seed: 0,
          error: {
            name: 'HoldTimeoutError',
            message: `request held ${Math.round(now - h.since)} ms waiting for admission (causal predecessors)`,
          },
        });
      }
      this.#arm(limit, epoch);
    });
  }
}
