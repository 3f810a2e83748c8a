/**
 * The production Env: real monotonic clock, setTimeout timers, crypto randomness, the caller's
 * network (usually a TransportRegistry) and a JSON-lines logger on stderr. The only place in
 * @tandem/core that touches the process clock, timers and random sources.
 */
import { randomBytes as cryptoRandomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Transport } from '@tandem/transport';
import { silentLogger, type Env, type LogLevel, type Logger, type TimerHandle } from './env.js';

/** Options of nodeEnv: the network, and the default logger's level and fields (or a logger of your own). */
export interface NodeEnvOptions {
  /** The network: a TransportRegistry (or any Transport) the caller populated. */
  network: Transport;
  /** Log level for the default stderr logger; 'silent' (default) logs nothing. */
  logLevel?: LogLevel | 'silent';
  /** A logger to use instead of the stderr one. */
  logger?: Logger;
  /** Extra fields on every log line (e.g. { node: 'a' }). */
  logFields?: Record<string, unknown>;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines on stderr: {"ts":…,"level":…,"event":…,…fields}. */
export function stderrLogger(level: LogLevel, base: Record<string, unknown> = {}): Logger {
  const min = LEVELS[level];
  return {
    log(lvl, event, fields) {
      if (LEVELS[lvl] < min) return;
      let line: string;
      try {
        line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, event, ...base, ...fields }, jsonSafe);
      } catch {
        line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, event, note: 'unserialisable fields' });
      }
      process.stderr.write(line + '\n');
    },
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

/** The Env of a real process: performance.now, setTimeout, crypto random bytes, the given network, a stderr logger. */
export function nodeEnv(options: NodeEnvOptions): Env {
  const logger =
    options.logger ??
    (options.logLevel === undefined || options.logLevel === 'silent' ? silentLogger : stderrLogger(options.logLevel, options.logFields));
  return {
    now: () => performance.now(),
    wallClock: () => Date.now(),
    setTimer(ms: number, fn: () => void): TimerHandle {
      const t = setTimeout(fn, Math.max(0, ms));
      return { cancel: () => clearTimeout(t) };
    },
    random: () => randomInt(0, 2 ** 48 - 1) / (2 ** 48 - 1 + 1),
    randomBytes: (n: number) => new Uint8Array(cryptoRandomBytes(n)),
    network: options.network,
    logger,
  };
}
