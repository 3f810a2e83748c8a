/**
 * Simulated processes and hosts. A SimNode is one process (a replica, or a client application): its
 * timers and incoming network events pass through `gate`, which drops them once the process crashed
 * (the incarnation changed) and holds them while it is paused (SIGSTOP, a long GC) — delivering them late,
 * in order, when it resumes. A SimHost groups processes that die together (a machine).
 *
 * CPU time (optional, zero by default): a node with a `cpu` cost model spends `perMessageMs` (+ `perKiBMs`
 * per KiB) handling each incoming message, and a `stall(ms)` blocks its event loop (a long synchronous
 * task, a GC). Its event loop is single-threaded: an event that arrives while it is busy waits (FIFO)
 * until the work before it is done, timers included — so a busy replica really lags and its acks leave
 * late. A handler runs at the END of its CPU slice (what it sends leaves after the work). With no cost
 * and no stall, events run at once, exactly as without the model.
 */
import type { Env, Logger, TimerHandle } from '@tandem/core';
import type { Transport } from '@tandem/transport';
import type { SeededRandom } from './random.js';
import type { ScheduledEvent, Scheduler } from './scheduler.js';

/** A simulated process's state: running, paused, catching up after a pause, or crashed. */
export type NodeState = 'up' | 'paused' | 'resuming' | 'down';

/** CPU time a node spends per event (virtual ms). Timers and connection events cost `perTimerMs`. */
export interface CpuCost {
  perMessageMs: number;
  perKiBMs: number;
  perTimerMs: number;
}

/** No CPU cost: every event takes no virtual time. */
export const NO_CPU_COST: Readonly<CpuCost> = Object.freeze({ perMessageMs: 0, perKiBMs: 0, perTimerMs: 0 });

interface GatedEvent {
  label: string;
  fn: () => void;
  /** CPU time it costs (ms). */
  cost: number;
}

interface QueuedCpuEvent extends GatedEvent {
  ev: ScheduledEvent;
}

/** How a node reaches the simulated network: told about crashes, and given a transport per incarnation. */
export interface NodeHooks {
  /** Called when a node crashes, before its incarnation changes (the network drops its connections). */
  onCrash(node: SimNode, hostCrash: boolean, resets: boolean): void;
  /** A transport bound to one incarnation of a node. */
  transportFor(node: SimNode, incarnation: number): Transport;
}

/** A simulated machine: its nodes crash together. */
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

/** A simulated process: its timers, connections and CPU time run on the simulation's virtual clock, and it can crash, pause and restart. */
export class SimNode {
  readonly name: string;
  readonly host: SimHost;
  #state: NodeState = 'up';
  #incarnation = 0;
  #frozen: GatedEvent[] = [];
  /** CPU model: what one event costs; the event loop is busy until busyUntil. */
  cpu: CpuCost = { ...NO_CPU_COST };
  #busyUntil = 0;
  /** Events waiting for the event loop (each scheduled at the end of its CPU slice), in order. */
  #cpuQueue: QueuedCpuEvent[] = [];
  /** Virtual CPU time spent (handled events + stalls), for reports. */
  cpuTimeMs = 0;
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

  /** Running, paused, resuming or down. */
  get state(): NodeState {
    return this.#state;
  }

  /** Incremented at every crash: callbacks of an older incarnation are dropped. */
  get incarnation(): number {
    return this.#incarnation;
  }

