/**
 * The part of @tandem/core's injected Env that state transfer uses, and the one way it yields to the
 * event loop (a 0 ms timer from the Env, so the deterministic simulator controls it too).
 */
import type { Env } from '@tandem/core';

export type TransferEnv = Pick<Env, 'now' | 'setTimer' | 'randomBytes' | 'network' | 'logger'>;

/** Let other work (requests being served) run before continuing. */
export function yieldToEventLoop(env: Pick<Env, 'setTimer'>): Promise<void> {
  return new Promise((resolve) => env.setTimer(0, resolve));
}

export function randomId(env: Pick<Env, 'randomBytes'>, bytes = 8): string {
  return Buffer.from(env.randomBytes(bytes)).toString('hex');
}
