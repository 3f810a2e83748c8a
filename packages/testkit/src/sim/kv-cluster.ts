/**
 * The key-value simulation's world: two replicas on two hosts (`ra` on hostA, `rb` on hostB), clients
 * c0 (co-located with ra), c1 (with rb) and the others alone, their workload and its recorded history,
 * and the bookkeeping the checks need (fault actions, outages per process, replica events, `blocked`
 * reports and the operator's promote).
 */
import {
  computeTimingBounds,
  createClient,
  createReplica,
  errorName,
  resolveConfig,
  type DerivedTimingBounds,
  type Replica,
  type ReplicaEvent,
  type ReplicaOptions,
  type ReplicationConfig,
  type Role,
} from '@tandem/core';
import { installFaultHooks } from '@tandem/core/internal';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { LoadProfile, VariantSpec } from './faults.js';
import { createSimKvService, type SimKvReply, type SimKvRequest, type SimKvState } from './kv-service.js';
import type { SimHost, SimNode } from './node.js';
import type { Simulation } from './simulation.js';

const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);

export interface ReplicaSlot {
  name: string;
  node: SimNode;
  address: string;
  peer: string;
  replica: Replica<SimKvState> | undefined;
  /** This incarnation has held the service's state (it was a backup or a primary): a kill of its peer
   * then is a single fault. False for a fresh restart until it installed a copy. */
  stateful: boolean;
}

export interface ClientSlot {
  name: string;
  node: SimNode;
  remaining: number;
  finished: boolean;
  incarnation: number;
}

export interface KvClusterOptions {
  variant: VariantSpec;
  config: Partial<ReplicationConfig>;
  clients: number;
  opsPerClient: number;
  keys: number;
  hooks?: KvClusterHooks;
}

/** Test seams (see KvSimulationOptions.hooks). */
export interface KvClusterHooks {
  onStart?(cluster: KvCluster): void;
  wrapReplica?(replica: Replica<SimKvState>, slot: ReplicaSlot, cluster: KvCluster): Replica<SimKvState>;
}

/** Why a process did not answer for a while: crashed, paused (SIGSTOP), stalled (a fault's event-loop
 * stall), or cut off from its peer by a targeted network fault (its acks lost). `to` is Infinity while open. */
export interface Outage {
  node: string;
  kind: 'down' | 'paused' | 'stalled' | 'isolated';
  from: number;
  to: number;
}

/** What the lead's core adds (optional here, so this file works with and without it): a replica that
 * cannot prove nothing acknowledged was lost says so in its status and with a `blocked` event, and waits
 * for the operator's `promote({ acceptLoss: true })`. */
export interface BlockedInfo {
  reason: string;
  haveSeq: number;
}
interface MaybeBlockingReplica {
  status(): { blocked?: BlockedInfo | undefined };
  promote?: (options: { acceptLoss: boolean }) => unknown;
}

export interface BlockedReport {
  time: number;
  node: string;
  reason: string;
  haveSeq: number;
}

export interface OperatorAction {
  time: number;
  node: string;
  /** The promoted replica's appliedSeq: acknowledged operations beyond it were lost by the double fault. */
  appliedSeq: number;
  /** Acknowledged operations (before the promote) the promoted replica does not reflect. */
  lostOps: number;
  /** The promoted replica's key-value data: the state the history after the promote starts from (taken
   * when it starts serving: it may order forwarded entries first). */
  data: [string, string][];
  /** It serves now (appliedSeq, data and lostOps are final). */
  served: boolean;
}

/** A kill of the primary: was the other replica a backup in its epoch (the single-fault case), and what did
 * each hold (ground truth for judging a later `blocked`). */
export interface PrimaryKill {
  time: number;
  node: string;
  otherRole: Role | 'down';
  /** The primary had declared its backup faulty since it last admitted one (it was dropping it). */
  dropping: boolean;
  primarySeq: number;
  otherSeq: number;
}

interface EventWaiter {
  pred: (e: { time: number; node: string; event: ReplicaEvent }) => boolean;
  resolve: (e: { time: number; node: string; event: ReplicaEvent } | undefined) => void;
}

