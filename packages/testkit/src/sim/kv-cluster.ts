/**
 * The key-value simulation's world: two replicas on two hosts (`ra` on hostA, `rb` on hostB), clients
 * c0 (co-located with ra), c1 (with rb) and the others alone, their workload and its recorded history,
 * and the bookkeeping the checks need (fault actions, outages per process, replica events, `blocked`
 * reports and the operator's promote).
 */
import {
  computeTimingBounds,
  type DerivedTimingBounds,
  type ReplicaEvent,
  type ReplicationConfig,
  type Role,
  resolveConfig,
} from '@tandem/core';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { LoadProfile, VariantSpec } from './faults.js';
import { finalRead, runClientWorkload } from './kv-clients.js';
import {
  type BlockedReport,
  type ClientSlot,
  type KvClusterHooks,
  type KvClusterOptions,
  type KvWorkload,
  type MaybeBlockingReplica,
  type OperatorAction,
  type Outage,
  type PrimaryKill,
  type ReplicaSlot,
  SERVING,
} from './kv-cluster-types.js';
import { blockedNow, operatorPromote, recordPrimaryKill, segmentHistory } from './kv-operator.js';
import { applyLoad, createSlotReplica, describeRoles, EventWaiters, noteReplicaEvent } from './kv-replicas.js';
import { createSimKvService, type SimKvReply, type SimKvRequest } from './kv-service.js';
import type { SimHost, SimNode } from './node.js';
import type { Simulation } from './simulation.js';

/**
 * A simulated replica pair of the key-value service with clients, fault actions, outage bookkeeping and checks: the harness of
 * runKvSimulation.
 */
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
  readonly workload: KvWorkload;
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
  /** Replicas that started serving without every acknowledged entry (checkServesEverything in kv-operator.ts). */
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
  readonly #eventWaiters = new EventWaiters();
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
    this.workload = options.workload ?? {};
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

  /** Resolve after `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => this.sim.scheduler.after(ms, 'driver', r));
  }

  /** Poll `pred` every `stepMs` of virtual time; false when it is still false after `timeoutMs`. */
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
    return this.#eventWaiters.next(this.sim.scheduler, pred, timeoutMs);
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

  /** Record a fault action in the fault log; a disruptive one restarts the liveness clock. */
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

  /** Virtual time of the latest disruptive fault (0: none). */
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
  /** Kill a process; `resets: false`: the kernel's resets of its connections are lost on the way. */
  crash(node: SimNode, resets = true): void {
    if (node.state === 'down') return;
    recordPrimaryKill(this, node);
    if (node.state === 'paused' || node.state === 'resuming') this.#closeOutages(node, 'paused');
    node.crash(false, resets);
    this.#openOutage(node, 'down');
    this.#clientDied(node);
    this.#updateServing();
  }

  /** Crash every node of a host (a power failure), recording the outages and the clients lost. */
  crashHost(host: SimHost): void {
    for (const n of host.nodes) recordPrimaryKill(this, n);
    this.sim.crashHost(host);
    for (const n of host.nodes) {
      this.#closeOutages(n, 'paused');
      if (!this.outages.some((o) => o.node === n.name && o.kind === 'down' && o.to === Number.POSITIVE_INFINITY))
        this.#openOutage(n, 'down');
      this.#clientDied(n);
    }
    this.#updateServing();
  }

  /** Pause a node (SIGSTOP-like), recording the outage. */
  pause(node: SimNode): void {
    if (node.state !== 'up' && node.state !== 'resuming') return;
    node.pause();
    this.#openOutage(node, 'paused');
    this.#updateServing();
  }

  /** Resume a paused node, closing its outage. */
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
      if ((node.state === 'up' || node.state === 'resuming') && node.busy && this.sim.now - started < maxMs)
        this.sim.scheduler.after(1, 'driver', check);
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

  /**
   * Background CPU load (not a fault): replica i's event loop costs `perMessageMs` (+ `perKiBMs` per KiB)
   * per message, and every ~gcEveryMs it stalls for 1…gcMaxMs (GC-like). Clients cost nothing.
   */
  applyLoad(profile: LoadProfile): void {
    applyLoad(this, profile);
  }

  // ---- replicas -----------------------------------------------------------------------------------

  /** Create and start the replica of a slot, as primary, backup, or deciding itself. */
  startReplica(slot: ReplicaSlot, roleHint: 'primary' | 'backup' | 'auto'): void {
    const replica = createSlotReplica(this, slot, roleHint, this.#hooks);
    slot.replica = replica;
    slot.stateful = false;
    const inc = slot.node.incarnation;
    replica.on((event) => {
      if (slot.node.incarnation !== inc) return;
      noteReplicaEvent(this, slot, event);
      const rec = { time: this.sim.now, node: slot.name, event };
      this.replicaEvents.push(rec);
      if (event.type === 'role') this.#updateServing();
      this.#eventWaiters.dispatch(rec);
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

  /** True when the slot's node is not down and has a replica. */
  live(s: ReplicaSlot): boolean {
    return s.node.state !== 'down' && s.replica !== undefined;
  }

  /** The slot's replica's role, or undefined when it is not live. */
  role(s: ReplicaSlot): Role | undefined {
    return this.live(s) ? s.replica!.status().role : undefined;
  }

  /** The other slot of the pair. */
  other(s: ReplicaSlot): ReplicaSlot {
    return s === this.replicas[0] ? this.replicas[1] : this.replicas[0];
  }

  /** The slot with this name. */
  slotOf(name: string): ReplicaSlot | undefined {
    return this.replicas.find((s) => s.name === name);
  }

  /** The running replica that serves, with the highest epoch. */
  primary(): ReplicaSlot | undefined {
    const serving = this.replicas.filter((s) => s.node.state === 'up' && SERVING.has(this.role(s)!));
    serving.sort((a, b) => b.replica!.status().epoch - a.replica!.status().epoch);
    return serving[0];
  }

  /** A running slot whose replica is backup. */
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

  /** Each slot's node state, role and epoch on one line, for logs. */
  describeRoles(): string {
    return describeRoles(this);
  }

  // ---- blocked replicas and the operator ------------------------------------------------------------

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
    return blockedNow(this);
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
    operatorPromote(this, slot);
  }

  /**
   * The history cut at each operator promote: the operator accepted to lose what the promoted replica does
   * not hold, so linearizability holds within each segment, not across. Segment i+1 starts from the
   * promoted replica's data (as completed puts before it); an operation called before a promote and
   * answered after it belongs to the later segment (called at the promote), and is outcome-unknown in
   * the earlier one.
   */
  segments(history: readonly KvHistoryOp[]): KvHistoryOp[][] {
    return segmentHistory(this.operatorActions, history);
  }

  // ---- clients ------------------------------------------------------------------------------------

  /** Start (or continue, after a restart) a client's workload: get/put/append on random keys with
   * unique written values, each operation recorded with virtual call and return times. */
  runClient(slot: ClientSlot): void {
    runClientWorkload(this, slot);
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

  /** Clients that have operations left and are running. */
  activeClients(): ClientSlot[] {
    return this.clients.filter((c) => !c.finished && c.node.state === 'up');
  }

  /** Read a key through a fresh client process, recording the read in the history. */
  finalRead(
    key: string,
    reader: { callWithInfo(req: SimKvRequest): Promise<{ reply: SimKvReply; seq: number; epoch: number }> },
  ): Promise<void> {
    return finalRead(this, key, reader);
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