  /** Run `fn` in this node if incarnation `inc` is still alive: now if running (after the work queued
   * before it, when the node has a CPU cost model or is stalled), at resume if paused. `bytes`: the size
   * of a delivered message (its CPU cost), undefined for timers and connection events.
   * Returns false when the incarnation is dead (the event is dropped). */
  gate(inc: number, label: string, fn: () => void, bytes?: number): boolean {
    if (inc !== this.#incarnation || this.#state === 'down') return false;
    const cost = this.#costOf(bytes);
    if (this.#state === 'paused' || this.#state === 'resuming') {
      this.#frozen.push({ label, fn, cost });
      return true;
    }
    const now = this.#sched.now;
    if (cost <= 0 && this.#busyUntil <= now && this.#cpuQueue.length === 0) {
      fn();
      return true;
    }
    this.#enqueue({ label, fn, cost });
    return true;
  }

  /** True while the event loop has work queued or a stall running (the node is up but busy), or while a
   * resumed node is still working through what queued during its pause. */
  get busy(): boolean {
    return this.#state === 'resuming' || this.#busyUntil > this.#sched.now || this.#cpuQueue.length > 0;
  }

  /** Block the event loop for `ms` (a long synchronous task, a GC pause): it starts after the work already
   * queued; timers and deliveries meanwhile wait and run late, in order. Unlike pause(), the process keeps
   * running — it is busy. Only a running node (state 'up') stalls. */
  stall(ms: number): void {
    if (this.#state !== 'up' || !(ms > 0)) return;
    this.#sched.note(`stall ${this.name} ${ms.toFixed(1)}`);
    this.#busyUntil = Math.max(this.#busyUntil, this.#sched.now) + ms;
    this.cpuTimeMs += ms;
  }

  #costOf(bytes: number | undefined): number {
    const c = this.cpu;
    if (bytes === undefined) return c.perTimerMs;
    return c.perMessageMs + (c.perKiBMs * bytes) / 1024;
  }

  #enqueue(e: GatedEvent): void {
    const inc = this.#incarnation;
    const start = Math.max(this.#sched.now, this.#busyUntil);
    const end = start + e.cost;
    this.#busyUntil = end;
    this.cpuTimeMs += e.cost;
    const item: QueuedCpuEvent = { ...e, ev: undefined as unknown as ScheduledEvent };
    item.ev = this.#sched.at(end, `cpu ${this.name} ${e.label}`, () => {
      if (this.#cpuQueue[0] === item) this.#cpuQueue.shift();
      else this.#cpuQueue = this.#cpuQueue.filter((q) => q !== item);
      if (inc !== this.#incarnation || this.#state === 'down') return;
      item.fn();
    });
    this.#cpuQueue.push(item);
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
   * its connections; with `hostCrash` nothing is reset — peers just stop hearing from it). `resets: false`
   * on a live host: the kernel's resets are lost on the way — also those answering data sent to the dead
   * process later — while dials are still refused. */
  crash(hostCrash = false, resets = !hostCrash): void {
    if (this.#state === 'down') return;
    this.#sched.note(`crash ${this.name}${hostCrash ? ' (host)' : resets ? '' : ' (resets lost)'}`);
    this.#hooks.onCrash(this, hostCrash, resets);
    this.#incarnation++;
    this.#state = 'down';
    this.#frozen = [];
    for (const q of this.#cpuQueue) q.ev.cancel();
    this.#cpuQueue = [];
    this.#busyUntil = 0;
  }

  /** Bring a crashed process back as a new incarnation (call env() again and build its objects). */
  restart(): void {
    if (this.#state !== 'down') throw new Error(`node ${this.name} is ${this.#state}, not down`);
    this.#sched.note(`restart ${this.name}`);
    this.#state = 'up';
  }

  /** Freeze the node (SIGSTOP-like): its events queue until `resume`. */
  pause(): void {
    if (this.#state !== 'up' && this.#state !== 'resuming') return;
    this.#sched.note(`pause ${this.name}`);
    // Work the event loop had queued is frozen too, ahead of what arrives during the pause.
    if (this.#cpuQueue.length > 0) {
      for (const q of this.#cpuQueue) q.ev.cancel();
      this.#frozen.unshift(...this.#cpuQueue.map((q) => ({ label: q.label, fn: q.fn, cost: q.cost })));
      this.#cpuQueue = [];
    }
    this.#busyUntil = 0;
    this.#state = 'paused';
  }

  /** Resume: everything that happened to it while paused is delivered now, one event at a time and in
   * order (events arriving meanwhile queue behind them; each costs its CPU time); then it runs normally. */
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
      this.cpuTimeMs += f.cost;
      this.#sched.after(f.cost, `late ${f.label}`, () => {
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
