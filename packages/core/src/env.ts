/**
 * The injected environment. Protocol code (core, state-transfer, causal) takes its clock, timers,
 * randomness, network and logging from an `Env`, never from globals, so the same code runs in
 * production (`nodeEnv()`) and under the deterministic simulator (`@tandem/testkit`).
 */
import type { Transport } from '@tandem/transport';

/** A scheduled timer that can be cancelled. */
export interface TimerHandle {
  /** Cancel the timer if it has not fired. */
  cancel(): void;
}

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where the protocol writes structured log events. */
export interface Logger {
  /** Record one event with its fields. */
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

/** Everything the protocol takes from its surroundings: clock, timers, randomness, network, logger (the simulator provides its own). */
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
  /** Where the protocol's structured log events go. */
  logger: Logger;
}

/** A Logger that drops every event. */
export const silentLogger: Logger = { log() {} };
