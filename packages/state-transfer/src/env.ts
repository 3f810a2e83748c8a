/**
 * The part of @tandem/core's injected Env that state transfer uses, and the one way it yields to the
 * event loop between units of work.
 */
import type { Env } from '@tandem/core';

/** What state transfer takes from the Env (clock, timers, randomness, network, logger), plus an optional way to yield to pending I/O. */
export type TransferEnv = Pick<Env, 'now' | 'setTimer' | 'randomBytes' | 'network' | 'logger'> & {
  /**
   * Let pending I/O (requests being served) run, then continue — as soon as possible. `nodeTransferEnv`
   * provides it with setImmediate; without it a 0 ms timer from the Env is used (≥ 1 ms in Node, which
   * caps the transfer rate at about one slice per millisecond).
   */
  yieldNow?(): Promise<void>;
};

/** Let other work (requests being served) run before continuing. */
export function yieldToEventLoop(env: Pick<TransferEnv, 'setTimer' | 'yieldNow'>): Promise<void> {
  if (env.yieldNow) return env.yieldNow();
  return new Promise((resolve) => env.setTimer(0, resolve));
}

export function randomId(env: Pick<Env, 'randomBytes'>, bytes = 8): string {
  return Buffer.from(env.randomBytes(bytes)).toString('hex');
}
