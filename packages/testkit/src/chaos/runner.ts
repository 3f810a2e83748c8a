/**
 * The chaos runner: two real replica processes, C clients running flat out, and a nemesis that SIGKILLs
 * (then restarts) or SIGSTOPs (then SIGCONTs) the current primary or backup on a schedule that does not
 * wait for full recovery. At the end: the load stops, the pair settles, the workload reads the serving
 * replica's state and checks its history; the run is summed up in one report (see `ChaosReport`).
 *
 * THE RULE (the one schedule the nemesis never plays): it does not kill or pause a replica while the
 * other one holds no state — has not reported role `backup` since its restart or resume. With the
 * primary gone and the other replica empty, acknowledged writes are gone in any primary/backup system;
 * that double fault tests nothing. It may kill the backup while it is still joining (the primary holds
 * the state), a replica 0–200 ms after it became backup again, the new primary right after a takeover
 * once the restarted replica is backup. A drop the service decided on its own (a `peer-faulty`) does not
 * re-arm the rule: that is a fault of the system under test, and the runner reports what follows.
 */
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { classifyAlarms, type FaultSpan, type SuccessRecord } from './analysis.js';
import { rearmResumed, restartLater, runNemesis } from './nemesis.js';
import { type ChaosOptions, type ResolvedChaosOptions, resolveChaosOptions } from './options.js';
import { ChaosReplica, compactEvent, parseJsonEventLine } from './process.js';
import { ChaosRandom } from './random.js';
import { CHAOS_RULE, type ActionRecord, type ChaosReport, type RunEnd } from './report.js';
import { runReport, settle, stopLoad } from './run-end.js';
import type {
  CallResult,
  ChaosBounds,
  ChaosTarget,
  ChaosWorkload,
  ReplicaLaunch,
  SlotIndex,
  TimedEvent,
  WorkloadVerdict,
} from './types.js';

export type { ChaosControl, ChaosOptions, RestartMode } from './options.js';

/**
 * Run a chaos run against real replica processes of `target`: start the pair and the workload, fault the replicas `options.actions`
 * times, and report.
 */
export async function runChaos(target: ChaosTarget, options: ChaosOptions): Promise<ChaosReport> {
  return new ChaosRun(target, options).run();
}

class Aborted extends Error {
  static override readonly name = 'Aborted';
  override readonly name = 'Aborted';
}

/** One chaos run (internal: its members are shared with nemesis.ts and run-end.ts). */
export class ChaosRun {
  readonly target: ChaosTarget;
  readonly o: ResolvedChaosOptions;
  readonly origin = performance.now();
  readonly rnd: ChaosRandom;
  servers: readonly [string, string] = ['', ''];
  slots: [ChaosReplica | undefined, ChaosReplica | undefined] = [undefined, undefined];
  generations: [number, number] = [0, 0];
  processes: ChaosReplica[] = [];
  bounds: ChaosBounds | undefined;
  rejoinFrom: 'bounds.rejoinMs' | 'bounds.joinTimeoutMs' = 'bounds.joinTimeoutMs';
  actions: ActionRecord[] = [];
  faults: FaultSpan[] = [];
  successes: SuccessRecord[] = [];
  okCount = 0;
  failCount = 0;
  lastSuccessAt = 0;
  loadStartedAt: number | undefined;
  loadStoppedAt: number | undefined;
  loadRunning = false;
  ended: RunEnd | undefined;
  error: string | undefined;
  abortedAt: { from: number; to: number } | undefined;
  /** Each replica's last status and events when the run ended early. */
  endSnapshot: Record<string, unknown>[] | undefined;
  /** When the runner began stopping the replicas. */
  shutdownAt: number | undefined;
  redundancyRecords: { why: string; [k: string]: unknown }[] = [];
  unexpectedExits: Record<string, unknown>[] = [];
  ruleDeferrals = 0;
  restartCount = { serve: 0, rejoin: 0 };
  restartToggle = 0;
  pendingFaults = new Set<Promise<void>>();
  timers = new Set<NodeJS.Timeout>();
  #changeWaiters = new Set<() => void>();
  #abortWaiters = new Set<(err: Aborted) => void>();
  workload: ChaosWorkload | undefined;
  constructor(target: ChaosTarget, options: ChaosOptions) {
    this.target = target;
    this.o = resolveChaosOptions(options);
    this.rnd = new ChaosRandom(this.o.seed);
  }

