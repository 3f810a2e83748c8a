/**
 * The production TransferEnv: @tandem/core's nodeEnv plus a setImmediate-based `yieldNow`, so the
 * serving replica yields to pending requests between slices without the 1 ms floor of a timer.
 */
import { nodeEnv, type Env, type NodeEnvOptions } from '@tandem/core';
import type { TransferEnv } from './env.js';

/** Add `yieldNow` (setImmediate) to an existing Env. */
export function withImmediateYield<E extends Env>(env: E): E & TransferEnv {
  return { ...env, yieldNow: () => new Promise<void>((resolve) => setImmediate(resolve)) };
}

/** nodeEnv(options) with `yieldNow`. */
export function nodeTransferEnv(options: NodeEnvOptions): Env & TransferEnv {
  return withImmediateYield(nodeEnv(options));
}