export class KvCluster {
  readonly sim: Simulation;
  readonly variant: VariantSpec;
  readonly config: Partial<ReplicationConfig>;
  readonly cfg: ReplicationConfig;
  readonly bounds: DerivedTimingBounds;
  readonly service = createSimKvService();
  readonly replicas: [ReplicaSlot, ReplicaSlot];
  readonly servers: readonly [string, string];
  readonly clients: ClientSlot[] = [];
  readonly clientNodes: Set<SimNode>;
  readonly opsPerClient: number;
  readonly keys: number;
  readonly failures: string[] = [];
  readonly faultLog: string[] = [];
  readonly history: KvHistoryOp[] = [];
  /** (epoch, seq) of each acknowledged operation (what the replica that answered sequenced it as). */
  readonly opInfo = new WeakMap<KvHistoryOp, { seq: number; epoch: number }>();
  readonly replicaEvents: { time: number; node: string; event: ReplicaEvent }[] = [];
  /** Fault actions: moments the service may be disrupted (a crash, a pause or stall start, a client's
   * resumption, a chaos window's start or end, a severing; for faults after which only the frozen process
   * can serve, its resumption; an operator's promote). The liveness bounds count from the latest one.
   * Restarts are recovery, not faults. */
  readonly disruptions: number[] = [];
  /** Chaos windows: loss beyond maxRetransmits is outside the bound's assumptions; completions inside are exempt. */
  readonly chaosWindows: [number, number][] = [];
  /** Replicas that started serving without every acknowledged entry (#checkServesEverything). */
  readonly servedBehind: string[] = [];
  /** Windows in which the only replica holding the state was frozen (see frozenSoleHolder). */
  readonly frozenWindows: [number, number][] = [];
  /** When every connection was reset (sever-connections). */
  readonly severs: number[] = [];
  /** Client incarnations that died with the primary's host, and when. */
  readonly diedWithPrimary: { label: string; at: number }[] = [];
  /** Client incarnations that died (any crash): their last call has an unknown outcome. */
  readonly deadClients = new Set<string>();
  readonly outages: Outage[] = [];
  readonly blockedReports: BlockedReport[] = [];
  readonly operatorActions: OperatorAction[] = [];
  readonly primaryKills: PrimaryKill[] = [];
  /** Lost-state double faults ('crash-primary-while-joining'): when, which joiner, and whether the copy
   * in flight landed after all (then nothing was lost). */
  readonly lostState: { at: number; joiner: string; averted: boolean; joinerEpoch: number }[] = [];
  /** Times the default generator would have made a lost-state double fault and did something else. */
  avoidedLostState = 0;
  /** Background (GC-like) stalls per replica name. */
  readonly gcStalls = new Map<string, number>();
  /** Intervals with no running replica in a serving role (primary / solo-primary; a paused one does not
   * serve, a busy one does — late). The last one is open (to = Infinity) while nobody serves. */
  readonly unserved: [number, number][] = [];
  #eventWaiters: EventWaiter[] = [];
  readonly #hooks: KvClusterHooks;

  constructor(sim: Simulation, options: KvClusterOptions) {
    this.sim = sim;
    this.#hooks = options.hooks ?? {};
    this.variant = options.variant;
    this.config = options.config;
    this.cfg = resolveConfig(options.config);
    this.bounds = computeTimingBounds(options.config);
    this.opsPerClient = options.opsPerClient;
    this.keys = options.keys;
    const hostA = sim.host('hostA');
    const hostB = sim.host('hostB');
    this.replicas = [
      { name: 'ra', node: sim.node('ra', hostA), address: 'sim://ra', peer: 'sim://rb', replica: undefined, stateful: false },
      { name: 'rb', node: sim.node('rb', hostB), address: 'sim://rb', peer: 'sim://ra', replica: undefined, stateful: false },
    ];
    this.servers = [this.replicas[0].address, this.replicas[1].address];
    const clientHosts: (SimHost | string)[] = [hostA, hostB];
    for (let i = 0; i < options.clients; i++) {
      const name = `c${i}`;
      this.clients.push({
        name,
        node: sim.node(name, clientHosts[i] ?? `host-${name}`),
        remaining: options.opsPerClient,
        finished: false,
        incarnation: 0,
      });
    }
    this.clientNodes = new Set(this.clients.map((c) => c.node));
  }

  // ---- time helpers (harness-level: not tied to any simulated process) ----------------------------

  sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => this.sim.scheduler.after(ms, 'driver', r));
  }

  async waitUntil(pred: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
    const end = this.sim.now + timeoutMs;
    while (!pred()) {
      if (this.sim.now >= end) return false;
      await this.sleep(stepMs);
    }
    return true;
  }

  /** The next replica event (from now on) matching `pred`, or undefined after `timeoutMs`. The promise
   * resolves in the same scheduler step as the event (act on it with `after(0)`: right after it). */
  nextEvent(
    pred: (e: { time: number; node: string; event: ReplicaEvent }) => boolean,
    timeoutMs: number,
  ): Promise<{ time: number; node: string; event: ReplicaEvent } | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const waiter: EventWaiter = {
        pred,
        resolve: (e) => {
          if (done) return;
          done = true;
          timer.cancel();
          this.#eventWaiters = this.#eventWaiters.filter((w) => w !== waiter);
          resolve(e);
        },
      };
      const timer = this.sim.scheduler.after(timeoutMs, 'driver wait', () => waiter.resolve(undefined));
      this.#eventWaiters.push(waiter);
    });
  }

  /** Run `fn` right after the current event (same virtual instant), outside any protocol call stack. */
  soon(fn: () => void): Promise<void> {
    return new Promise<void>((r) =>
      this.sim.scheduler.after(0, 'driver', () => {
        fn();
        r();
      }),
    );
  }

  noteFault(what: string, disruptive = true): void {
    this.faultLog.push(`${this.sim.now.toFixed(1)}ms ${what}`);
    this.sim.scheduler.note(`fault ${what}`);
    if (disruptive) this.disruptions.push(this.sim.now);
  }

  /**
   * A stalled or paused node that comes back first works through what queued meanwhile (at its CPU cost):
   * its fault is over when that backlog is done, not when the stall's timer ran out — the liveness bound
   * covers the protocol's recovery, not a busy process's queue. Notes the fault once `node` is idle (or
   * after `maxMs`).
   */
  noteFaultWhenIdle(node: SimNode, what: string, maxMs = 2000): void {
    const started = this.sim.now;
    this.#pendingNotes++;
    this.#whenIdle(
      node,
      () => {
        this.#pendingNotes--;
        this.noteFault(`${what}${this.sim.now > started ? ` (its backlog done ${(this.sim.now - started).toFixed(1)}ms later)` : ''}`);
      },
      maxMs,
    );
  }

  #pendingNotes = 0;

  /** A fault action is still to be noted (a node working through its backlog): no verdict yet. */
  get settling(): boolean {
    return this.#pendingNotes > 0 || this.frozenWindows.some((w) => w[1] === Number.POSITIVE_INFINITY);
  }

  get lastDisruption(): number {
    return this.disruptions.length > 0 ? this.disruptions[this.disruptions.length - 1]! : 0;
  }

  // ---- process faults, with the outages they cause -----------------------------------------------

  #openOutage(node: SimNode, kind: Outage['kind'], to = Number.POSITIVE_INFINITY): Outage {
    const o: Outage = { node: node.name, kind, from: this.sim.now, to };
    this.outages.push(o);
    return o;
  }

  #closeOutages(node: SimNode, kind: Outage['kind']): void {
    for (const o of this.outages) if (o.node === node.name && o.kind === kind && o.to === Number.POSITIVE_INFINITY) o.to = this.sim.now;
  }

  /** Kill a process (SIGKILL: its host's kernel resets its connections). */
  crash(node: SimNode): void {
    if (node.state === 'down') return;
    this.#recordPrimaryKill(node);
    if (node.state === 'paused' || node.state === 'resuming') this.#closeOutages(node, 'paused');
    node.crash();
    this.#openOutage(node, 'down');
    this.#clientDied(node);
    this.#updateServing();
  }

  crashHost(host: SimHost): void {
    for (const n of host.nodes) this.#recordPrimaryKill(n);
    this.sim.crashHost(host);
    for (const n of host.nodes) {
      this.#closeOutages(n, 'paused');
      if (!this.outages.some((o) => o.node === n.name && o.kind === 'down' && o.to === Number.POSITIVE_INFINITY))
        this.#openOutage(n, 'down');
      this.#clientDied(n);
    }
    this.#updateServing();
  }

  pause(node: SimNode): void {
    if (node.state !== 'up' && node.state !== 'resuming') return;
    node.pause();
    this.#openOutage(node, 'paused');
    this.#updateServing();
  }

  resume(node: SimNode): void {
    if (node.state !== 'paused') return;
    node.resume();
    this.#closeOutages(node, 'paused');
    this.#updateServing();
  }

  /** A fault's event-loop stall (see SimNode.stall); background GC stalls are load, not outages. */
  stall(node: SimNode, ms: number): void {
    if (node.state !== 'up') return;
    node.stall(ms);
    // The outage lasts until the node has worked through what queued during the stall (see noteFaultWhenIdle).
    const o = this.#openOutage(node, 'stalled');
    this.sim.scheduler.after(ms, 'driver', () =>
      this.#whenIdle(node, () => {
        if (o.to === Number.POSITIVE_INFINITY) o.to = this.sim.now;
      }),
    );
  }

  /** Run `then` once `node` is idle (its backlog done), or after `maxMs`, or at once when it is not up. */
  #whenIdle(node: SimNode, then: () => void, maxMs = 2000): void {
    const started = this.sim.now;
    const check = (): void => {
      if (node.state === 'up' && node.busy && this.sim.now - started < maxMs) this.sim.scheduler.after(1, 'driver', check);
      else then();
    };
    check();
  }

  /** A targeted network fault cuts `node` off from its peer (e.g. its acks are lost) until the returned
   * function is called. */
  isolate(node: SimNode): () => void {
    const o = this.#openOutage(node, 'isolated');
    return () => {
      if (o.to === Number.POSITIVE_INFINITY) o.to = this.sim.now;
    };
  }

  /** Is some running replica in a serving role? Keeps `unserved` up to date (called on every role change,
   * crash, pause and resume). */
  #updateServing(): void {
    const serving = this.replicas.some((s) => this.live(s) && s.node.state !== 'paused' && SERVING.has(s.replica!.status().role));
    const open = this.unserved.at(-1);
    const isOpen = open !== undefined && open[1] === Number.POSITIVE_INFINITY;
    if (serving && isOpen) open[1] = this.sim.now;
    else if (!serving && !isOpen) this.unserved.push([this.sim.now, Number.POSITIVE_INFINITY]);
  }

  /** Since when nobody serves (undefined: some replica serves now). */
  get unservedSince(): number | undefined {
    const open = this.unserved.at(-1);
    return open !== undefined && open[1] === Number.POSITIVE_INFINITY ? open[0] : undefined;
  }

  #clientDied(node: SimNode): void {
    const c = this.clients.find((s) => s.node === node);
    if (c) this.deadClients.add(`${c.name}#${c.incarnation}`);
  }

  #recordPrimaryKill(node: SimNode): void {
    const slot = this.replicas.find((s) => s.node === node);
    if (!slot || node.state === 'down' || !SERVING.has(this.role(slot)!)) return;
    const other = this.other(slot);
    const mine = this.replicaEvents.filter(
      (e) => e.node === slot.name && (e.event.type === 'peer-joined' || e.event.type === 'peer-faulty'),
    );
    this.primaryKills.push({
      time: this.sim.now,
      node: slot.name,
      otherRole: this.live(other) ? this.role(other)! : 'down',
      dropping: mine.at(-1)?.event.type === 'peer-faulty',
      primarySeq: slot.replica!.status().appliedSeq,
      otherSeq: this.live(other) ? other.replica!.status().appliedSeq : -1,
    });
  }

  /**
   * Background CPU load (not a fault): replica i's event loop costs `perMessageMs` (+ `perKiBMs` per KiB)
   * per message, and every ~gcEveryMs it stalls for 1…gcMaxMs (GC-like). Clients cost nothing.
   */
  applyLoad(profile: LoadProfile): void {
    const sched = this.sim.scheduler;
    const rng = this.sim.random;
    profile.replicas.forEach((l, i) => {
      const slot = this.replicas[i];
      if (!slot) return;
      slot.node.cpu = { perMessageMs: l.perMessageMs, perKiBMs: l.perKiBMs, perTimerMs: 0 };
      if (l.gcEveryMs <= 0) return;
      const tick = (): void => {
        if (slot.node.state === 'up') {
          slot.node.stall(rng.between(1, l.gcMaxMs));
          this.gcStalls.set(slot.name, (this.gcStalls.get(slot.name) ?? 0) + 1);
        }
        sched.after(rng.between(0.5, 1.5) * l.gcEveryMs, 'gc', tick);
      };
      sched.after(rng.between(0.5, 1.5) * l.gcEveryMs, 'gc', tick);
    });
  }

  // ---- replicas -----------------------------------------------------------------------------------

  startReplica(slot: ReplicaSlot, roleHint: 'primary' | 'backup' | 'auto'): void {
    const sched = this.sim.scheduler;
    const opts: ReplicaOptions<SimKvState, SimKvRequest, SimKvReply> = {
      service: this.service,
      env: slot.node.env(),
      listen: slot.address,
      peer: slot.peer,
      roleHint,
      nodeId: slot.name,
      config: this.config,
    };
    const created = createReplica(opts);
    if (this.variant.faultInjection) installFaultHooks(created, this.variant.faultInjection.variant);
    const replica = this.#hooks.wrapReplica ? this.#hooks.wrapReplica(created, slot, this) : created;
    slot.replica = replica;
    slot.stateful = false;
    const inc = slot.node.incarnation;
    replica.on((event) => {
      if (slot.node.incarnation !== inc) return;
      const type = (event as { type: string }).type;
      if (
        type === 'role' ||
        type === 'takeover' ||
        type === 'step-down' ||
        type === 'divergence' ||
        type === 'lost-entries' ||
        type === 'blocked'
      ) {
        sched.note(`${slot.name} ${type} ${'role' in event ? event.role : ''} ${'epoch' in event ? event.epoch : ''}`);
      }
      if (type === 'blocked') this.#noteBlocked(slot, event as unknown as Partial<BlockedInfo>);
      // A first primary starts from the initial state, which it holds: stateful too.
      if (event.type === 'role' && (event.role === 'backup' || SERVING.has(event.role))) slot.stateful = true;
      // A promoted replica serves from what it holds when it starts serving (it may order forwarded
      // entries first): that is the state the history after the promote starts from.
      if (type === 'promoted' || (event.type === 'role' && SERVING.has(event.role))) this.#promotedServes(slot);
      if (event.type === 'role' && event.role === 'solo-primary') this.#checkServesEverything(slot);
      const rec = { time: sched.now, node: slot.name, event };
      this.replicaEvents.push(rec);
      if (event.type === 'role') this.#updateServing();
      for (const w of [...this.#eventWaiters]) if (w.pred(rec)) w.resolve(rec);
    });
    void replica.start().catch((err: unknown) => {
      if (slot.node.incarnation === inc) this.failures.push(`${slot.name} failed to start: ${String(err)}`);
    });
  }

  /** A crashed server comes back and must rejoin as backup: told so ('backup', like `tandem-kv rejoin`),
   * or started like the first time ('auto', `tandem-kv serve`'s default: it probes its peer first). */
  restartReplica(slot: ReplicaSlot, roleHint: 'backup' | 'auto' = 'backup'): void {
    if (slot.node.state !== 'down') return;
    if (!slot.node.host.up) this.sim.rebootHost(slot.node.host);
    slot.node.restart();
    this.#closeOutages(slot.node, 'down');
    this.noteFault(
      roleHint === 'backup'
        ? `restart ${slot.name} (rejoins as backup)`
        : `restart ${slot.name} (role auto: must find the serving peer and rejoin)`,
      false,
    );
    this.startReplica(slot, roleHint);
  }

  /**
   * While `node` — the only replica holding the state — is frozen (paused or stalled) until `until`,
   * nobody can serve: the liveness clock restarts at its resumption (a fault action), and answers inside
   * the window are not measured (like a chaos window).
   */
  frozenSoleHolder(node: SimNode, until: number): void {
    const w: [number, number] = [this.sim.now, Number.POSITIVE_INFINITY];
    this.frozenWindows.push(w);
    this.sim.scheduler.note(`frozen sole holder ${node.name} until ${until.toFixed(1)}`);
    // …and until it has worked through what queued meanwhile (its backlog is not the protocol's latency).
    this.sim.scheduler.at(until, 'driver', () => this.#whenIdle(node, () => (w[1] = this.sim.now)));
  }

  /** Inside a chaos window or a frozen-sole-holder window: the bounds are not measured there. */
  exempt(t: number): boolean {
    return this.chaosWindows.some(([a, b]) => t >= a && t <= b) || this.frozenWindows.some(([a, b]) => t >= a && t <= b);
  }

  live(s: ReplicaSlot): boolean {
    return s.node.state !== 'down' && s.replica !== undefined;
  }

  role(s: ReplicaSlot): Role | undefined {
    return this.live(s) ? s.replica!.status().role : undefined;
  }

  other(s: ReplicaSlot): ReplicaSlot {
    return s === this.replicas[0] ? this.replicas[1] : this.replicas[0];
  }

  slotOf(name: string): ReplicaSlot | undefined {
    return this.replicas.find((s) => s.name === name);
  }

  /** The running replica that serves, with the highest epoch. */
  primary(): ReplicaSlot | undefined {
    const serving = this.replicas.filter((s) => s.node.state === 'up' && SERVING.has(this.role(s)!));
    serving.sort((a, b) => b.replica!.status().epoch - a.replica!.status().epoch);
    return serving[0];
  }

  backup(): ReplicaSlot | undefined {
    return this.replicas.find((s) => s.node.state === 'up' && this.role(s) === 'backup');
  }

  /** A primary with its backup, in the same epoch. */
  healthy(): boolean {
    const p = this.primary();
    const b = this.backup();
    return (
      p !== undefined && b !== undefined && p !== b && this.role(p) === 'primary' && p.replica!.status().epoch === b.replica!.status().epoch
    );
  }

  describeRoles(): string {
    return this.replicas
      .map((r) => {
        if (!this.live(r)) return `${r.name}=down`;
        const s = r.replica!.status();
        const blocked = (s as { blocked?: BlockedInfo }).blocked;
        return `${r.name}=${s.role}${r.node.state !== 'up' ? ` (${r.node.state})` : ''} epoch ${s.epoch} seq ${s.appliedSeq}${blocked ? ` BLOCKED (${blocked.reason})` : ''}`;
      })
      .join(', ');
  }

  // ---- blocked replicas and the operator ------------------------------------------------------------

  #noteBlocked(slot: ReplicaSlot, info: Partial<BlockedInfo>): void {
    const last = this.blockedReports.filter((b) => b.node === slot.name).at(-1);
    if (last && (this.operatorActions.at(-1)?.time ?? -1) < last.time) return; // same episode
    this.blockedReports.push({
      time: this.sim.now,
      node: slot.name,
      reason: String(info.reason ?? '?'),
      haveSeq: Number(info.haveSeq ?? slot.replica!.status().appliedSeq),
    });
    this.onBlocked?.();
  }

  /** Called on each new `blocked` report (the operator's pager). */
  onBlocked: (() => void) | undefined;

  /** A replica reported `blocked` after the last fault action and no operator has answered it yet: the
   * pair waits for a human, whose reaction time no protocol bound covers. */
  get awaitingOperator(): boolean {
    const b = this.blockedReports.at(-1);
    if (b === undefined) return false;
    return b.time >= this.lastDisruption && (this.operatorActions.at(-1)?.time ?? -1) < b.time;
  }

  /** Replicas whose status says `blocked` (the lead's ReplicaStatus.blocked; never set by older cores). */
  blockedNow(): ReplicaSlot[] {
    const out: ReplicaSlot[] = [];
    for (const s of this.replicas) {
      if (!this.live(s) || s.node.state !== 'up') continue;
      const b = (s.replica as unknown as MaybeBlockingReplica).status().blocked;
      if (b) {
        this.#noteBlocked(s, b);
        out.push(s);
      }
    }
    return out;
  }

  /** True when the replica object offers the operator action (the lead's `promote`). */
  canPromote(s: ReplicaSlot): boolean {
    return this.live(s) && typeof (s.replica as unknown as MaybeBlockingReplica).promote === 'function';
  }

  /**
   * The operator's answer to `blocked`: promote the blocked replica holding the most, accepting the loss
   * (acknowledged operations it does not reflect: seq beyond its appliedSeq, answered before now). The
   * linearizability check then holds within the segments before and after the promote (segments()).
   */
  operatorPromote(slot: ReplicaSlot): void {
    const seq = slot.replica!.status().appliedSeq;
    const now = this.sim.now;
    const lost = this.#lostOps(seq, now);
    this.operatorActions.push({
      time: now,
      node: slot.name,
      appliedSeq: seq,
      lostOps: lost,
      data: [...slot.replica!.state.data],
      served: false,
    });
    this.noteFault(`operator: ${slot.name}.promote({ acceptLoss: true }) at seq ${seq} (${lost} acknowledged operations beyond it)`);
    try {
      const r = (slot.replica as unknown as MaybeBlockingReplica).promote!({ acceptLoss: true });
      if (r instanceof Promise) r.catch((err: unknown) => this.failures.push(`operator promote of ${slot.name} failed: ${String(err)}`));
    } catch (err) {
      this.failures.push(`operator promote of ${slot.name} failed: ${String(err)}`);
    }
  }

  /**
   * The guarantee, checked when a replica starts serving alone (takeover, first primary, promote): its
   * state reflects every reply a surviving client has received (clients that died, or died with the
   * primary's host, are not covered; replies before an operator's promote were given up by the operator).
   */
  #checkServesEverything(slot: ReplicaSlot): void {
    const seq = slot.replica!.status().appliedSeq;
    const since = this.operatorActions.at(-1)?.time ?? Number.NEGATIVE_INFINITY;
    const dead = new Set([...this.deadClients, ...this.diedWithPrimary.map((d) => d.label)]);
    let acked = 0;
    let who = '';
    for (const h of this.history) {
      const info = this.opInfo.get(h);
      if (h.return === undefined || info === undefined || h.return <= since || dead.has(String(h.client))) continue;
      if (info.seq > acked) {
        acked = info.seq;
        who = `${h.client} ${h.op} ${h.key} at ${h.return.toFixed(1)}ms`;
      }
    }
    if (acked > seq) {
      this.servedBehind.push(
        `acknowledged data not reflected: ${slot.name} started serving alone (solo-primary, epoch ${slot.replica!.status().epoch}) at ${this.sim.now.toFixed(1)}ms holding seq ${seq}, but surviving clients had replies up to seq ${acked} (${who}); replicas: ${this.describeRoles()}`,
      );
    }
  }

  #promotedServes(slot: ReplicaSlot): void {
    const a = this.operatorActions.at(-1);
    if (a === undefined || a.node !== slot.name || a.served) return;
    a.served = true;
    a.appliedSeq = slot.replica!.status().appliedSeq;
    a.data = [...slot.replica!.state.data];
    a.lostOps = this.#lostOps(a.appliedSeq, a.time);
  }

  #lostOps(seq: number, before: number): number {
    let lost = 0;
    for (const h of this.history) {
      const info = this.opInfo.get(h);
      if (h.return !== undefined && h.return <= before && info !== undefined && info.seq > seq) lost++;
    }
    return lost;
  }

  /**
   * The history cut at each operator promote: the operator accepted to lose what the promoted replica does
   * not hold, so linearizability holds within each segment, not across. Segment i+1 starts from the
   * promoted replica's data (as completed puts before it); an operation called before a promote and
   * answered after it belongs to the later segment (called at the promote), and is outcome-unknown in
   * the earlier one.
   */
  segments(history: readonly KvHistoryOp[]): KvHistoryOp[][] {
    if (this.operatorActions.length === 0) return [[...history]];
    const cuts = [...this.operatorActions].sort((a, b) => a.time - b.time);
    const out: KvHistoryOp[][] = [];
    for (let i = 0; i <= cuts.length; i++) {
      const from = i === 0 ? Number.NEGATIVE_INFINITY : cuts[i - 1]!.time;
      const to = i === cuts.length ? Number.POSITIVE_INFINITY : cuts[i]!.time;
      const seg: KvHistoryOp[] = [];
      if (i > 0)
        for (const [key, value] of cuts[i - 1]!.data)
          seg.push({ client: 'operator', op: 'put', key, value, call: from - 2, return: from - 1 });
      for (const h of history) {
        if (h.call >= to) continue;
        if (h.call < from) {
          if (h.return !== undefined && h.return > from && h.return <= to) seg.push({ ...h, call: from });
          continue;
        }
        seg.push(h.return !== undefined && h.return > to ? { ...h, return: undefined } : h);
      }
      out.push(seg);
    }
    return out;
  }

  // ---- clients ------------------------------------------------------------------------------------

  /** Start (or continue, after a restart) a client's workload: get/put/append on random keys with
   * unique written values, each operation recorded with virtual call and return times. */
  runClient(slot: ClientSlot): void {
    const sched = this.sim.scheduler;
    const rng = this.sim.random;
    const inc = slot.node.incarnation;
    const env = slot.node.env();
    const client = createClient({ service: this.service, env, servers: this.servers, config: this.config });
    const label = `${slot.name}#${slot.incarnation}`;
    const pause = (ms: number) => new Promise<void>((r) => env.setTimer(ms, r));
    void (async () => {
      while (slot.remaining > 0) {
        await pause(rng.between(0, 15));
        const i = this.opsPerClient - slot.remaining;
        slot.remaining--;
        const key = `k${rng.int(0, this.keys - 1)}`;
        const r = rng.next();
        const req: SimKvRequest =
          r < 0.4
            ? { op: 'get', key }
            : r < 0.6
              ? { op: 'put', key, value: `${label}.${i};` }
              : { op: 'append', key, value: `${label}.${i};` };
        const rec: KvHistoryOp = { client: label, op: req.op, key, value: req.op === 'get' ? null : req.value, call: sched.now };
        this.history.push(rec);
        sched.note(`call ${label} ${req.op} ${key}`);
        try {
          const rep = await client.callWithInfo(req);
          rec.return = sched.now;
          this.opInfo.set(rec, { seq: rep.seq, epoch: rep.epoch });
          if (req.op === 'get') rec.value = rep.reply.value;
          sched.note(`return ${label} ${req.op} ${key} ${rep.reply.value ?? '∅'}`);
        } catch (err) {
          if (slot.node.incarnation !== inc) return;
          if (errorName(err) === 'ServiceUnavailableError') {
            this.failures.push(
              `liveness: ${label} ${req.op} ${key} called at ${rec.call.toFixed(1)}ms failed with ServiceUnavailableError at ${sched.now.toFixed(1)}ms`,
            );
          } else this.failures.push(`${label} ${req.op} ${key}: unexpected ${errorName(err)}: ${(err as Error).message}`);
        }
      }
      if (slot.node.incarnation === inc) slot.finished = true;
    })();
  }

  /** A crashed client process comes back as a new client (new clientId) and finishes the workload. */
  restartClient(slot: ClientSlot): void {
    if (slot.node.state !== 'down') return;
    slot.node.restart();
    this.#closeOutages(slot.node, 'down');
    slot.incarnation++;
    if (slot.remaining > 0) this.runClient(slot);
    else slot.finished = true;
  }

  activeClients(): ClientSlot[] {
    return this.clients.filter((c) => !c.finished && c.node.state === 'up');
  }

  /** Read a key through a fresh client process, recording the read in the history. */
  async finalRead(
    key: string,
    reader: { callWithInfo(req: SimKvRequest): Promise<{ reply: SimKvReply; seq: number; epoch: number }> },
  ): Promise<void> {
    const rec: KvHistoryOp = { client: 'reader', op: 'get', key, value: null, call: this.sim.now };
    this.history.push(rec);
    try {
      const rep = await reader.callWithInfo({ op: 'get', key });
      rec.value = rep.reply.value;
      rec.return = this.sim.now;
      this.opInfo.set(rec, { seq: rep.seq, epoch: rep.epoch });
    } catch (err) {
      this.failures.push(`final read of ${key}: ${errorName(err)}: ${(err as Error).message}`);
    }
  }

  // ---- liveness, as the run goes -------------------------------------------------------------------

  /**
   * An operation that has certainly broken the liveness bound: pending (its client alive and not paused),
   * and more than `boundMs` past the later of its call and the last fault action. Only meaningful while no
   * further fault action can come (recovery, the end of the workload): then the run can stop at once.
   */
  overdue(boundMs: number): KvHistoryOp | undefined {
    if (this.settling) return undefined;
    const now = this.sim.now;
    const ref = this.lastDisruption;
    for (const h of this.history) {
      if (h.return !== undefined || this.deadClients.has(String(h.client))) continue;
      if (now - Math.max(h.call, ref) > boundMs) return h;
    }
    return undefined;
  }

  /** No replica has served for more than `boundMs` since the later of the last fault action and the moment
   * serving stopped, and none said it is blocked meanwhile (the serve check has certainly failed). */
  unservedTooLong(boundMs: number): boolean {
    const since = this.unservedSince;
    if (since === undefined || this.disruptions.length === 0 || this.settling) return false;
    const from = Math.max(since, this.lastDisruption);
    if (this.sim.now - from <= boundMs) return false;
    return !this.blockedReports.some((b) => b.time >= from);
  }
}