  now(): number {
    return performance.now() - this.origin;
  }

  log(line: string): void {
    this.o.log(`[chaos ${(this.now() / 1000).toFixed(1).padStart(5)}s] ${line}`);
  }

  // ---- waiting ----------------------------------------------------------------------------------

  changed(): void {
    for (const w of this.#changeWaiters) w();
    this.#changeWaiters.clear();
  }

  /** Resolves on the next event / exit, or after `ms`; rejects once the run is aborted. */
  waitChange(ms: number): Promise<void> {
    return this.#abortable(
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.#changeWaiters.add(done);
      }),
    );
  }

  sleep(ms: number): Promise<void> {
    return this.#abortable(new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms))));
  }

  #abortable<T>(p: Promise<T>): Promise<T> {
    if (this.ended !== undefined && this.ended !== 'completed') return Promise.reject(new Aborted(this.ended));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (err: Aborted): void => reject(err);
      this.#abortWaiters.add(onAbort);
      p.then(
        (v) => {
          this.#abortWaiters.delete(onAbort);
          resolve(v);
        },
        (e: unknown) => {
          this.#abortWaiters.delete(onAbort);
          reject(e);
        },
      );
    });
  }

  async waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = this.now() + timeoutMs;
    while (!pred()) {
      if (this.now() > deadline)
        throw new Error(`no ${what} within ${timeoutMs} ms; ${this.processes.map((p) => JSON.stringify(p.describe(8))).join('; ')}`);
      await this.waitChange(Math.min(100, Math.max(1, deadline - this.now())));
    }
  }

  /** End the run early (outage, lost redundancy, Ctrl-C). */
  abort(reason: RunEnd): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    const err = new Aborted(reason);
    for (const w of this.#abortWaiters) w(err);
    this.#abortWaiters.clear();
  }

  // ---- processes --------------------------------------------------------------------------------

  other(p: ChaosReplica): ChaosReplica | undefined {
    return this.slots[(1 - p.launch.slot) as SlotIndex];
  }

  spawnSlot(slot: SlotIndex, role: 'primary' | 'backup', how: ReplicaLaunch['how']): ChaosReplica {
    const generation = this.generations[slot]++;
    const launch: ReplicaLaunch = {
      slot,
      name: slot === 0 ? 'a' : 'b',
      listen: this.servers[slot],
      peer: this.servers[1 - slot]!,
      role,
      how,
      generation,
    };
    const p = new ChaosReplica({
      launch,
      command: this.target.launch(launch),
      now: () => this.now(),
      parseLine: this.target.parseLine ?? parseJsonEventLine,
      onEvent: (e, r) => this.#onEvent(e, r),
      onExit: (r) => this.#onExit(r),
    });
    this.slots[slot] = p;
    this.processes.push(p);
    return p;
  }

  #onEvent(e: TimedEvent, r: ChaosReplica): void {
    this.o.onEvent?.(e);
    if (e.event === 'timing' && this.bounds === undefined && this.target.bounds === undefined) this.#takeBounds(e);
    if (this.loadStartedAt !== undefined && this.ended === undefined) {
      if (e.event === 'peer-faulty') {
        const peer = r.launch.slot === 0 ? 'b' : 'a';
        const [c] = classifyAlarms(
          [{ at: e.at, node: r.name, peer, reason: String(e.reason ?? '') }],
          this.faults,
          this.detectionWindowMs(),
        );
        this.log(
          `${c!.falseAlarm ? 'FALSE ALARM: ' : ''}${r.name} declared ${peer} faulty (${String(e.reason ?? '?')})${c!.falseAlarm ? ` — ${peer} was neither killed nor paused in the last ${this.detectionWindowMs()} ms` : ''}`,
        );
      } else if (e.event === 'takeover') this.log(`${r.name} took over at epoch ${String(e.epoch)}`);
      else if (e.event === 'divergence' || e.event === 'lost-entries')
        this.log(`${e.event.toUpperCase()} on ${r.name}: ${JSON.stringify(compactEvent(e))}`);
      else if (
        (e.event === 'role' || e.event === 'serving') &&
        r.role === 'backup' &&
        r.heldStateSince === e.at &&
        (r.launch.generation > 0 || r.resumedAt !== undefined)
      ) {
        const since =
          r.resumedAt !== undefined
            ? `${Math.round(e.at - r.resumedAt)} ms after SIGCONT`
            : `${Math.round(e.at - r.spawnedAt)} ms after ${r.launch.how === 'rejoin' ? 'rejoin' : 'restart'}`;
        this.log(`${r.name} holds state again: backup ${since}`);
      }
    }
    this.changed();
  }

  #onExit(r: ChaosReplica): void {
    if (!r.killedByNemesis && !r.stopping && this.ended === undefined) {
      const rec = {
        node: r.name,
        pid: r.pid,
        generation: r.launch.generation,
        at: Math.round(r.exitedAt!),
        exit: r.exit,
        stderrTail: r.stderrTail.slice(-10),
      };
      this.unexpectedExits.push(rec);
      this.log(`UNEXPECTED EXIT of ${r.name} (pid ${r.pid}, ${JSON.stringify(r.exit)}); stderr: ${r.stderrTail.slice(-3).join(' | ')}`);
      if (this.loadStartedAt !== undefined && this.slots[r.launch.slot] === r) {
        const span: FaultSpan = { node: r.name, kind: 'kill', start: r.exitedAt!, end: Infinity };
        this.faults.push(span);
        this.track(restartLater(this, r, span, undefined));
      }
    }
    this.changed();
  }

  #takeBounds(e: TimedEvent): void {
    const b = (e.bounds ?? {}) as Partial<ChaosBounds>;
    if (typeof b.worstCaseFailoverMs !== 'number' || typeof b.joinTimeoutMs !== 'number') return;
    this.bounds = {
      worstCaseFailoverMs: b.worstCaseFailoverMs,
      takeoverMs: b.takeoverMs ?? b.worstCaseFailoverMs,
      peerFaultyMs: b.peerFaultyMs ?? 0,
      joinTimeoutMs: b.joinTimeoutMs,
      ...(typeof b.rejoinMs === 'number' ? { rejoinMs: b.rejoinMs } : {}),
    };
  }

  get b(): ChaosBounds {
    if (!this.bounds) throw new Error('no timing bounds');
    return this.bounds;
  }
  rejoinBoundMs(): number {
    return this.b.rejoinMs ?? this.b.joinTimeoutMs;
  }
  stallBoundMs(): number {
    return this.b.worstCaseFailoverMs + this.rejoinBoundMs();
  }
  detectionWindowMs(): number {
    return this.b.takeoverMs + this.b.peerFaultyMs;
  }
  pauseMs(): number {
    return this.b.worstCaseFailoverMs + this.o.pauseMarginMs;
  }

  // ---- the run ----------------------------------------------------------------------------------

  async run(): Promise<ChaosReport> {
    const onAbortSignal = (): void => {
      this.log('interrupted: stopping the replicas');
      this.abort('interrupted');
    };
    if (this.o.signal?.aborted) this.ended = 'interrupted';
    this.o.signal?.addEventListener('abort', onAbortSignal, { once: true });
    const watchdog = setInterval(() => this.#watchdog(), 100);
    let verdict: WorkloadVerdict | undefined;
    let verifyError: string | undefined;
    let servingNode: string | undefined;
    try {
      this.servers = this.target.addresses
        ? await this.target.addresses()
        : [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
      await this.#startPair();
      this.workload = this.target.workload({
        servers: this.servers,
        clients: this.o.clients,
        seed: this.o.seed,
        now: () => this.now(),
        origin: this.origin,
        record: (r) => this.#record(r),
      });
      this.loadStartedAt = this.now();
      this.lastSuccessAt = this.loadStartedAt;
      this.loadRunning = true;
      this.workload.start();
      this.log(
        `load: ${this.o.clients} clients flat out against ${this.servers.join(', ')}; nemesis ${this.o.nemesis} × ${this.o.actions}, seed ${this.o.seed}; ` +
          `stall bound ${this.stallBoundMs()} ms (worst-case failover ${this.b.worstCaseFailoverMs} + rejoin ${this.rejoinBoundMs()} from ${this.rejoinFrom}), pause ${this.pauseMs()} ms`,
      );
      this.log(`RULE: ${CHAOS_RULE}`);
      this.o.onStarted?.({
        now: () => this.now(),
        replicas: () => [...this.slots],
        servers: this.servers,
        bounds: this.b,
        actions: () => this.actions,
      });
      await this.sleep(this.o.warmupMs);
      await runNemesis(this);
      await this.#finishFaults();
      await this.#recoverTail();
      if (this.ended === undefined) this.ended = 'completed';
    } catch (err) {
      if (!(err instanceof Aborted)) {
        this.error = (err as Error).stack ?? String(err);
        this.log(`error: ${(err as Error).message}`);
        this.abort('error');
      }
    }
    try {
      await stopLoad(this);
      if (this.ended !== 'interrupted' && this.workload) {
        const serving = await settle(this);
        servingNode = serving?.name;
        try {
          verdict = await this.workload.verify({ serving, replicas: [...this.slots], servers: this.servers });
        } catch (err) {
          verifyError = (err as Error).message;
          this.log(`verification failed: ${verifyError}`);
        }
      }
    } catch (err) {
      verifyError = (err as Error).message;
    } finally {
      clearInterval(watchdog);
      this.o.signal?.removeEventListener('abort', onAbortSignal);
      for (const t of this.timers) clearTimeout(t);
      this.shutdownAt = this.now(); // events after this are the runner's own doing
      await Promise.all(this.processes.map((p) => (this.ended === 'interrupted' ? p.kill() : p.stop())));
    }
    return runReport(this, verdict, verifyError, servingNode);
  }

  async #startPair(): Promise<void> {
    const timeout = this.o.startTimeoutMs;
    const a = this.spawnSlot(0, 'primary', 'start');
    const exited = (p: ChaosReplica) => () => {
      if (!p.alive) throw new Error(`${p.name} exited during startup (${JSON.stringify(p.exit)}): ${p.stderrTail.join('\n')}`);
      return false;
    };
    await this.waitFor(() => a.serving || exited(a)(), timeout, 'serving primary a');
    const b = this.spawnSlot(1, 'backup', 'start');
    await this.waitFor(
      () => (b.role === 'backup' && a.role === 'primary') || exited(a)() || exited(b)(),
      timeout,
      'pair a primary + b backup',
    );
    if (this.target.bounds) this.bounds = { ...this.target.bounds };
    if (!this.bounds)
      throw new Error(
        `no timing event with bounds {worstCaseFailoverMs, joinTimeoutMs, …} on the replicas' stdout; give ChaosTarget.bounds`,
      );
    this.rejoinFrom = this.bounds.rejoinMs !== undefined ? 'bounds.rejoinMs' : 'bounds.joinTimeoutMs';
    const t = this.now();
    a.heldStateSince = t;
    b.heldStateSince ??= t;
    this.log(`pair up: a primary (pid ${a.pid}), b backup (pid ${b.pid})`);
  }

  #record(r: CallResult): void {
    if (r.ok) {
      this.okCount++;
      this.successes.push({ call: r.call, return: r.return, epoch: r.epoch });
      if (this.loadRunning && this.bounds && r.return - this.lastSuccessAt > this.stallBoundMs()) {
        this.log(`STALL: no successful reply for ${Math.round(r.return - this.lastSuccessAt)} ms (bound ${this.stallBoundMs()} ms)`);
      }
      if (r.return > this.lastSuccessAt) this.lastSuccessAt = r.return;
    } else this.failCount++;
  }

  #lastProgress = 0;
  #lastProgressOps = 0;
  #watchdog(): void {
    const now = this.now();
    if (!this.loadRunning || this.ended !== undefined) return;
    rearmResumed(this);
    if (now - this.#lastProgress >= 5000) {
      const ops = this.okCount + this.failCount;
      if (this.#lastProgress > 0) {
        const rate = ((ops - this.#lastProgressOps) * 1000) / (now - this.#lastProgress);
        this.log(
          `${this.actions.length}/${this.o.actions} actions, ${ops} ops (${Math.round(rate)}/s), ${this.okCount} acked; ${this.rolesLine()}`,
        );
      }
      this.#lastProgress = now;
      this.#lastProgressOps = ops;
    }
    if (now - this.lastSuccessAt > this.o.outageAbortMs) {
      this.log(`OUTAGE: no successful reply for ${Math.round(now - this.lastSuccessAt)} ms — ending the run (${this.rolesLine()})`);
      const from = this.lastSuccessAt;
      this.abort('outage');
      this.abortedAt = { from, to: now };
    }
  }

  rolesLine(): string {
    return this.slots
      .map(
        (p, i) =>
          `${i === 0 ? 'a' : 'b'}=${!p ? 'down' : !p.alive ? 'down' : p.paused ? 'paused' : (p.role ?? 'starting')}${p?.alive && p.heldStateSince === undefined ? '(no state)' : ''}`,
      )
      .join(' ');
  }

  track(p: Promise<void>): void {
    const q = p.catch(() => undefined).finally(() => this.pendingFaults.delete(q));
    this.pendingFaults.add(q);
  }

  /** Wait until every pause has been continued and every killed replica restarted. */
  async #finishFaults(): Promise<void> {
    while (this.pendingFaults.size > 0) await this.#abortable(Promise.all([...this.pendingFaults]));
  }

  healthy(): boolean {
    const [a, b] = this.slots;
    if (!a || !b || !a.up || !b.up) return false;
    const pb = (p: ChaosReplica, q: ChaosReplica): boolean => p.role === 'primary' && q.role === 'backup' && q.heldStateSince !== undefined;
    return pb(a, b) || pb(b, a);
  }

  async #recoverTail(): Promise<void> {
    const start = this.now();
    while (!this.healthy()) {
      if (this.now() - start > this.o.redundancyTimeoutMs && this.now() - this.lastSuccessAt < this.stallBoundMs()) {
        this.redundancyLoss(`the pair was not primary + backup again within ${this.o.redundancyTimeoutMs} ms after the last action`);
        return;
      }
      await this.waitChange(50);
    }
    await this.sleep(this.o.tailMs);
    const minEnd = (this.loadStartedAt ?? 0) + this.o.minDurationMs;
    if (this.now() < minEnd) await this.sleep(minEnd - this.now());
  }

  redundancyLoss(why: string): void {
    const rec = { at: Math.round(this.now()), why, replicas: this.slots.map((p) => p?.describe(10) ?? null) };
    this.redundancyRecords.push(rec);
    this.log(`REDUNDANCY LOST: ${why} (${this.rolesLine()}) — ending the run`);
    this.abort('redundancy');
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
