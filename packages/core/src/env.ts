/**
 * The injected environment. Protocol code (core, state-transfer, causal) takes its clock, timers,
 * randomness, network and logging from an `Env`, never from globals, so the same code runs in
 * production (`nodeEnv()`) and under the deterministic simulator (`@tandem/testkit`).
 */
import type { Transport } from '@tandem/transport';

export interface TimerHandle {
  cancel(): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export interface Env {
  /** Milliseconds; monotonic within a process (production: performance.timeOrigin-based). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for values recorded into a service's ctx. */
  wallClock(): number;
  /** Run `fn` once after `ms` milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Uniform in [0, 1). */
  random(): number;
  /** `n` random bytes. */
  randomBytes(n: number): Uint8Array;
  /** The network: dial/listen by address (usually a TransportRegistry). */
  network: Transport;
  logger: Logger;
}

export const silentLogger: Logger = { log() {} };
