/**
 * A replica: one object that plays primary, backup, solo primary or joiner as the protocol moves it
 * between roles (docs/PROTOCOL.md, "States and transitions"). This file holds its lifecycle (start,
 * stop), the dispatch of every message to one `on<Message>` handler of the role that owns it, and the
 * role changes; the roles live in their own modules and share a ReplicaContext:
 *
 *   primary.ts      serving, piggyback, flush / ack / lease, held requests, the failure detector
 *   solo.ts         dropping a faulty backup, serving alone, probing the peer, covering the dropped one
 *   backup.ts       flushes and forwards in, in-order apply, watchdog, takeover
 *   follower.ts     a dropped backup following its solo primary (and its takeover), the stall watch
 *   recovery.ts     blocked, promote, admin connections
 *   joiner.ts       probe, first primary, stateReq / stateSnap;  state-fetch.ts: streaming before a join
 *   admission.ts    a serving replica admitting a joiner (copy, delta, resume)
 *   state-sync-host.ts  the serving side of a StateSync strategy
 */
import type { CloseInfo, Listener } from '@tandem/transport';
import type { Replica, ReplicaEvent, ReplicaOptions, ReplicaStatus, ReplicationConfig, Role } from './api.js';
import { Admission } from './admission.js';
import { Backup } from './backup.js';
import { computeTimingBounds, resolveConfig, type DerivedTimingBounds } from './config.js';
import { invariant, isCoreError, type InvariantError, type ProtocolViolationError, StoppedError } from './errors.js';
import { registerFaultTarget } from './fault-hooks.js';
import { Follower } from './follower.js';
import { AcceptGate, RateLimitedLog, type RefusalReport } from './handshake.js';
import { Joiner } from './joiner.js';
import { Link } from './link.js';
import type { Hello, Message, StatusReply } from './messages.js';
import type { ReplicaMetricsSink } from './metrics.js';
import { Primary } from './primary.js';
import { Recovery } from './recovery.js';
import { ReplicaContext, SERVING } from './replica-context.js';
import { InsecureListenError, isLoopbackAddress, resolveSecurity } from './security.js';
import { ServiceRunner } from './service.js';
import { Solo } from './solo.js';
import { StateSyncHost } from './state-sync-host.js';
import { statusDetail } from './status-detail.js';
import { wholeStateSync } from './state-sync.js';

/** The role moves docs/PROTOCOL.md ("States and transitions") allows; anything else is a bug. */
const MOVES: Readonly<Record<Role, readonly Role[]>> = {
  starting: ['joining', 'backup', 'solo-primary', 'stopped'],
  joining: ['backup', 'solo-primary', 'stopped'],
  backup: ['solo-primary', 'joining', 'stopped'],
  primary: ['solo-primary', 'joining', 'stopped'],
  'solo-primary': ['primary', 'joining', 'stopped'],
  stopped: [],
};

/** A replica of `options.service` (call `start`). */
export function createReplica<State, Req, Rep>(options: ReplicaOptions<State, Req, Rep>): Replica<State> {
  return new ReplicaNode(options as unknown as ReplicaOptions<unknown, unknown, unknown>) as unknown as Replica<State>;
}

