/**
 * Virtual time for the targets that run protocol code (core, state transfer): the testkit's Scheduler
 * drives an `Env` (clock, timers, seeded randomness) and an in-memory network whose deliveries and
 * timeouts run on the same clock. One input then costs a few dozen scheduler events instead of real
 * milliseconds, and the same seed replays the same run.
 */
import type { Env, LogLevel, Logger } from '@tandem/core';
import { mulberry32 } from '@tandem/core/internal';
import { createMemoryNetwork, type MemoryNetwork } from '@tandem/transport';
import { Scheduler } from '@tandem/testkit';

export interface LogRecord {
  node: string;
  level: LogLevel;
  event: string;
  fields: Record<string, unknown> | undefined;
}

export class VirtualWorld {
  readonly scheduler = new Scheduler();
  readonly net: MemoryNetwork;
  readonly random: () => number;
  /** Log lines at warn/error of every node, taken by the target after each input. */
  readonly logs: LogRecord[] = [];
  #labelNo = 0;

  constructor(seed: number) {
    this.random = mulberry32(seed);
    this.net = createMemoryNetwork({
      schedule: (ms, fn) => this.scheduler.after(ms, 'net', fn),
      random: () => this.random(),
    });
  }

  get now(): number {
    return this.scheduler.now;
  }

  /** An Env for one node (its logger keeps warn/error lines). */
  env(node: string, network = this.net as Env['network']): Env {
    const world = this;
    const logger: Logger = {
      log(level, event, fields) {
        if (level === 'warn' || level === 'error') world.logs.push({ node, level, event, fields });
      },
    };
    return {
      now: () => this.scheduler.now,
      wallClock: () => 1_700_000_000_000 + this.scheduler.now,
      setTimer: (ms, fn) => this.scheduler.after(ms, `${node}#${this.#labelNo++ & 0xff}`, fn),
      random: () => this.random(),
      randomBytes: (n) => {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = Math.floor(this.random() * 256);
        return out;
      },
      network,
      logger,
    };
  }

  /**
   * Advance virtual time by `ms` (or until `stop` holds). Returns 'budget' when more than `maxEvents`
   * events ran (a livelock: the input keeps the system busy without time passing).
   */
  async run(ms: number, stop?: () => boolean, maxEvents = 20_000): Promise<'ok' | 'stopped' | 'budget'> {
    try {
      let stopped = false;
      await this.scheduler.run({
        until: this.scheduler.now + ms,
        maxEvents,
        ...(stop ? { stopWhen: () => (stopped = stop()) } : {}),
      });
      return stopped ? 'stopped' : 'ok';
    } catch (err) {
      if ((err as Error).name === 'SimulationError') return 'budget';
      throw err;
    }
  }

  /** Errors thrown by timer and delivery callbacks since the last call (each would be an uncaught exception). */
  takeCallbackErrors(): unknown[] {
    return this.scheduler.errors.splice(0).map((e) => e.error);
  }
}
