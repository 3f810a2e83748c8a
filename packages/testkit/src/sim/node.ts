/**
 * Simulated processes and hosts. A SimNode is one process (a replica, or a client application): its
 * timers and incoming network events pass through `gate`, which drops them once the process crashed
 * (the incarnation changed) and holds them while it is paused (SIGSTOP, a long GC) — delivering them late,
 * in order, when it resumes. A SimHost groups processes that die together (a machine).
 */
import type { Env, Logger, TimerHandle } from '@tandem/core';
import type { Transport } from '@tandem/transport';
import type { SeededRandom } from './random.js';
import type { Scheduler } from './scheduler.js';

export type NodeState = 'up' | 'paused' | 'resuming' | 'down';

export interface NodeHooks {
  /** Called when a node crashes, before its incarnation changes (the network drops its connections). */
  onCrash(node: SimNode, hostCrash: boolean): void;
  /** A transport bound to one incarnation of a node. */
  transportFor(node: SimNode, incarnation: number): Transport;
}

export class SimHost {
  readonly name: string;
  up = true;
  readonly nodes: SimNode[] = [];
  constructor(name: string) {
    this.name = name;
  }
}

/** Start time of the simulated wall clock (ctx.time values): 2026-01-01T00:00:00Z. */
export const SIM_WALL_CLOCK_BASE = 1_767_225_600_000;

export class SimNode {
  readonly name: string;
  readonly host: SimHost;
  #state: NodeState = 'up';
  #incarnation = 0;
  #frozen: { label: string; fn: () => void }[] = [];
  readonly #sched: Scheduler;
  readonly #rng: SeededRandom;
  readonly #hooks: NodeHooks;
  readonly #logger: Logger;

  constructor(name: string, host: SimHost, sched: Scheduler, rng: SeededRandom, hooks: NodeHooks, logger: Logger) {
    this.name = name;
    this.host = host;
    this.#sched = sched;
    this.#rng = rng;
    this.#hooks = hooks;
    this.#logger = logger;
    host.nodes.push(this);
  }

  get state(): NodeState {
    return this.#state;
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  /** Run `fn` in this node if incarnation `inc` is still alive: now if running, at resume if paused.
   * Returns false when the incarnation is dead (the event is dropped). */
  gate(inc: number, label: string, fn: () => void): boolean {
    if (inc !== this.#incarnation || this.#state === 'down') return false;
    if (this.#state === 'paused' || this.#state === 'resuming') this.#frozen.push({ label, fn });
    else fn();
    return true;
  }

  /** A fresh Env for the current incarnation: virtual clock, gated timers, the run's PRNG, a transport
   * bound to this incarnation. Create the process's objects (replica, client) with it after start/restart. */
  env(): Env {
    const inc = this.#incarnation;
    const sched = this.#sched;
    const rng = this.#rng;
    const label = `timer ${this.name}`;
    return {
      now: () => sched.now,
      wallClock: () => SIM_WALL_CLOCK_BASE + Math.floor(sched.now),
      setTimer: (ms: number, fn: () => void): TimerHandle => {
        if (inc !== this.#incarnation) return { cancel() {} };
        let cancelled = false;
        // Like Node's setTimeout (what nodeEnv() uses): a delay below 1 ms counts as 1 ms.
        const ev = sched.after(Math.max(1, ms), label, () => {
          this.gate(inc, label, () => {
            if (!cancelled) fn();
          });
        });
        return {
          cancel() {
            cancelled = true;
            ev.cancel();
          },
        };
      },
      random: () => rng.next(),
      randomBytes: (n: number) => rng.bytes(n),
      network: this.#hooks.transportFor(this, inc),
      logger: {
        log: (level, event, fields) => this.#logger.log(level, event, { node: this.name, inc, ...fields }),
      },
    };
  }

  /** Kill the process: memory, timers and connections are gone (a process crash: the host's kernel resets
   * its connections; with `hostCrash` nothing is reset — peers just stop hearing from it). */
  crash(hostCrash = false): void {
    if (this.#state === 'down') return;
    this.#sched.note(`crash ${this.name}${hostCrash ? ' (host)' : ''}`);
    this.#hooks.onCrash(this, hostCrash);
    this.#incarnation++;
    this.#state = 'down';
    this.#frozen = [];
  }

  /** Bring a crashed process back as a new incarnation (call env() again and build its objects). */
  restart(): void {
    if (this.#state !== 'down') throw new Error(`node ${this.name} is ${this.#state}, not down`);
    this.#sched.note(`restart ${this.name}`);
    this.#state = 'up';
  }

  pause(): void {
    if (this.#state !== 'up' && this.#state !== 'resuming') return;
    this.#sched.note(`pause ${this.name}`);
    this.#state = 'paused';
  }

  /** Resume: everything that happened to it while paused is delivered now, one event at a time and in
   * order (events arriving meanwhile queue behind them); then it runs normally. */
  resume(): void {
    if (this.#state !== 'paused') return;
    this.#sched.note(`resume ${this.name}`);
    this.#state = 'resuming';
    const inc = this.#incarnation;
    const step = (): void => {
      if (inc !== this.#incarnation || this.#state !== 'resuming') return;
      const f = this.#frozen.shift();
      if (f === undefined) {
        this.#state = 'up';
        return;
      }
      this.#sched.after(0, `late ${f.label}`, () => {
        if (inc !== this.#incarnation) return;
        if (this.#state !== 'resuming') {
          this.#frozen.unshift(f); // paused again before this one ran
          return;
        }
        f.fn();
        step();
      });
    };
    step();
  }
}