class ReplicaNode implements Replica<unknown> {
  readonly #ctx: ReplicaContext;
  readonly #gate: AcceptGate;
  readonly #roles: ReplicaContext['roles'];
  #startWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(opts: ReplicaOptions<unknown, unknown, unknown>) {
    const cfg = resolveConfig(opts.config);
    const ctx = new ReplicaContext({
      opts,
      cfg,
      bounds: computeTimingBounds(cfg),
      runner: new ServiceRunner(opts.service, cfg.dedupWindow, cfg.dedupMaxBytes),
      stateSync: opts.stateSync ?? wholeStateSync,
      security: resolveSecurity(opts.security),
      rateLog: new RateLimitedLog(opts.env),
    });
    this.#ctx = ctx;
    ctx.handlers = {
      onMessage: (link, m) => this.#guard(() => this.#onMessage(link, m)),
      onClose: (link, info) => this.#guard(() => this.#onLinkClosed(link, info)),
      onViolation: (link, error) => this.#onViolation(link, error),
      onBytes: (direction, count) => ctx.metrics?.bytes?.(direction, count),
    };
    ctx.transitions = {
      setRole: (role) => this.#setRole(role),
      stepDown: (epoch) => this.#stepDown(epoch),
      becomeJoining: (epoch, keepLog) => this.#becomeJoining(epoch, keepLog),
      observeEpoch: (epoch, role, link) => this.#observeEpoch(epoch, role, link),
    };
    this.#roles = ctx.roles = {
      primary: new Primary(ctx),
      solo: new Solo(ctx),
      backup: new Backup(ctx),
      follower: new Follower(ctx),
      recovery: new Recovery(ctx),
      joiner: new Joiner(ctx),
      admission: new Admission(ctx),
      host: new StateSyncHost(ctx),
    };
    ctx.backupLog.onMismatch = (m) => {
      // A client forwarded something the primary did not sequence (forged or corrupted): never silent.
      ctx.divergences++;
      ctx.log('error', 'FORWARD-MISMATCH', {
        ...m,
        hint: "a client forwarded an entry the primary did not sequence; the primary's copy replaced it",
      });
      ctx.emit({ type: 'divergence', seq: m.seq, expectedDigest: m.flushed.digest, actualDigest: m.forwarded.digest });
    };
    this.#gate = new AcceptGate(ctx.security, opts.service.name, ctx.nodeId, opts.env, (r) => this.#onRefused(r));
    registerFaultTarget(this, (hooks) => {
      ctx.faults = hooks;
      ctx.log('warn', 'FAULT-INJECTION', { variant: hooks.variant, note: 'deliberately broken replica (test only)' });
    });
  }

  // ---------------------------------------------------------------- public surface

  get address(): string {
    return this.#ctx.address;
  }

  get state(): unknown {
    return this.#ctx.runner.state;
  }

  get timingBounds(): DerivedTimingBounds {
    return this.#ctx.bounds;
  }

  get config(): ReplicationConfig {
    return this.#ctx.cfg;
  }

  get metrics(): ReplicaMetricsSink | undefined {
    return this.#ctx.metrics;
  }

  set metrics(sink: ReplicaMetricsSink | undefined) {
    this.#ctx.metrics = sink;
  }

  on(listener: (event: ReplicaEvent) => void): () => void {
    this.#ctx.listeners.add(listener);
    return () => this.#ctx.listeners.delete(listener);
  }

  status(): ReplicaStatus {
    const ctx = this.#ctx;
    const followEpoch = this.#roles.follower.epoch;
    const coveringFrom = this.#roles.solo.coveringFromSeq;
    const { backupLag, clientsConnected, dedupEntries, uptimeMs, version, bounds } = statusDetail(ctx);
    return {
      nodeId: ctx.nodeId,
      role: ctx.role,
      epoch: ctx.epoch,
      appliedSeq: ctx.runner.appliedSeq,
      stateDigest: ctx.runner.stateDigest(),
      unackedEntries: this.#roles.primary.tracker.log.size,
      divergences: ctx.divergences,
      authFailures: ctx.authFailures,
      forgedForwards: ctx.forgedForwards,
      ...(followEpoch !== undefined ? { following: { epoch: followEpoch, pendingEntries: ctx.backupLog.pendingCount } } : {}),
      ...(coveringFrom !== undefined ? { covering: { fromSeq: coveringFrom } } : {}),
      ...(ctx.blocked !== undefined ? { blocked: { ...ctx.blocked } } : {}),
      ...(ctx.witness.present ? { witness: ctx.witness.describe() } : {}),
      ...(backupLag !== undefined ? { backupLag } : {}),
      clientsConnected,
      dedupEntries,
      uptimeMs,
      version,
      bounds,
    };
  }

  async start(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.listener) throw new Error('replica already started');
    const sec = ctx.security;
    if (sec.peerRing === undefined && !sec.insecure && !isLoopbackAddress(ctx.opts.listen)) throw new InsecureListenError(ctx.opts.listen);
    const listener = await ctx.env.network.listen(ctx.opts.listen, { maxMessageSize: ctx.cfg.maxMessageSize });
    ctx.listener = listener;
    ctx.startedAt = ctx.env.now();
    ctx.address = listener.address;
    ctx.log('info', 'replica-start', {
      address: ctx.address,
      peer: ctx.opts.peer,
      roleHint: ctx.opts.roleHint ?? 'auto',
      config: ctx.cfg,
      bounds: ctx.bounds,
    });
    if (sec.peerRing !== undefined) {
      ctx.log('info', 'security', {
        peers: 'cluster key (HMAC challenge-response)',
        forwards: 'MAC verified',
        clients: sec.requireClientAuth ? 'client keys required' : 'open',
      });
    } else {
      ctx.log('warn', 'security', {
        peers: 'NOT authenticated (no cluster key)',
        note: sec.insecure
          ? 'insecure: listening beyond loopback without a key'
          : 'listening on loopback only; any local process can act as the peer',
      });
    }
    void this.#acceptLoop(listener);
    const started = new Promise<void>((resolve, reject) => {
      this.#startWaiter = { resolve, reject };
    });
    this.#roles.joiner.probe();
    this.#roles.follower.watchStalls();
    return started;
  }

  async stop(): Promise<void> {
    const ctx = this.#ctx;
    const r = this.#roles;
    if (ctx.role === 'stopped') return;
    this.#setRole('stopped');
    r.primary.cancelTimers();
    r.backup.cancelTimers();
    r.joiner.cancelProbe();
    r.solo.cancelProbeTimer();
    r.follower.shutdown();
    r.backup.stop();
    r.joiner.cancelFetch();
    ctx.witness.stop();
    this.#startWaiter?.reject(new StoppedError('replica stopped before it started serving'));
    this.#startWaiter = undefined;
    await ctx.listener?.close();
    await Promise.all([...ctx.links].map((l) => l.conn.close('replica stopped').catch(() => undefined)));
  }

  promote(options: { acceptLoss: true }): Promise<void> {
    return this.#roles.recovery.promote(options);
  }

  // ---------------------------------------------------------------- plumbing

  /**
   * A violated invariant is a bug here: log it, and let it escape to the environment as well (a 0 ms
   * timer that rethrows) — the simulator records it at the event that caused it, a production process
   * fails stop — besides the connection the handler was reading, which the Link aborts.
   */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (isCoreError(err, 'InvariantError')) {
        const e = err as InvariantError;
        this.#ctx.log('error', 'INVARIANT', { code: e.code, error: e.message, stack: e.stack });
        this.#ctx.env.setTimer(0, () => {
          throw e;
        });
      }
      throw err;
    }
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    const ctx = this.#ctx;
    try {
      for await (const conn of listener) {
        if (ctx.role === 'stopped') {
          conn.abort();
          continue;
        }
        const link = new Link(conn, 'in', ctx.handlers, ctx.env.logger);
        ctx.links.add(link);
        this.#gate.watch(link);
        link.start();
      }
    } catch (err) {
      if (ctx.role !== 'stopped') ctx.log('error', 'accept-failed', { error: (err as Error).message });
    }
  }

  /** The gate refused a connection: count, report (rate-limited), change nothing else. */
  #onRefused(r: RefusalReport): void {
    const ctx = this.#ctx;
    ctx.authFailures++;
    const remote = r.link.conn.remoteAddress;
    ctx.rateLog.log(`refused:${r.code}`, (suppressed) =>
      ctx.log('warn', 'connection-refused', { remote, code: r.code, reason: r.reason, kind: r.kind, claimedNodeId: r.nodeId, suppressed }),
    );
    ctx.emit({ type: 'auth-refused', side: 'accepted', remote, code: r.code, reason: r.reason });
  }

  #onLinkClosed(link: Link, info: CloseInfo): void {
    const ctx = this.#ctx;
    ctx.links.delete(link);
    ctx.connectionClosed(link);
    ctx.statusWaiters.delete(link);
    this.#roles.solo.onProbeLinkClosed(link);
    this.#roles.joiner.onLinkClosed(link);
    this.#roles.primary.onLinkClosed(link, info);
    this.#roles.solo.onDropLinkClosed(link);
    this.#roles.backup.onLinkClosed(link, info);
  }

  #onViolation(link: Link, error: ProtocolViolationError): void {
    this.#ctx.log('warn', 'protocol-error', { remote: link.remote, error: error.message });
    this.#ctx.emit({ type: 'protocol-error', remote: link.conn.remoteAddress, error });
  }

  // ---------------------------------------------------------------- dispatch: one handler per message

  #onMessage(link: Link, m: Message): void {
    const ctx = this.#ctx;
    const r = this.#roles;
    if (ctx.role === 'stopped') return;
    if (link.direction === 'in' && link.hello === undefined) {
      // Nothing reaches the protocol before the gate admits the connection (docs/SECURITY.md).
      const admitted = this.#gate.onMessage(link, m);
      if (admitted === undefined) return;
      link.hello = admitted.hello;
      ctx.connectionOpened(link, admitted.principal);
      if (admitted.principal === 'peer') this.#onPeerHello(link, admitted.hello);
      else if (admitted.principal === 'transfer') r.host.onTransferHello(link, admitted.hello);
      return;
    }
    if (link.direction === 'in' && link.hello?.kind === 'admin') return r.recovery.onAdmin(link, m);
    const fromClient = link.direction === 'in' && link.hello?.kind === 'client';
    switch (m.t) {
      case 'req':
        if (!fromClient) ctx.violation('req from a non-client connection');
        if (r.backup.holdRequest(link, m)) return; // the primary's process may be gone: served after the takeover
        return r.primary.onRequest(link, m);
      case 'fwd':
        if (!fromClient) ctx.violation('fwd from a non-client connection');
        return r.backup.onForward(link, m);
      case 'status':
        link.send(ctx.statusReply());
        return;
      case 'hello':
        // A peer repeats its hello to announce a role/epoch change (e.g. the solo primary's probe).
        if (link.direction !== 'in' || link.hello?.kind !== 'peer' || m.kind !== 'peer' || m.service !== ctx.opts.service.name) {
          return ctx.violation('unexpected hello');
        }
        link.hello = m;
        return this.#onPeerHello(link, m);
    }
    if (fromClient) ctx.violation(`${m.t} from a client connection`);
    switch (m.t) {
      case 'flush':
        return r.backup.onFlush(link, m);
      case 'flushAck':
        return r.primary.onFlushAck(link, m);
      case 'statusReply':
        return this.#onStatusReply(link, m);
      case 'stateReq':
        return r.admission.onStateReq(link, m);
      case 'stateSnap':
        return r.joiner.onStateSnap(link, m);
      case 'drop':
        return r.follower.onDrop(link, m);
      case 'dropAck':
        return r.solo.onDropAck(link, m);
      default:
        return ctx.violation(`unexpected ${m.t} at a replica`);
    }
  }

  #onStatusReply(link: Link, m: StatusReply): void {
    const ctx = this.#ctx;
    // Every statusReply a replica gets from its peer.
    if (SERVING.has(m.role) && m.epoch >= ctx.peerEpochSeen) {
      ctx.peerSeqSeen = m.epoch > ctx.peerEpochSeen ? m.appliedSeq : Math.max(ctx.peerSeqSeen, m.appliedSeq);
    }
    ctx.peerEpochSeen = Math.max(ctx.peerEpochSeen, m.epoch);
    this.#roles.solo.notePeerReached();
    this.#observeEpoch(m.epoch, m.role, link);
    const w = ctx.statusWaiters.get(link);
    if (w) {
      ctx.statusWaiters.delete(link);
      w(m);
    }
  }

  #onPeerHello(link: Link, hello: Hello): void {
    const ctx = this.#ctx;
    this.#observeEpoch(hello.epoch, hello.role, link);
    // A primary that went solo dropped us: our state may be behind; join again.
    // (Only after silence: a hello sent just before we joined may arrive after the state copy.)
    if (
      ctx.role === 'backup' &&
      hello.role === 'solo-primary' &&
      hello.epoch >= ctx.epoch &&
      ctx.env.now() - this.#roles.backup.lastFlushAt >= ctx.cfg.heartbeatTimeoutMs / 2
    ) {
      ctx.log('warn', 'dropped-by-primary', { primaryEpoch: hello.epoch });
      this.#roles.follower.leaveBackup(hello.epoch, 'the primary serves alone');
      return;
    }
    if (hello.role === 'solo-primary') this.#roles.follower.confirm(hello.epoch, hello.follow);
  }

  // ---------------------------------------------------------------- role changes

  #setRole(role: Role): void {
    const ctx = this.#ctx;
    const was = ctx.role;
    if (was === role) return;
    invariant(MOVES[was].includes(role), 'role-move', () => `${was} → ${role} is not a move of the protocol`);
    invariant(!(SERVING.has(role) || role === 'backup') || ctx.epoch >= 1, 'role-epoch', () => `${role} at epoch ${ctx.epoch}`);
    ctx.assignRole(role);
    ctx.witness.onRoleChange(was, role);
    if (SERVING.has(role)) this.#roles.host.attach();
    else this.#roles.host.detach();
    ctx.log('info', 'role', {});
    ctx.emit({ type: 'role', role, epoch: ctx.epoch });
    if ((role === 'primary' || role === 'solo-primary' || role === 'backup') && this.#startWaiter) {
      const w = this.#startWaiter;
      this.#startWaiter = undefined;
      w.resolve();
    }
  }

  /** A peer's epoch/role seen in any message: a newer epoch deposes us; equal-epoch primaries tie-break. */
  #observeEpoch(epoch: number, role: Role | undefined, link: Link): void {
    const ctx = this.#ctx;
    if (epoch > ctx.epoch && SERVING.has(ctx.role)) {
      this.#stepDown(epoch);
      return;
    }
    if (
      epoch === ctx.epoch &&
      SERVING.has(ctx.role) &&
      role !== undefined &&
      SERVING.has(role) &&
      link !== this.#roles.primary.peerLink &&
      ctx.nodeId > (link.hello?.nodeId ?? ctx.opts.peer)
    ) {
      // Two primaries in one epoch can only come from a startup race: the larger node id yields.
      this.#stepDown(epoch);
    }
  }

  #stepDown(newerEpoch: number): void {
    const ctx = this.#ctx;
    invariant(newerEpoch >= ctx.epoch, 'step-down-epoch', () => `stepping down for epoch ${newerEpoch}, older than ${ctx.epoch}`);
    ctx.log('warn', 'step-down', { newerEpoch, was: ctx.role });
    ctx.emit({ type: 'step-down', epoch: ctx.epoch, newerEpoch });
    // A deposed primary may hold entries the new primary never had: its state is no prefix of anyone's.
    ctx.followable = false;
    this.#becomeJoining(newerEpoch);
  }

  /** Drop primary/backup duties and copy the state from the (other) primary. `keepLog`: a dropped backup
   * that follows keeps the entries the clients forwarded. */
  #becomeJoining(epoch: number, keepLog = false): void {
    const ctx = this.#ctx;
    const r = this.#roles;
    r.primary.cancelTimers();
    r.backup.cancelTimers();
    r.solo.cancelProbeTimer();
    r.solo.forgetCoverage();
    ctx.learnEpoch(epoch);
    this.#setRole('joining');
    r.primary.leave();
    if (!keepLog) ctx.backupLog.clear();
    r.joiner.restart();
  }
}
