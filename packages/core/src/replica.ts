/**
 * A replica: one object that plays primary, backup, solo primary or joiner as the protocol moves it
 * between roles (docs/PROTOCOL.md, "States and transitions").
 *
 * Primary: sequences each request, applies it, replies at once with the state information, and flushes
 * its unacknowledged entries to the backup every flushIntervalMs or flushMaxEntries entries (the flush
 * doubles as heartbeat). It answers only while it holds a lease renewed by the backup's flushAcks.
 * Backup: takes entries from flushes and client forwards, applies them in seq order, compares digests,
 * and takes over after heartbeat silence plus the forward window.
 */
import type { CloseInfo, Listener } from '@tandem/transport';
import { isTransportError } from '@tandem/transport';
import type {
  JoinTarget,
  PrimaryAttachment,
  PrimaryStateView,
  ReplicaEvent,
  ReplicaOptions,
  ReplicaStatus,
  ReplicationConfig,
  Role,
  StateFetchResult,
  StateSnapshot,
  StateSync,
  Replica,
  BlockedStatus,
} from './api.js';
import type { Connection } from '@tandem/transport';
import { z } from 'zod';
import { BackupLog, type Divergence } from './backup-log.js';
import { computeTimingBounds, resolveConfig, type DerivedTimingBounds } from './config.js';
import type { Env, TimerHandle } from './env.js';
import { codec, decodeEntries } from './codec.js';
import { ProtocolViolationError, StoppedError } from './errors.js';
import { Link } from './link.js';
import { dedupRecordSchema, entrySchema, type Drop, type DropAck, type Entry, type Flush, type FlushAck, type Fwd, type Hello, type Message, type Rep, type Req, type StateReq, type StateSnap, type StatusReply } from './messages.js';
import { ServiceRunner, type Snapshot } from './service.js';
import { wholeStateSync } from './state-sync.js';
import { FlushTracker } from './flush-tracker.js';
import { isExpired, type DedupRecord } from './dedup.js';
import { entryMac, packedEntriesMac, verifyEntryMac, verifyPackedEntries } from './auth.js';
import { AcceptGate, dialHandshake, RateLimitedLog, type AuthenticationError, type RefusalReport } from './handshake.js';
import { InsecureListenError, isLoopbackAddress, resolveSecurity, type ResolvedSecurity } from './security.js';
import { remainderOf } from './link.js';

const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);
const dedupRecordsSchema = z.array(dedupRecordSchema);
/** Requests held by a primary whose lease lapsed, answered when it is renewed (or notPrimary). */
const MAX_HELD_REQUESTS = 1024;
/** Entries a backup applies per turn of the event loop (see #applyPending). */
const APPLY_BATCH = 256;
/** Takeover probes a slow primary may answer in a row (each counts as a heartbeat) before the backup re-joins. */
const MAX_SLOW_PRIMARY_PROBES = 3;

/** A primary telling its faulty backup it is dropped (see #beginDrop). */
interface DropPhase {
  link: Link | undefined;
  timer: TimerHandle | undefined;
  dialing: boolean;
}

/** A dropped backup following its solo primary (docs/PROTOCOL.md, "Follower"). */
interface Following {
  epoch: number;
  /** Since when we know the primary covers us (its answer to our question, or fresh unsolicited news). */
  lastConfirmAt: number;
  /** The forward window after the primary was found gone. */
  waiting: TimerHandle | undefined;
}

interface SyncWaiter {
  seq: number;
  link: Link;
  rep: Rep;
}

export function createReplica<State, Req, Rep>(options: ReplicaOptions<State, Req, Rep>): Replica<State> {
  return new ReplicaNode(options as unknown as ReplicaOptions<unknown, unknown, unknown>) as unknown as Replica<State>;
}

class ReplicaNode implements Replica<unknown> {
  readonly #opts: ReplicaOptions<unknown, unknown, unknown>;
  readonly #cfg: ReplicationConfig;
  readonly #bounds: DerivedTimingBounds;
  readonly #env: Env;
  readonly #runner: ServiceRunner<unknown, unknown, unknown>;
  readonly #stateSync: StateSync;
  readonly #nodeId: string;
  readonly #listeners = new Set<(e: ReplicaEvent) => void>();
  readonly #links = new Set<Link>();
  readonly #handlers = {
    onMessage: (link: Link, m: Message) => this.#onMessage(link, m),
    onClose: (link: Link, info: CloseInfo) => this.#onLinkClosed(link, info),
    onViolation: (link: Link, error: ProtocolViolationError) => this.#onViolation(link, error),
  };

  /** TEST ONLY: a deliberately broken behaviour (ReplicaOptions.faultInjection). */
  readonly #broken: string | undefined;
  #role: Role = 'starting';
  #epoch = 0;
  #listener: Listener | undefined;
  #address: string;
  #divergences = 0;
  readonly #security: ResolvedSecurity;
  readonly #gate: AcceptGate;
  readonly #rateLog: RateLimitedLog;
  #authFailures = 0;
  #forgedForwards = 0;
  #startWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;

  // primary
  readonly #tracker: FlushTracker;
  #peerLink: Link | undefined;
  #peerDialing = false;
  #flushTimer: TimerHandle | undefined;
  #silenceCheck: TimerHandle | undefined;
  #held: { link: Link; req: Req }[] = [];
  #syncWaiters: SyncWaiter[] = [];
  #probeTimer: TimerHandle | undefined;
  #probeLink: Link | undefined;
  /** appliedSeq when this replica became primary by takeover (late forwards beyond it were lost). */
  #takeoverSeq = 0;
  /**
   * The backup was declared faulty and told so (`drop`); until it acknowledges (or is proven dead, or
   * takeoverMs passed since its last acknowledged flush) requests are held, so a backup that did not
   * hear about it cannot take over while this replica answers alone.
   */
  #dropping: DropPhase | undefined;

  /** Solo primary that dropped a live backup: it keeps its log from `from` and piggybacks it, so the dropped
   * replica can follow (docs/PROTOCOL.md, "Follower"). `endingSince`: coverage ends W after this (no longer
   * confirmed meanwhile). */
  #covering: { from: number; lastReachedAt: number; endingSince: number | undefined } | undefined;

  // backup
  readonly #backupLog: BackupLog;
  #drainTimer: TimerHandle | undefined;
  /** Takeover probes a primary answered as still our primary (reset by each flush). */
  #slowPrimaryProbes = 0;
  /** This replica's state is a prefix of the history of the primary of #epoch (it was its backup). */
  #followable = false;
  /** A dropped backup following the solo primary by the clients' forwards. */
  #follow: Following | undefined;
  /** Why this replica cannot serve and cannot prove that nothing acknowledged is lost. */
  #blocked: BlockedStatus | undefined;
  /** The highest appliedSeq a serving peer of #epoch reported (the end of the range a promote may lose). */
  #peerSeqSeen = 0;
  /** The highest epoch any peer reported. */
  #peerEpochSeen = 0;
  /** Until then, messages read now may have waited out a stall of this process (SIGSTOP, a long GC):
   * they prove nothing about the present (see #watchStalls). */
  #untrustedUntil = 0;
  #stallTimer: TimerHandle | undefined;
  /** When the stall watch last ran (see #watchStalls). */
  #lastTickAt = 0;
  #lastFlushAt = 0;
  #watchdog: TimerHandle | undefined;
  #suspectTimer: TimerHandle | undefined;
  /** The backup is asking its primary whether it is alive before taking over. */
  #probingPrimary = false;

  // starting / joining
  #joinTimer: TimerHandle | undefined;
  #joinLink: Link | undefined;
  #joinAttempt = 0;
  #statusWaiters = new Map<Link, (r: StatusReply) => void>();
  /** Startup: since when the peer accepted connections (or timed out) without answering `status`. */
  #unansweredSince: number | undefined;

  // state-sync strategy hooks (StateSync.attachPrimary / fetch)
  #attachment: PrimaryAttachment | undefined;
  readonly #appliedListeners = new Set<(entry: Entry) => void>();
  /** A StateSync.fetch in progress: its cancel function. */
  #fetchCancel: (() => void) | undefined;
  /** The state the last fetch verified (unchanged since while runner.appliedSeq === seq). */
  #fetched: StateFetchResult | undefined;
  /** Joiner links whose delta join waits for the strategy's verification. */
  readonly #deltaPending = new WeakSet<Link>();

  constructor(opts: ReplicaOptions<unknown, unknown, unknown>) {
    this.#opts = opts;
    this.#cfg = resolveConfig(opts.config);
    this.#bounds = computeTimingBounds(this.#cfg);
    this.#env = opts.env;
    this.#runner = new ServiceRunner(opts.service, this.#cfg.dedupWindow, this.#cfg.dedupMaxBytes);
    this.#tracker = new FlushTracker(this.#cfg, this.#bounds.leaseMs, this.#bounds.joinTimeoutMs, this.#bounds.peerFaultyMs);
    this.#backupLog = new BackupLog(this.#cfg.maxUnackedEntries + this.#cfg.flushMaxEntries);
    this.#backupLog.onMismatch = (m) => {
      // A client forwarded something the primary did not sequence (forged or corrupted): never silent.
      this.#divergences++;
      this.#log('error', 'FORWARD-MISMATCH', { ...m, hint: "a client forwarded an entry the primary did not sequence; the primary's copy replaced it" });
      this.#emit({ type: 'divergence', seq: m.seq, expectedDigest: m.flushed.digest, actualDigest: m.forwarded.digest });
    };
    this.#stateSync = opts.stateSync ?? wholeStateSync;
    this.#nodeId = opts.nodeId ?? opts.listen;
    this.#address = opts.listen;
    this.#security = resolveSecurity(opts.security);
    this.#rateLog = new RateLimitedLog(opts.env);
    this.#gate = new AcceptGate(this.#security, opts.service.name, this.#nodeId, opts.env, (r) => this.#onRefused(r));
    this.#broken = opts.faultInjection?.variant;
    if (this.#broken !== undefined) this.#log('warn', 'FAULT-INJECTION', { variant: this.#broken, note: 'deliberately broken replica (test only)' });
  }

  // ---------------------------------------------------------------- public surface

  get address(): string {
    return this.#address;
  }

  get state(): unknown {
    return this.#runner.state;
  }

  get timingBounds(): DerivedTimingBounds {
    return this.#bounds;
  }

  get config(): ReplicationConfig {
    return this.#cfg;
  }

  on(listener: (event: ReplicaEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): ReplicaStatus {
    return {
      nodeId: this.#nodeId,
      role: this.#role,
      epoch: this.#epoch,
      appliedSeq: this.#runner.appliedSeq,
      stateDigest: this.#runner.stateDigest(),
      unackedEntries: this.#tracker.log.size,
      divergences: this.#divergences,
      authFailures: this.#authFailures,
      forgedForwards: this.#forgedForwards,
      ...(this.#follow !== undefined ? { following: { epoch: this.#follow.epoch, pendingEntries: this.#backupLog.pendingCount } } : {}),
      ...(this.#covering !== undefined ? { covering: { fromSeq: this.#covering.from } } : {}),
      ...(this.#blocked !== undefined ? { blocked: { ...this.#blocked } } : {}),
    };
  }

  async start(): Promise<void> {
    if (this.#listener) throw new Error('replica already started');
    const sec = this.#security;
    if (sec.peerRing === undefined && !sec.insecure && !isLoopbackAddress(this.#opts.listen)) throw new InsecureListenError(this.#opts.listen);
    this.#listener = await this.#env.network.listen(this.#opts.listen, { maxMessageSize: this.#cfg.maxMessageSize });
    this.#address = this.#listener.address;
    this.#log('info', 'replica-start', { address: this.#address, peer: this.#opts.peer, roleHint: this.#opts.roleHint ?? 'auto', config: this.#cfg, bounds: this.#bounds });
    if (sec.peerRing !== undefined) {
      this.#log('info', 'security', { peers: 'cluster key (HMAC challenge-response)', forwards: 'MAC verified', clients: sec.requireClientAuth ? 'client keys required' : 'open' });
    } else {
      this.#log('warn', 'security', {
        peers: 'NOT authenticated (no cluster key)',
        note: sec.insecure ? 'insecure: listening beyond loopback without a key' : 'listening on loopback only; any local process can act as the peer',
      });
    }
    void this.#acceptLoop(this.#listener);
    const started = new Promise<void>((resolve, reject) => {
      this.#startWaiter = { resolve, reject };
    });
    this.#probe();
    this.#watchStalls();
    return started;
  }

  async stop(): Promise<void> {
    if (this.#role === 'stopped') return;
    this.#setRole('stopped');
    this.#cancelPrimaryTimers();
    this.#cancelBackupTimers();
    this.#joinTimer?.cancel();
    this.#probeTimer?.cancel();
    this.#follow?.waiting?.cancel();
    this.#stallTimer?.cancel();
    this.#drainTimer?.cancel();
    this.#cancelFetch();
    this.#startWaiter?.reject(new StoppedError('replica stopped before it started serving'));
    this.#startWaiter = undefined;
    const listener = this.#listener;
    await listener?.close();
    await Promise.all([...this.#links].map((l) => l.conn.close('replica stopped').catch(() => undefined)));
  }

  // ---------------------------------------------------------------- plumbing

  #emit(event: ReplicaEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#log('error', 'listener-failed', { error: (err as Error).message });
      }
    }
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.#env.logger.log(level, event, { node: this.#nodeId, role: this.#role, epoch: this.#epoch, ...fields });
  }

  #setRole(role: Role): void {
    if (this.#role === role) return;
    this.#role = role;
    if (SERVING.has(role)) this.#attachStateSync();
    else this.#detachStateSync();
    this.#log('info', 'role', {});
    this.#emit({ type: 'role', role, epoch: this.#epoch });
    if ((role === 'primary' || role === 'solo-primary' || role === 'backup') && this.#startWaiter) {
      const w = this.#startWaiter;
      this.#startWaiter = undefined;
      w.resolve();
    }
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        if (this.#role === 'stopped') {
          conn.abort();
          continue;
        }
        const link = new Link(conn, 'in', this.#handlers, this.#env.logger);
        this.#links.add(link);
        this.#gate.watch(link);
        link.start();
      }
    } catch (err) {
      if (this.#role !== 'stopped') this.#log('error', 'accept-failed', { error: (err as Error).message });
    }
  }

  #hello(): Hello {
    const h: Hello = { t: 'hello', kind: 'peer', service: this.#opts.service.name, nodeId: this.#nodeId, epoch: this.#epoch, role: this.#role };
    const follow = this.#coveringFrom();
    if (follow !== undefined) h.follow = follow;
    return h;
  }

  /** Dial the peer and send our hello; resolves undefined when the dial fails. */
  async #dialPeer(timeoutMs = Math.max(this.#bounds.dialTimeoutMs, 100)): Promise<Link | undefined> {
    const r = await this.#dialPeerResult(timeoutMs);
    return r.link;
  }

  /** Dial the peer and complete the handshake; `refused` says nothing listens there (the peer process is gone). */
  /** `alive`: something accepted the connection (a process listens there, even if it then failed the
   * handshake or never answers). */
  async #dialPeerResult(timeoutMs: number): Promise<{ link: Link | undefined; refused: boolean; alive?: boolean }> {
    const startedAt = this.#env.now();
    let conn: Connection;
    try {
      conn = await this.#env.network.dial(this.#opts.peer, {
        maxMessageSize: this.#cfg.maxMessageSize,
        timeoutMs,
      });
    } catch (err) {
      // Only "nothing listens there" proves the peer process gone — not a live listener's refusal (a
      // certificate or key it rejects, its connection limit) nor an unreachable host.
      const refused = isTransportError(err, 'ConnectionRefusedError') && (err as { nothingListens?: boolean }).nothingListens === true;
      this.#log('debug', 'peer-dial-failed', { error: (err as Error).message, refused });
      return { link: undefined, refused };
    }
    if (this.#role === 'stopped') {
      conn.abort();
      return { link: undefined, refused: false };
    }
    let it: AsyncIterator<Uint8Array>;
    try {
      const auth = this.#security.peerRing === undefined ? undefined : { ring: this.#security.peerRing };
      it = await dialHandshake(conn, this.#hello(), auth, this.#env, Math.max(1, startedAt + timeoutMs - this.#env.now()));
    } catch (err) {
      // The peer refused us, or could not prove it holds the key: count it like a refusal here.
      const e = err as AuthenticationError;
      this.#authFailures++;
      this.#rateLog.log('peer-handshake', (suppressed) => this.#log('warn', 'peer-handshake-failed', { peer: this.#opts.peer, code: e.code, error: e.message, suppressed }));
      this.#emit({ type: 'auth-refused', side: 'dialled', remote: this.#opts.peer, code: e.code, reason: e.message });
      return { link: undefined, refused: false, alive: true };
    }
    if ((this.#role as Role) === 'stopped') {
      conn.abort();
      return { link: undefined, refused: false };
    }
    const link = new Link(conn, 'out', this.#handlers, this.#env.logger);
    this.#links.add(link);
    link.start(it);
    return { link, refused: false };
  }

  /** The gate refused a connection: count, report (rate-limited), change nothing else. */
  #onRefused(r: RefusalReport): void {
    this.#authFailures++;
    const remote = r.link.conn.remoteAddress;
    this.#rateLog.log(`refused:${r.code}`, (suppressed) =>
      this.#log('warn', 'connection-refused', { remote, code: r.code, reason: r.reason, kind: r.kind, claimedNodeId: r.nodeId, suppressed }),
    );
    this.#emit({ type: 'auth-refused', side: 'accepted', remote, code: r.code, reason: r.reason });
  }

  /** Send `status` on a link and wait up to `timeoutMs` for the statusReply (undefined: none). */
  #awaitStatus(link: Link, timeoutMs: number): Promise<StatusReply | undefined> {
    return new Promise<StatusReply | undefined>((resolve) => {
      let done = false;
      const finish = (r: StatusReply | undefined): void => {
        if (done) return;
        done = true;
        timer.cancel();
        if (this.#statusWaiters.get(link) === waiter) this.#statusWaiters.delete(link);
        resolve(r);
      };
      const waiter = (r: StatusReply): void => finish(r);
      const timer = this.#env.setTimer(timeoutMs, () => finish(undefined));
      this.#statusWaiters.set(link, waiter);
      void link.conn.closed.then(() => finish(undefined));
      if (!link.send({ t: 'status' })) finish(undefined);
    });
  }

  #onLinkClosed(link: Link, info: CloseInfo): void {
    this.#links.delete(link);
    this.#statusWaiters.delete(link);
    if (link === this.#probeLink) this.#probeLink = undefined;
    if (link === this.#joinLink) {
      this.#joinLink = undefined;
      // A join in progress lost its connection (the primary went away or dropped it): probe again now.
      if ((this.#role === 'joining' || this.#role === 'starting') && this.#joinTimer !== undefined) this.#scheduleProbe(0);
    }
    if (link === this.#peerLink) {
      this.#peerLink = undefined;
      if (this.#role === 'primary' && this.#dropping === undefined) {
        this.#log('warn', 'peer-link-closed', { reason: info.reason });
        this.#redialPeer();
      }
    }
    const d = this.#dropping;
    if (d !== undefined && link === d.link) {
      d.link = undefined;
      this.#sendDrop();
    }
  }

  #onViolation(link: Link, error: ProtocolViolationError): void {
    this.#log('warn', 'protocol-error', { remote: link.remote, error: error.message });
    this.#emit({ type: 'protocol-error', remote: link.conn.remoteAddress, error });
  }

  #violation(message: string): never {
    throw new ProtocolViolationError(message);
  }

  // ---------------------------------------------------------------- dispatch

  #onMessage(link: Link, m: Message): void {
    if (this.#role === 'stopped') return;
    if (link.direction === 'in' && link.hello === undefined) {
      // Nothing reaches the protocol before the gate admits the connection (docs/SECURITY.md).
      const admitted = this.#gate.onMessage(link, m);
      if (admitted === undefined) return;
      link.hello = admitted.hello;
      if (admitted.principal === 'peer') this.#onPeerHello(link, admitted.hello);
      else if (admitted.principal === 'transfer') this.#onTransferHello(link, admitted.hello);
      return;
    }
    if (link.direction === 'in' && link.hello?.kind === 'admin') return this.#onAdmin(link, m);
    const fromClient = link.direction === 'in' && link.hello?.kind === 'client';
    switch (m.t) {
      case 'req':
        if (!fromClient) this.#violation('req from a non-client connection');
        return this.#onRequest(link, m);
      case 'fwd':
        if (!fromClient) this.#violation('fwd from a non-client connection');
        return this.#onForward(link, m);
      case 'status':
        link.send(this.#statusReply());
        return;
      case 'hello':
        // A peer repeats its hello to announce a role/epoch change (e.g. the solo primary's probe).
        if (link.direction !== 'in' || link.hello?.kind !== 'peer' || m.kind !== 'peer' || m.service !== this.#opts.service.name) {
          return this.#violation('unexpected hello');
        }
        link.hello = m;
        return this.#onPeerHello(link, m);
    }
    if (fromClient) this.#violation(`${m.t} from a client connection`);
    switch (m.t) {
      case 'flush':
        return this.#onFlush(link, m);
      case 'flushAck':
        return this.#onFlushAck(link, m);
      case 'statusReply': {
        this.#notePeerStatus(m);
        this.#observeEpoch(m.epoch, m.role, link);
        const w = this.#statusWaiters.get(link);
        if (w) {
          this.#statusWaiters.delete(link);
          w(m);
        }
        return;
      }
      case 'stateReq':
        return this.#onStateReq(link, m);
      case 'stateSnap':
        return this.#onStateSnap(link, m);
      case 'drop':
        return this.#onDrop(link, m);
      case 'dropAck':
        return this.#onDropAck(link, m);
      default:
        return this.#violation(`unexpected ${m.t} at a replica`);
    }
  }

  #statusReply(): StatusReply {
    const r: StatusReply = { t: 'statusReply', role: this.#role, epoch: this.#epoch, appliedSeq: this.#runner.appliedSeq, nodeId: this.#nodeId };
    if (this.#opts.roleHint) r.roleHint = this.#opts.roleHint;
    const follow = this.#coveringFrom();
    if (follow !== undefined) r.follow = follow;
    if (this.#blocked !== undefined) r.blocked = { ...this.#blocked };
    return r;
  }

  /** A peer's epoch/role seen in any message: a newer epoch deposes us; equal-epoch primaries tie-break. */
  #observeEpoch(epoch: number, role: Role | undefined, link: Link): void {
    if (epoch > this.#epoch && SERVING.has(this.#role)) {
      this.#stepDown(epoch);
      return;
    }
    if (
      epoch === this.#epoch &&
      SERVING.has(this.#role) &&
      role !== undefined &&
      SERVING.has(role) &&
      link !== this.#peerLink &&
      this.#nodeId > (link.hello?.nodeId ?? this.#opts.peer)
    ) {
      // Two primaries in one epoch can only come from a startup race: the larger node id yields.
      this.#stepDown(epoch);
    }
  }

  #onPeerHello(link: Link, hello: Hello): void {
    this.#observeEpoch(hello.epoch, hello.role, link);
    // A primary that went solo dropped us: our state may be behind; join again.
    // (Only after silence: a hello sent just before we joined may arrive after the state copy.)
    if (
      this.#role === 'backup' &&
      hello.role === 'solo-primary' &&
      hello.epoch >= this.#epoch &&
      this.#env.now() - this.#lastFlushAt >= this.#cfg.heartbeatTimeoutMs / 2
    ) {
      this.#log('warn', 'dropped-by-primary', { primaryEpoch: hello.epoch });
      this.#leaveBackup(hello.epoch, 'the primary serves alone');
      return;
    }
    if (hello.role === 'solo-primary') this.#confirmFollow(hello.epoch, hello.follow);
  }

  // ---------------------------------------------------------------- state-sync strategy hooks

  /** A serving replica shows its strategy a live view (StateSync.attachPrimary). */
  #attachStateSync(): void {
    if (this.#attachment !== undefined || this.#stateSync.attachPrimary === undefined) return;
    const runner = this.#runner;
    const listeners = this.#appliedListeners;
    const self = this;
    const view: PrimaryStateView = {
      nodeId: this.#nodeId,
      serviceName: this.#opts.service.name,
      version: runner.version,
      get state() {
        return runner.state;
      },
      get appliedSeq() {
        return runner.appliedSeq;
      },
      get epoch() {
        return self.#epoch;
      },
      env: this.#env,
      exportDedup: () => runner.dedup.export().map(([k, r]) => [k, { ...r }] as [string, unknown]),
      digest: () => runner.stateDigest(),
      onApplied(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    try {
      this.#attachment = this.#stateSync.attachPrimary(view);
    } catch (err) {
      this.#log('error', 'state-sync-attach-failed', { error: (err as Error).message });
    }
  }

  #detachStateSync(): void {
    const a = this.#attachment;
    if (a === undefined) return;
    this.#attachment = undefined;
    this.#appliedListeners.clear();
    try {
      a.detach();
    } catch (err) {
      this.#log('error', 'state-sync-detach-failed', { error: (err as Error).message });
    }
  }

  #notifyApplied(entry: Entry): void {
    for (const l of this.#appliedListeners) {
      try {
        l(entry);
      } catch (err) {
        this.#log('error', 'applied-listener-failed', { seq: entry.seq, error: (err as Error).message });
      }
    }
  }

  /** `hello {kind: 'transfer'}`: hand the connection to the strategy, or close it (not serving / no strategy). */
  #onTransferHello(link: Link, hello: Hello): void {
    const accept = this.#attachment?.acceptTransfer;
    if (accept === undefined || !SERVING.has(this.#role)) {
      this.#log('info', 'transfer-refused', { from: hello.nodeId, why: SERVING.has(this.#role) ? 'no streaming state sync' : `role ${this.#role}` });
      void link.conn.close('no state transfer here').catch(() => undefined);
      return;
    }
    const attachment = this.#attachment!;
    this.#endCoverage('the dropped replica streams a new state');
    link.handOff((conn) => {
      if (this.#attachment !== attachment) return conn.abort();
      this.#log('info', 'transfer-connection', { from: hello.nodeId });
      try {
        accept.call(attachment, conn, { nodeId: hello.nodeId });
      } catch (err) {
        this.#log('error', 'transfer-accept-failed', { error: (err as Error).message });
        conn.abort();
      }
    });
  }

  /** The joining side's view of this replica's state machine (StateSync.fetch drives it). */
  #joinTarget(live: () => boolean, touched: () => void): JoinTarget {
    const runner = this.#runner;
    const check = (): void => {
      if (!live() || (this.#role !== 'joining' && this.#role !== 'starting')) throw new StoppedError('the state fetch was cancelled');
      touched();
    };
    return {
      get appliedSeq() {
        return runner.appliedSeq;
      },
      install: ({ seq, state, dedup }) => {
        check();
        const records = dedupRecordsSchema.safeParse(dedup);
        if (!records.success) throw new ProtocolViolationError(`state transfer: invalid dedup window: ${records.error.issues[0]?.message ?? 'schema mismatch'}`);
        this.#fetched = undefined;
        runner.installState(state, seq, records.data as unknown as [string, DedupRecord][]);
        this.#log('info', 'state-installed', { seq, records: records.data.length });
      },
      apply: (raw) => {
        check();
        const parsed = entrySchema.safeParse(raw);
        if (!parsed.success) throw new ProtocolViolationError(`state transfer: invalid log entry: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`);
        const e = parsed.data;
        if (e.seq !== runner.appliedSeq + 1) throw new ProtocolViolationError(`state transfer: entry ${e.seq} does not follow ${runner.appliedSeq}`);
        const outcome = runner.apply(e);
        if (outcome.digest !== e.digest) {
          this.#onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
          const err = new Error(`reply digest mismatch at seq ${e.seq} while catching up (primary ${e.digest}, joiner ${outcome.digest})`);
          err.name = 'DivergenceError';
          throw err;
        }
      },
      digest: () => runner.stateDigest(),
    };
  }

  #cancelFetch(): void {
    const c = this.#fetchCancel;
    this.#fetchCancel = undefined;
    c?.();
  }

  /**
   * Joining with a fetching strategy: stream a verified state from the primary, then ask to join from it
   * (`stateReq {haveSeq, haveDigest}`); on failure, ask for the whole-state copy.
   */
  #fetchThenJoin(link: Link): void {
    const fetch = this.#stateSync.fetch!;
    const cancelListeners: (() => void)[] = [];
    let cancelled = false;
    let touched = false;
    this.#fetchCancel = () => {
      cancelled = true;
      for (const l of cancelListeners.splice(0)) l();
    };
    const nodeId = this.#nodeId;
    const ctx = {
      peer: this.#opts.peer,
      nodeId,
      serviceName: this.#opts.service.name,
      env: this.#env,
      target: this.#joinTarget(
        () => !cancelled,
        () => {
          touched = true;
        },
      ),
      dialTransfer: async (): Promise<Connection> => {
        const timeoutMs = Math.max(this.#bounds.dialTimeoutMs, 1000);
        const conn = await this.#env.network.dial(this.#opts.peer, { maxMessageSize: this.#cfg.maxMessageSize, timeoutMs });
        const hello: Hello = { t: 'hello', kind: 'transfer', service: this.#opts.service.name, nodeId, epoch: this.#epoch };
        const auth = this.#security.peerRing === undefined ? undefined : { ring: this.#security.peerRing };
        return remainderOf(conn, await dialHandshake(conn, hello, auth, this.#env, timeoutMs));
      },
      onCancel(listener: () => void): void {
        if (cancelled) listener();
        else cancelListeners.push(listener);
      },
    };
    this.#log('info', 'state-fetch-start', { peer: this.#opts.peer });
    const startedAt = this.#env.now();
    void (async () => {
      let result: StateFetchResult | undefined;
      try {
        result = await fetch.call(this.#stateSync, ctx);
      } catch (err) {
        if (!cancelled) this.#log('warn', 'state-fetch-failed', { error: (err as Error).message, fallback: 'whole-state copy' });
      }
      if (cancelled) return;
      this.#fetchCancel = undefined;
      if (this.#role !== 'starting' && this.#role !== 'joining') return;
      const verified = result !== undefined && result.seq === this.#runner.appliedSeq && result.digest === this.#runner.stateDigest();
      this.#fetched = verified ? result : undefined;
      // An unfinished fetch leaves no half-copied state behind (a starting replica that ends up leading
      // must start from the initial state, as without streaming).
      if (!verified && touched) this.#runner.reset();
      if (verified) this.#log('info', 'state-fetched', { seq: result!.seq, ms: Math.round(this.#env.now() - startedAt) });
      if (link.isClosed) {
        // The status connection went away meanwhile: probe again (a verified state is kept for the delta join).
        this.#scheduleProbe(0);
        return;
      }
      this.#sendStateReq(link);
    })();
  }

  /** Ask the primary to join: from the fetched state when it is still the one we hold, else a whole copy. */
  #sendStateReq(link: Link, resume?: { seq: number; epoch: number }): void {
    const f = this.#fetched;
    const req: StateReq = { t: 'stateReq', nodeId: this.#nodeId };
    if (resume !== undefined) req.resume = resume;
    else if (f !== undefined && f.seq === this.#runner.appliedSeq) {
      req.haveSeq = f.seq;
      req.haveDigest = f.digest;
    }
    link.send(req);
    // The primary answers with the copy, or tells us (drop) when its join timeout passes; a closed
    // connection re-probes at once (#onLinkClosed). This only covers a primary that went silent.
    this.#scheduleProbe(this.#bounds.joinTimeoutMs + this.#bounds.dialTimeoutMs);
  }

  // ---------------------------------------------------------------- primary: requests

  #onRequest(link: Link, req: Req): void {
    const role = this.#role;
    if (role !== 'primary' && role !== 'solo-primary') {
      link.send({ t: 'notPrimary', requestId: req.requestId, epoch: this.#epoch, role });
      return;
    }
    if (role === 'primary' && (this.#dropping !== undefined || !this.#tracker.leaseValid(this.#env.now()) || this.#tracker.flowControlled)) {
      // Lease lapsed: we may have been paused while the backup took over. Hold until it is renewed.
      // Dropping the backup: hold until it acknowledged the drop (or is proven gone).
      // Flow control: the backup lags by maxUnackedEntries / 2 — wait for it rather than evict it.
      if (this.#held.length < MAX_HELD_REQUESTS) this.#held.push({ link, req });
      if (this.#dropping === undefined) this.#ensureFlushSoon();
      return;
    }
    this.#serve(link, req);
  }

  #serve(link: Link, req: Req): void {
    const runner = this.#runner;
    const dup = runner.dedup.get(req.clientId, req.requestId);
    if (dup !== undefined && this.#broken !== 'skip-dedup') {
      const rep = this.#repFromRecord(req.requestId, dup);
      this.#authenticate(rep, req);
      link.send(rep);
      return;
    }
    const parsed = runner.parseRequest(req.body);
    if (!parsed.ok) {
      link.send({ t: 'rep', requestId: req.requestId, epoch: this.#epoch, seq: 0, digest: '', time: 0, seed: 0, error: { name: 'InvalidRequestError', message: parsed.message } });
      return;
    }
    const entry: Entry = {
      seq: runner.appliedSeq + 1,
      epoch: this.#epoch,
      clientId: req.clientId,
      requestId: req.requestId,
      body: req.body,
      time: Math.max(this.#env.wallClock(), runner.lastTime),
      seed: Math.floor(this.#env.random() * 0x100000000) >>> 0,
      digest: '',
    };
    const outcome = runner.applyParsed(entry, parsed.request);
    entry.digest = outcome.digest;
    if (this.#appliedListeners.size > 0) this.#notifyApplied(entry);
    const rep: Rep = { t: 'rep', requestId: req.requestId, epoch: this.#epoch, seq: entry.seq, digest: entry.digest, time: entry.time, seed: entry.seed };
    if (outcome.error === undefined) rep.body = outcome.body;
    else rep.error = outcome.error;

    const covering = this.#role === 'solo-primary' && this.#covering !== undefined;
    if (this.#role === 'solo-primary' && !covering) {
      rep.replicated = true; // no backup exists: nothing for the client to forward
      link.send(rep);
      return;
    }
    this.#tracker.append(entry);
    if (this.#cfg.replyMode === 'sync' && !covering) {
      rep.replicated = true;
      this.#syncWaiters.push({ seq: entry.seq, link, rep });
      this.#flush();
      return;
    }
    if (this.#cfg.piggyback === 'entries') {
      // Each entry goes out once per client connection: from the connection's mark, or — on its first
      // reply, after a log restart, or when the client asks (resync) — from the backup's acknowledged seq.
      const t = this.#tracker;
      let from = t.ackedSeq;
      if (link.piggybackGeneration === t.generation && req.resync !== true && link.piggybackedUpTo > from) from = link.piggybackedUpTo;
      rep.entries = t.log.packedRange(from);
      link.piggybackGeneration = t.generation;
      link.piggybackedUpTo = entry.seq;
    }
    this.#authenticate(rep, req);
    link.send(rep); // the reply goes out first; everything below is bookkeeping
    if (covering) {
      if (this.#tracker.log.size >= this.#cfg.maxUnackedEntries) this.#endCoverageSoon('the dropped replica has not come back within maxUnackedEntries entries');
      return;
    }
    if (this.#tracker.overflowing) {
      this.#peerFaulty(`backup has not acknowledged ${this.#tracker.log.size} entries`);
    } else if (this.#tracker.countFlushDue) {
      this.#flush();
    }
  }

  #repFromRecord(requestId: number, rec: DedupRecord): Rep {
    const rep: Rep = { t: 'rep', requestId, epoch: this.#epoch, seq: rec.seq, digest: rec.digest, time: rec.time, seed: rec.seed };
    if (rec.epoch !== this.#epoch) rep.entryEpoch = rec.epoch;
    if (rec.error !== undefined) rep.error = rec.error;
    else if (isExpired(rec)) {
      rep.error = { name: 'ReplyExpiredError', message: `request ${requestId} was already applied (seq ${rec.seq}); its reply is no longer kept (dedupMaxBytes)` };
    } else rep.body = rec.body;
    if ((this.#role === 'solo-primary' && this.#covering === undefined) || rec.seq <= this.#tracker.ackedSeq) rep.replicated = true;
    else if (this.#cfg.piggyback === 'entries') rep.entries = this.#tracker.log.packedRange(this.#tracker.ackedSeq, rec.seq);
    return rep;
  }

  /**
   * With a cluster key, the state information a reply carries gets the primary's MAC, so the backup can
   * tell what this primary sequenced from what a client made up (docs/SECURITY.md).
   */
  #authenticate(rep: Rep, req: Req): void {
    const ring = this.#security.macRing;
    if (ring === undefined || rep.replicated === true || rep.seq === 0) return;
    if (rep.entries !== undefined) {
      rep.entriesMac = packedEntriesMac(ring, rep.seq, rep.entries);
      return;
    }
    rep.mac = entryMac(ring, {
      seq: rep.seq,
      epoch: rep.entryEpoch ?? rep.epoch,
      clientId: req.clientId,
      requestId: req.requestId,
      body: req.body,
      time: rep.time,
      seed: rep.seed,
      digest: rep.digest,
    });
  }

  // ---------------------------------------------------------------- primary: flush, ack, lease

  #startPrimaryDuties(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = this.#env.setTimer(this.#cfg.flushIntervalMs, () => this.#onFlushTimer());
  }

  #onFlushTimer(): void {
    this.#flushTimer = undefined;
    if (this.#role !== 'primary') return;
    this.#flush();
  }

  #ensureFlushSoon(): void {
    if (this.#flushTimer === undefined && this.#role === 'primary') this.#startPrimaryDuties();
  }

  /**
   * Send the unflushed entries (none = heartbeat). If the oldest flush is unacknowledged for
   * ackTimeoutMs, resend everything unacknowledged; after maxRetransmits such resends, the peer is faulty.
   */
  #flush(): void {
    if (this.#role !== 'primary' || this.#dropping !== undefined) return;
    const now = this.#env.now();
    this.#flushTimer?.cancel();
    this.#flushTimer = this.#env.setTimer(this.#cfg.flushIntervalMs, () => this.#onFlushTimer());
    const link = this.#peerLink;
    const plan = this.#tracker.plan(now);
    if (plan.kind === 'faulty') {
      this.#confirmSilence();
      return;
    }
    if (plan.kind === 'join-timeout') {
      this.#peerFaulty(`the joiner installed no state copy within ${this.#bounds.joinTimeoutMs} ms`);
      return;
    }
    if (plan.retransmit) this.#log('debug', 'flush-retransmit', { attempt: this.#tracker.retransmits, fromSeq: this.#tracker.ackedSeq });
    if (link === undefined || link.isClosed) {
      this.#redialPeer();
      return;
    }
    if (link.send({ t: 'flush', epoch: this.#epoch, flushId: plan.flushId, entries: plan.entries })) this.#tracker.sent(plan.flushId, now);
  }

  /**
   * The backup looks silent: look again after one turn of the event loop, so acknowledgements that
   * arrived while this process was busy are read first — a primary that was itself slow must not
   * blame its backup for it (docs/PROTOCOL.md, "Failure detector").
   */
  #confirmSilence(): void {
    if (this.#silenceCheck !== undefined) return;
    this.#silenceCheck = this.#env.setTimer(0, () => {
      this.#silenceCheck = undefined;
      if (this.#role !== 'primary' || this.#dropping !== undefined) return;
      const now = this.#env.now();
      if (!this.#tracker.silentTooLong(now)) {
        this.#ensureFlushSoon();
        return;
      }
      this.#peerFaulty(`no acknowledgement for ${Math.round(now - this.#tracker.lastAckAt)} ms and ${this.#cfg.maxRetransmits} retransmissions`);
    });
  }

  #onFlushAck(link: Link, ack: FlushAck): void {
    if (ack.epoch > this.#epoch) {
      this.#stepDown(ack.epoch);
      return;
    }
    if (this.#role !== 'primary' || ack.epoch < this.#epoch || ack.role !== 'backup') return;
    if (link !== this.#peerLink) return;
    if (this.#tracker.awaitingJoinAck && ack.upToSeq < this.#tracker.ackedSeq) {
      // It installed an older copy than the one we keep entries for: the gap cannot be filled.
      this.#peerFaulty(`the joiner installed seq ${ack.upToSeq}, older than the copy at ${this.#tracker.ackedSeq}`);
      return;
    }
    this.#tracker.acked(ack, this.#env.now());
    if (this.#syncWaiters.length > 0) this.#releaseSyncWaiters();
    if (this.#held.length > 0 && this.#tracker.leaseValid(this.#env.now()) && !this.#tracker.flowControlled) this.#releaseHeld();
  }

  #releaseSyncWaiters(): void {
    let i = 0;
    const w = this.#syncWaiters;
    while (i < w.length && w[i]!.seq <= this.#tracker.ackedSeq) {
      w[i]!.link.send(w[i]!.rep);
      i++;
    }
    if (i > 0) this.#syncWaiters = w.slice(i);
  }

  #releaseHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) if (!h.link.isClosed) this.#onRequest(h.link, h.req);
  }

  #answerHeldNotPrimary(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) h.link.send({ t: 'notPrimary', requestId: h.req.requestId, epoch: this.#epoch, role: this.#role });
    this.#syncWaiters = [];
  }

  #redialPeer(): void {
    if (this.#peerDialing || this.#role !== 'primary' || this.#dropping !== undefined) return;
    this.#peerDialing = true;
    void this.#dialPeerResult(Math.max(this.#bounds.dialTimeoutMs, 100)).then(({ link }) => {
      this.#peerDialing = false;
      if (this.#role !== 'primary' || this.#dropping !== undefined) {
        link?.abort();
        return;
      }
      if (link === undefined) {
        this.#peerFaulty('peer unreachable (dial failed)');
        return;
      }
      this.#peerLink = link;
      this.#tracker.resendAll(); // a new connection: resend everything unacknowledged
      this.#flush();
    });
  }

  /**
   * The backup is gone (or too slow): keep nothing for it, tell it (`drop`), and serve alone once it
   * acknowledged the drop, or is proven gone (dial refused), or takeoverMs passed since its last
   * acknowledged flush — until then requests are held, like a lapsed lease.
   */
  #peerFaulty(reason: string): void {
    if (this.#role !== 'primary' || this.#dropping !== undefined) return;
    const witness = this.#opts.witness;
    const proceed = (): void => {
      if (this.#role !== 'primary' || this.#dropping !== undefined) return;
      this.#log('warn', 'peer-faulty', { reason, unacked: this.#tracker.log.size });
      this.#emit({ type: 'peer-faulty', reason });
      this.#beginDrop(reason);
    };
    if (!witness) return proceed();
    this.#cancelPrimaryTimers();
    void Promise.resolve(witness.mayServeAlone({ nodeId: this.#nodeId, epoch: this.#epoch, reason: 'peer-faulty' })).then(
      (ok) => (ok ? proceed() : this.#stepDown(this.#epoch)),
      () => this.#stepDown(this.#epoch),
    );
  }

  #beginDrop(reason: string): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    const link = this.#peerLink;
    this.#peerLink = undefined;
    const now = this.#env.now();
    const wait = this.#tracker.lastAckedSentAt + this.#bounds.takeoverMs - now;
    // Keep the log from the backup's acknowledged seq: serving alone, this replica still piggybacks it,
    // so the dropped backup — if it lives — can follow by the clients' forwards ("Follower").
    this.#tracker.stopFlushing();
    this.#tracker.leaseUntil = 0;
    this.#covering = { from: this.#tracker.ackedSeq, lastReachedAt: now, endingSince: undefined };
    const d: DropPhase = { link: link && !link.isClosed ? link : undefined, timer: undefined, dialing: false };
    this.#dropping = d;
    this.#log('info', 'dropping-backup', { reason, maxWaitMs: Math.max(0, wait) });
    if (wait <= 0) {
      // The backup has been silent for a whole takeover period: were it alive and still a backup, it
      // would have asked us (takeover probe) before taking over. Tell it anyway; serve now.
      this.#sendDrop();
      this.#goSolo('backup silent for takeoverMs');
      return;
    }
    d.timer = this.#env.setTimer(wait, () => this.#goSolo('drop not acknowledged within takeoverMs of the last ack'));
    this.#sendDrop();
  }

  /** Send the drop on the current link, or dial the peer for it; a refused dial proves it gone. */
  #sendDrop(): void {
    const d = this.#dropping;
    const drop: Drop = { t: 'drop', epoch: this.#epoch, reason: 'declared faulty' };
    if (d === undefined) {
      // Already serving alone (the drop deadline passed): a best-effort notice on a fresh connection.
      return;
    }
    if (d.link && !d.link.isClosed) {
      d.link.send(drop);
      return;
    }
    if (d.dialing) return;
    d.dialing = true;
    void this.#dialPeerResult(Math.max(this.#bounds.dialTimeoutMs, 100)).then(({ link, refused }) => {
      d.dialing = false;
      if (this.#dropping !== d) {
        link?.abort();
        return;
      }
      if (link) {
        d.link = link;
        link.send(drop);
      } else if (refused) {
        this.#endCoverage('the dropped replica is gone (dial refused)');
        this.#goSolo('backup unreachable (dial refused)');
      } else {
        // Unreachable for another reason: try again shortly (the deadline timer bounds the wait).
        this.#env.setTimer(this.#cfg.ackTimeoutMs, () => this.#dropping === d && this.#sendDrop());
      }
    });
  }

  #onDropAck(link: Link, ack: DropAck): void {
    if (ack.epoch > this.#epoch) {
      this.#stepDown(ack.epoch);
      return;
    }
    if (this.#dropping !== undefined) this.#goSolo('backup acknowledged the drop');
    void link.conn.close('drop acknowledged').catch(() => undefined);
  }

  /** End the drop phase (if any) and serve alone; the drop link stays open so a slow backup still reads the drop. */
  #goSolo(why: string): void {
    const d = this.#dropping;
    if (d === undefined || this.#role !== 'primary') return;
    this.#dropping = undefined;
    d.timer?.cancel();
    this.#log('warn', 'solo', { why });
    this.#setRole('solo-primary');
    // Answer what waited: sync replies (their entries are ours alone now) and held requests.
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w.link.send(w.rep);
    this.#releaseHeld();
    this.#startSoloProbe();
  }

  /** Leave the drop phase without serving (step-down, or the dropped backup asks to re-join). */
  #cancelDrop(): void {
    const d = this.#dropping;
    if (d === undefined) return;
    this.#dropping = undefined;
    d.timer?.cancel();
  }

  #cancelPrimaryTimers(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    this.#silenceCheck?.cancel();
    this.#silenceCheck = undefined;
    this.#cancelDrop();
  }

  /** A solo primary keeps looking for its peer: a paused backup learns it was dropped; a newer primary deposes us. */
  #startSoloProbe(): void {
    this.#probeTimer?.cancel();
    const interval = Math.max(this.#cfg.flushIntervalMs, this.#cfg.heartbeatTimeoutMs / 2);
    const tick = (): void => {
      this.#probeTimer = undefined;
      if (this.#role !== 'solo-primary') return;
      const link = this.#probeLink;
      if (link && !link.isClosed) {
        link.send(this.#hello());
        link.send({ t: 'status' });
        this.#probeTimer = this.#env.setTimer(interval, tick);
        return;
      }
      void this.#dialPeerResult(Math.max(this.#bounds.dialTimeoutMs, 100)).then(({ link: l, refused }) => {
        if (l) {
          if (this.#role !== 'solo-primary') return void l.abort();
          this.#probeLink = l;
          l.send({ t: 'status' });
        } else if (refused) {
          // Nothing listens at the peer's address: a dropped replica there is gone; its restart holds no state.
          this.#endCoverage('the dropped replica is gone (dial refused)');
        }
        this.#tickCoverage();
        if (this.#role === 'solo-primary') this.#probeTimer = this.#env.setTimer(interval, tick);
      });
    };
    this.#probeTimer = this.#env.setTimer(interval, tick);
  }

  // ---------------------------------------------------------------- solo primary: covering a dropped backup

  /** The seq from which this solo primary piggybacks for its dropped backup (confirmed in hello/status). */
  #coveringFrom(): number | undefined {
    const c = this.#covering;
    return c === undefined || c.endingSince !== undefined || this.#role !== 'solo-primary' ? undefined : c.from;
  }

  /**
   * Stop confirming the coverage now, end it coverageEndMs later (docs/PROTOCOL.md, "Follower"): a
   * dropped replica takes over only with a confirmation younger than coverageEndMs, so it cannot rely on
   * a coverage this replica ended.
   */
  #endCoverageSoon(why: string): void {
    const c = this.#covering;
    if (c === undefined || c.endingSince !== undefined) return;
    c.endingSince = this.#env.now();
    this.#log('warn', 'coverage-ending', { why, fromSeq: c.from, entries: this.#tracker.log.size, inMs: this.#bounds.joinTimeoutMs });
  }

  #tickCoverage(): void {
    const c = this.#covering;
    if (c === undefined) return;
    const now = this.#env.now();
    if (c.endingSince === undefined && now - c.lastReachedAt >= this.#bounds.joinTimeoutMs && this.#tracker.log.size >= this.#cfg.flushMaxEntries) {
      this.#endCoverageSoon(`the dropped replica has not answered for ${Math.round(now - c.lastReachedAt)} ms`);
    }
    if (c.endingSince !== undefined && now - c.endingSince >= this.#bounds.joinTimeoutMs) this.#endCoverage('coverage period over');
  }

  #endCoverage(why: string): void {
    if (this.#covering === undefined) return;
    this.#log('info', 'coverage-ended', { why, fromSeq: this.#covering.from });
    this.#covering = undefined;
    if (this.#role === 'solo-primary') this.#tracker.clear();
  }

  // ---------------------------------------------------------------- primary: a backup joins

  #onStateReq(link: Link, req: StateReq): void {
    if (!SERVING.has(this.#role)) {
      link.send(this.#statusReply());
      return;
    }
    // The same joiner asking again while its copy is in flight (it cannot have installed it: it would
    // have acknowledged): keep the join in progress rather than send a second copy.
    if (link === this.#peerLink && this.#role === 'primary' && this.#tracker.awaitingJoinAck) return;
    if (req.resume !== undefined) {
      // A dropped backup that followed us: admit it from its own state with the entries our log still holds.
      const entries = this.#resumeEntries(req.resume);
      if (entries !== undefined) {
        this.#log('info', 'resume', { joiner: req.nodeId, fromSeq: req.resume.seq, entries: entries.length });
        this.#admitJoiner(link, entries, req.nodeId, true);
      } else {
        this.#log('info', 'resume-unavailable', { joiner: req.nodeId, fromSeq: req.resume.seq, epoch: req.resume.epoch, appliedSeq: this.#runner.appliedSeq, logFrom: this.#tracker.ackedSeq });
        link.send({ t: 'drop', epoch: this.#epoch, reason: 'resume unavailable: join with a state transfer' });
      }
      return;
    }
    const attachment = this.#attachment;
    if (req.haveSeq !== undefined && req.haveDigest !== undefined && attachment?.verifiedAt !== undefined && attachment.entriesAfter !== undefined) {
      // The joiner streamed a state: join it from there if our strategy verified it (it may still be
      // reporting the verification: wait for it), else send the whole copy.
      if (this.#deltaPending.has(link)) return;
      this.#deltaPending.add(link);
      const ask = { nodeId: req.nodeId, haveSeq: req.haveSeq, haveDigest: req.haveDigest };
      void Promise.resolve()
        .then(() => attachment.verifiedAt!(ask))
        .catch(() => false)
        .then((ok) => {
          this.#deltaPending.delete(link);
          if (!SERVING.has(this.#role) || link.isClosed || this.#attachment !== attachment) return;
          if (link === this.#peerLink && this.#role === 'primary' && this.#tracker.awaitingJoinAck) return;
          const delta = ok ? this.#deltaFrom(attachment, ask.haveSeq) : undefined;
          if (ok && delta === undefined) {
            // Verified, but the entries since are no longer all held (or too many): it streams again
            // (a whole copy is what streaming avoids). `drop` makes a joiner forget its fetched state.
            this.#log('info', 'delta-unavailable', { joiner: ask.nodeId, haveSeq: ask.haveSeq, appliedSeq: this.#runner.appliedSeq });
            link.send({ t: 'drop', epoch: this.#epoch, reason: 'delta join unavailable: stream again' });
            return;
          }
          this.#admitJoiner(link, delta, ask.nodeId);
        });
      return;
    }
    this.#admitJoiner(link, undefined, req.nodeId);
  }

  /** The entries after `seq` up to appliedSeq from our own log (a resume), when all held and of this epoch. */
  #resumeEntries(resume: { seq: number; epoch: number }): readonly Entry[] | undefined {
    const head = this.#runner.appliedSeq;
    if (resume.epoch !== this.#epoch || resume.seq > head || resume.seq < this.#tracker.ackedSeq) return undefined;
    if (this.#role === 'solo-primary' && this.#covering === undefined) return undefined;
    const entries = this.#tracker.log.range(resume.seq);
    if (entries.length !== head - resume.seq) return undefined;
    for (let i = 0; i < entries.length; i++) if (entries[i]!.seq !== resume.seq + 1 + i || entries[i]!.epoch !== this.#epoch) return undefined;
    return entries;
  }

  /** The entries after `seq` up to appliedSeq from the strategy, when complete and few enough for the log bound. */
  #deltaFrom(attachment: PrimaryAttachment, seq: number): readonly Entry[] | undefined {
    const head = this.#runner.appliedSeq;
    if (seq > head) return undefined;
    if (head - seq > this.#cfg.maxUnackedEntries / 2) return undefined;
    let entries: readonly Entry[] | undefined;
    try {
      entries = attachment.entriesAfter!(seq);
    } catch (err) {
      this.#log('warn', 'delta-entries-failed', { error: (err as Error).message });
      return undefined;
    }
    if (entries === undefined || entries.length !== head - seq) return undefined;
    for (let i = 0; i < entries.length; i++) if (entries[i]!.seq !== seq + 1 + i || entries[i]!.epoch !== this.#epoch) return undefined;
    return entries;
  }

  /** Make `link`'s replica our backup: from a whole-state copy (delta undefined), or from the state it
   * holds at haveSeq with `delta` = the entries after it, which go into the unacknowledged log. */
  #admitJoiner(link: Link, delta: readonly Entry[] | undefined, joinerId: string, resumed = false): void {
    // A dropped backup asking for a fresh copy has left the backup role: the drop is complete.
    this.#cancelDrop();
    this.#covering = undefined; // a backup again (or a full join): nobody follows any more
    let msg: StateSnap;
    if (delta !== undefined) {
      const seq = this.#runner.appliedSeq - delta.length;
      msg = { t: 'stateSnap', epoch: this.#epoch, seq, version: this.#runner.version, snapshot: null, dedup: [], delta: true };
      // The writes acknowledged since `seq` (alone, while the joiner streamed or was dropped) travel with
      // the admission: the joiner holds them before it is a backup. Too large for one message: flushes.
      if (delta.length > 0) {
        const withEntries: StateSnap = { ...msg, entries: [...delta] };
        if (codec.encode(withEntries).length <= link.conn.maxMessageSize) msg = withEntries;
      }
    } else {
      if (this.#stateSync.fetch !== undefined || this.#attachment?.verifiedAt !== undefined) this.#log('info', 'whole-state-copy', { joiner: joinerId });
      const snap = this.#stateSync.capture(this.#runner.takeSnapshot() as unknown as StateSnapshot);
      msg = { t: 'stateSnap', epoch: this.#epoch, seq: snap.seq, version: snap.version, snapshot: snap.snapshot, dedup: snap.dedup as StateSnap['dedup'] };
    }
    const snap = msg;
    if (!link.send(msg)) return;
    // From now on, keep every entry after snap.seq for this backup.
    const old = this.#peerLink;
    this.#peerLink = link;
    if (old && old !== link) old.abort();
    this.#tracker.reset(snap.seq, this.#env.now(), true);
    if (delta !== undefined) for (const e of delta) this.#tracker.append(e);
    this.#probeTimer?.cancel();
    this.#probeTimer = undefined;
    if (this.#probeLink && this.#probeLink !== link) this.#probeLink.abort();
    this.#probeLink = undefined;
    const mode = resumed ? 'resume' : delta !== undefined ? 'delta' : 'copy';
    this.#log('info', 'peer-joined', { seq: snap.seq, peer: link.remote, mode, entries: delta?.length ?? 0 });
    this.#setRole('primary');
    this.#emit({ type: 'peer-joined', seq: snap.seq, mode });
    this.#startPrimaryDuties();
    if (this.#held.length > 0 && this.#tracker.leaseValid(this.#env.now())) this.#releaseHeld();
  }

  // ---------------------------------------------------------------- backup: dropped by the primary

  #onDrop(link: Link, drop: Drop): void {
    if (drop.epoch < this.#epoch) {
      // A deposed primary: our ack carries the newer epoch, so it steps down.
      link.send({ t: 'dropAck', epoch: this.#epoch });
      return;
    }
    if (SERVING.has(this.#role)) {
      this.#observeEpoch(drop.epoch, 'primary', link);
      if (SERVING.has(this.#role)) return;
    }
    link.send({ t: 'dropAck', epoch: drop.epoch });
    void link.conn.close('dropped').catch(() => undefined);
    this.#fetched = undefined; // a joiner told to stream again (or a dropped backup) fetches a fresh state
    if (this.#role === 'backup' || this.#role === 'joining' || this.#role === 'starting') {
      this.#log('warn', 'dropped-by-primary', { primaryEpoch: drop.epoch, reason: drop.reason });
      if (this.#role === 'starting') {
        this.#epoch = Math.max(this.#epoch, drop.epoch);
        this.#scheduleProbe(0);
      } else if (this.#role === 'backup') {
        this.#leaveBackup(drop.epoch, 'dropped');
      } else {
        // A joiner told to join otherwise (a resume the primary cannot serve, a delta to stream again).
        this.#stopFollowing('the primary asks for a state transfer');
        this.#becomeJoining(drop.epoch);
      }
    }
  }

  // ---------------------------------------------------------------- backup

  #onFlush(link: Link, flush: Flush): void {
    if (flush.epoch < this.#epoch || SERVING.has(this.#role)) {
      if (flush.epoch > this.#epoch) {
        this.#stepDown(flush.epoch);
        return;
      }
      // A deposed or duplicate primary: tell it our epoch so it steps down.
      link.send({ t: 'flushAck', epoch: this.#epoch, flushId: flush.flushId, upToSeq: this.#runner.appliedSeq, role: this.#role });
      if (flush.epoch === this.#epoch) this.#observeEpoch(flush.epoch, 'primary', link);
      return;
    }
    if (this.#role !== 'backup') return; // joining/starting: the primary will get our stateReq
    if (flush.epoch > this.#epoch) this.#epoch = flush.epoch;
    this.#lastFlushAt = this.#env.now();
    this.#slowPrimaryProbes = 0;
    if (this.#suspectTimer) {
      this.#suspectTimer.cancel();
      this.#suspectTimer = undefined;
      this.#log('info', 'primary-alive-again', {});
    }
    this.#acceptEntries(flush.entries, true);
    link.send({ t: 'flushAck', epoch: this.#epoch, flushId: flush.flushId, upToSeq: this.#runner.appliedSeq, role: 'backup' });
  }

  #onForward(link: Link, fwd: Fwd): void {
    const ring = this.#security.macRing;
    // A backup collects forwards; so does a dropped backup following the solo primary.
    // A backup collects forwards; so does a dropped backup following the solo primary, and a joiner that
    // knows the primary's epoch: it acknowledges these forwards, so it must not throw them away — the
    // entries after the state it will install are state information the primary acknowledged.
    const collecting = this.#role === 'backup' || ((this.#role === 'joining' || this.#role === 'starting') && this.#epoch >= 1);
    let entries = fwd.entries;
    if (ring !== undefined && entries.length > 0) {
      entries = entries.filter((e) => verifyEntryMac(ring, e, e.mac) || this.#forged(link, [e.seq], 'entry MAC does not verify'));
    }
    if (fwd.packed !== undefined) {
      entries = entries.slice();
      for (const p of fwd.packed) {
        // Skip lists the backup already applied (the primary's flush got here first): no decoding.
        if (collecting && p.upToSeq <= this.#runner.appliedSeq) continue;
        if (ring !== undefined && !verifyPackedEntries(ring, p.upToSeq, p.bytes, p.mac)) {
          this.#forged(link, [p.upToSeq], p.mac === undefined ? 'no MAC on forwarded entries' : 'the MAC of forwarded entries does not verify');
          continue;
        }
        for (const e of decodeEntries(p.bytes)) entries.push(e); // throws ProtocolViolationError
      }
    }
    if (collecting) {
      this.#acceptEntries(entries, false);
    } else if (SERVING.has(this.#role)) {
      this.#checkLateEntries(entries);
    }
    link.send({ t: 'fwdAck', fwdId: fwd.fwdId, epoch: this.#epoch, role: this.#role });
  }

  #acceptEntries(entries: readonly Entry[], fromPrimary: boolean): void {
    if (this.#broken === 'unordered-apply') {
      for (const e of entries) {
        if (e.seq <= this.#runner.appliedSeq) continue;
        const outcome = this.#runner.apply(e);
        if (outcome.digest !== e.digest) this.#onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
      }
      return;
    }
    let stored = 0;
    for (const e of entries) {
      const r = this.#backupLog.offer(e, this.#runner.appliedSeq, this.#epoch, fromPrimary);
      if (r === 'stored') stored++;
      else if (r === 'stale-epoch') this.#log('warn', 'stale-entry', { seq: e.seq, entryEpoch: e.epoch });
      else if (r === 'full') this.#log('warn', 'backup-log-full', { seq: e.seq });
    }
    if (stored > 0 || fromPrimary) this.#applyPending();
  }

  /**
   * Apply what is ready, at most APPLY_BATCH entries per turn of the event loop: a backup catching up a
   * long run (a delta join, a resume) keeps reading and acknowledging meanwhile, so its primary does not
   * take it for silent (docs/PROTOCOL.md, "Failure detector").
   */
  #applyPending(): void {
    const applied = this.#backupLog.applyReady(this.#runner, (d) => this.#onDivergence(d), false, APPLY_BATCH);
    if (applied < APPLY_BATCH || this.#drainTimer !== undefined) return;
    this.#drainTimer = this.#env.setTimer(0, () => {
      this.#drainTimer = undefined;
      if (this.#role === 'backup' || (this.#role === 'joining' && this.#follow !== undefined)) this.#applyPending();
    });
  }

  #onDivergence(d: Divergence): void {
    this.#divergences++;
    this.#log('error', 'DIVERGENCE', {
      seq: d.seq,
      expectedDigest: d.expectedDigest,
      actualDigest: d.actualDigest,
      clientId: d.entry.clientId,
      requestId: d.entry.requestId,
      request: d.entry.body,
      hint: 'the service is not deterministic given (state, request, ctx): replies differ between primary and backup',
    });
    this.#emit({ type: 'divergence', seq: d.seq, expectedDigest: d.expectedDigest, actualDigest: d.actualDigest });
  }

  /** After a takeover, an entry of the old epoch beyond what we applied is a reply we cannot reflect. */
  /** A client forwarded state information the primary did not authenticate: report it, never apply it. */
  #forged(link: Link, seqs: number[], reason: string): false {
    this.#forgedForwards++;
    const remote = link.conn.remoteAddress;
    const clientId = link.hello?.nodeId;
    this.#rateLog.log('forged-forward', (suppressed) =>
      this.#log('error', 'FORGED-FORWARD', { remote, clientId, seqs, reason, suppressed, hint: 'a client forwarded state information the primary did not sequence; not applied' }),
    );
    this.#emit({ type: 'forged-forward', remote, seqs, reason });
    return false;
  }

  #checkLateEntries(entries: readonly Entry[]): void {
    const lost = entries.filter((e) => e.epoch < this.#epoch && e.seq > this.#takeoverSeq && this.#takeoverSeq > 0);
    if (lost.length > 0) this.#reportLost(lost.map((e) => e.seq), 'forward arrived after takeover');
  }

  #reportLost(seqs: number[], why: string): void {
    this.#log('error', 'LOST-ENTRIES', { seqs, why, hint: 'replies for these entries were sent by the old primary but cannot be ordered here' });
    this.#emit({ type: 'lost-entries', epoch: this.#epoch, seqs });
  }

  #armWatchdog(): void {
    this.#watchdog?.cancel();
    const wait = Math.max(0, this.#lastFlushAt + this.#cfg.heartbeatTimeoutMs - this.#env.now());
    this.#watchdog = this.#env.setTimer(wait, () => this.#onWatchdog());
  }

  #onWatchdog(): void {
    this.#watchdog = undefined;
    if (this.#role !== 'backup') return;
    const now = this.#env.now();
    const silence = now - this.#lastFlushAt;
    // Compare against the same deadline #armWatchdog computed (not `silence < timeout`): floating-point
    // rounding could otherwise make the two disagree and re-arm a 0 ms timer at the same instant.
    if (now < this.#lastFlushAt + this.#cfg.heartbeatTimeoutMs) return this.#armWatchdog();
    if (this.#broken === 'no-forward-wait') return this.#onSuspectExpired();
    if (this.#suspectTimer === undefined && !this.#probingPrimary) {
      this.#log('warn', 'primary-silent', { silenceMs: silence, forwardWindowMs: this.#bounds.forwardWindowMs });
      // Wait for in-flight client forwards before taking over (still accepting them meanwhile).
      this.#suspectTimer = this.#env.setTimer(this.#bounds.forwardWindowMs, () => this.#onSuspectExpired());
    }
    this.#armWatchdogLater();
  }

  /** While suspecting, keep a watchdog running so a resumed primary's flush cancels the suspicion. */
  #armWatchdogLater(): void {
    this.#watchdog = this.#env.setTimer(this.#cfg.heartbeatTimeoutMs, () => this.#onWatchdog());
  }

  #onSuspectExpired(): void {
    this.#suspectTimer = undefined;
    if (this.#role !== 'backup' || this.#probingPrimary) return;
    const now = this.#env.now();
    if (now < this.#lastFlushAt + this.#cfg.heartbeatTimeoutMs) return;
    // Before taking over, ask the primary itself: one that answers is alive (it may have dropped us
    // without our hearing it) — then re-join instead. A crashed primary refuses the dial at once; a
    // paused one stays silent for takeoverProbeMs.
    this.#probingPrimary = true;
    void this.#probePeerStatus(this.#bounds.takeoverProbeMs).then((reply) => {
      this.#probingPrimary = false;
      if (this.#role !== 'backup') return;
      if (this.#env.now() < this.#lastFlushAt + this.#cfg.heartbeatTimeoutMs) return; // a flush came: the watchdog runs
      if (reply !== undefined && reply.role === 'primary' && reply.epoch === this.#epoch && this.#slowPrimaryProbes < MAX_SLOW_PRIMARY_PROBES) {
        // Our primary is alive and still has a backup — us: it is slow (a busy machine), not gone. Its
        // answer counts as a heartbeat; a few in a row without a flush and we join again (below).
        this.#slowPrimaryProbes++;
        this.#log('info', 'primary-slow', { silenceMs: Math.round(this.#env.now() - this.#lastFlushAt), probes: this.#slowPrimaryProbes });
        this.#lastFlushAt = this.#env.now();
        this.#armWatchdog();
        return;
      }
      if (reply !== undefined && SERVING.has(reply.role) && reply.epoch >= this.#epoch) {
        this.#log('warn', 'takeover-aborted', { why: 'the primary answered', primaryRole: reply.role, primaryEpoch: reply.epoch });
        this.#leaveBackup(reply.epoch, `the primary answered as ${reply.role}`);
        return;
      }
      this.#takeoverIfAllowed();
    });
  }

  /** Dial the peer on a fresh connection and ask its status; undefined when no answer within `budgetMs`. */
  async #probePeerStatus(budgetMs: number): Promise<StatusReply | undefined> {
    const startedAt = this.#env.now();
    const { link } = await this.#dialPeerResult(Math.max(1, budgetMs));
    if (link === undefined) return undefined;
    const left = Math.max(1, startedAt + budgetMs - this.#env.now());
    const reply = await this.#awaitStatus(link, left);
    void link.conn.close('status probe done').catch(() => undefined);
    return reply;
  }

  #takeoverIfAllowed(): void {
    const witness = this.#opts.witness;
    if (!witness) return this.#takeover(this.#env.now() - this.#lastFlushAt);
    void Promise.resolve(witness.mayServeAlone({ nodeId: this.#nodeId, epoch: this.#epoch + 1, reason: 'takeover' })).then(
      (ok) => {
        if (ok && this.#role === 'backup') this.#takeover(this.#env.now() - this.#lastFlushAt);
        else if (this.#role === 'backup') this.#armWatchdog();
      },
      () => this.#role === 'backup' && this.#armWatchdog(),
    );
  }

  #takeover(silenceMs: number): void {
    this.#cancelBackupTimers();
    // Everything the clients forwarded that can be ordered is applied now (the P-crash-after-reply case).
    this.#backupLog.applyReady(this.#runner, (d) => this.#onDivergence(d), true);
    const gap = this.#backupLog.beyondGap();
    this.#backupLog.clear();
    this.#epoch += 1;
    this.#takeoverSeq = this.#runner.appliedSeq;
    if (gap.length > 0) this.#reportLost(gap.map((e) => e.seq), `missing seq ${this.#runner.appliedSeq + 1} at takeover`);
    this.#log('warn', 'takeover', { appliedSeq: this.#runner.appliedSeq, silenceMs });
    this.#followable = false;
    this.#setRole('solo-primary');
    this.#emit({ type: 'takeover', epoch: this.#epoch, appliedSeq: this.#runner.appliedSeq, silenceMs });
    this.#startSoloProbe();
  }

  #cancelBackupTimers(): void {
    this.#watchdog?.cancel();
    this.#watchdog = undefined;
    this.#suspectTimer?.cancel();
    this.#suspectTimer = undefined;
  }

  // ---------------------------------------------------------------- role changes

  #stepDown(newerEpoch: number): void {
    const was = this.#role;
    this.#log('warn', 'step-down', { newerEpoch, was });
    this.#emit({ type: 'step-down', epoch: this.#epoch, newerEpoch });
    // A deposed primary may hold entries the new primary never had: its state is no prefix of anyone's.
    this.#followable = false;
    this.#becomeJoining(newerEpoch);
    void was;
  }

  /** Drop primary/backup duties and copy the state from the (other) primary. `keepLog`: a dropped backup
   * that follows keeps the entries the clients forwarded. */
  #becomeJoining(epoch: number, keepLog = false): void {
    this.#cancelPrimaryTimers();
    this.#cancelBackupTimers();
    this.#probeTimer?.cancel();
    this.#probeTimer = undefined;
    this.#covering = undefined;
    this.#epoch = Math.max(this.#epoch, epoch);
    this.#setRole('joining');
    this.#answerHeldNotPrimary();
    const peer = this.#peerLink;
    this.#peerLink = undefined;
    peer?.abort();
    this.#tracker.clear();
    if (!keepLog) this.#backupLog.clear();
    this.#joinAttempt = 0;
    this.#scheduleProbe(0);
  }

  // ---------------------------------------------------------------- a dropped backup follows (docs/PROTOCOL.md, "Follower")

  /**
   * The backup stops being one (dropped, or its primary serves alone). Its state is still a prefix of the
   * primary's history, so it follows: it keeps collecting the clients' forwards (the solo primary still
   * piggybacks for it) and asks to resume from where it is — or, should that primary die meanwhile, can
   * prove it holds everything it acknowledged and take over.
   */
  #leaveBackup(epoch: number, why: string): void {
    const follow = this.#followable && epoch === this.#epoch && this.#broken !== 'no-follower-takeover';
    this.#becomeJoining(epoch, follow);
    if (follow) {
      // The drop is evidence of the primary's coverage now — unless it waited out a stall of ours.
      this.#follow = { epoch, lastConfirmAt: this.#trustsUnsolicited() ? this.#env.now() : Number.NEGATIVE_INFINITY, waiting: undefined };
      this.#log('info', 'following', { why, appliedSeq: this.#runner.appliedSeq, pending: this.#backupLog.pendingCount });
    } else {
      this.#followable = false;
    }
  }

  #stopFollowing(why: string): void {
    const f = this.#follow;
    if (f === undefined) return;
    f.waiting?.cancel();
    this.#follow = undefined;
    this.#followable = false;
    this.#backupLog.clear();
    this.#log('info', 'following-stopped', { why });
  }

  /** The solo primary said (hello, statusReply) whether it still covers us. */
  /**
   * The solo primary said whether it still covers us. `askedAt`: when we sent the status question this
   * answers (fresh evidence); undefined for an unsolicited hello (trusted only outside a stall of ours).
   */
  #confirmFollow(epoch: number, from: number | undefined, askedAt?: number): void {
    const f = this.#follow;
    if (f === undefined || this.#role !== 'joining' || epoch !== f.epoch) return;
    const at = askedAt ?? (this.#trustsUnsolicited() ? this.#env.now() : undefined);
    if (from !== undefined && from <= this.#runner.appliedSeq) {
      if (at !== undefined) f.lastConfirmAt = Math.max(f.lastConfirmAt, at);
    }
    else this.#stopFollowing(from === undefined ? 'the primary no longer covers us' : `the primary covers from ${from}, beyond our seq ${this.#runner.appliedSeq}`);
  }

  /** Every statusReply a replica gets from its peer. */
  #notePeerStatus(r: StatusReply): void {
    if (SERVING.has(r.role) && r.epoch >= this.#peerEpochSeen) {
      this.#peerSeqSeen = r.epoch > this.#peerEpochSeen ? r.appliedSeq : Math.max(this.#peerSeqSeen, r.appliedSeq);
    }
    this.#peerEpochSeen = Math.max(this.#peerEpochSeen, r.epoch);
    if (this.#covering !== undefined) this.#covering.lastReachedAt = this.#env.now();
  }

  /**
   * A process stopped longer than joinTimeoutMs (SIGSTOP, a long GC) reads messages that waited in its
   * sockets as if they were new. A solo primary may have ended its coverage meanwhile (it takes 2 ×
   * joinTimeoutMs without hearing from us), so for joinTimeoutMs after such a stall only answers to our
   * own questions count as evidence of it (#confirmFollow).
   */
  #watchStalls(): void {
    const every = Math.max(this.#cfg.flushIntervalMs, this.#bounds.joinTimeoutMs / 20);
    this.#lastTickAt = this.#env.now();
    const tick = (): void => {
      if (this.#role === 'stopped') return;
      const gap = this.#env.now() - this.#lastTickAt;
      if (this.#stalledJustNow()) this.#log('warn', 'process-stalled', { ms: Math.round(gap) });
      else if (gap > every + this.#bounds.dialTimeoutMs) this.#log('info', 'event-loop-late', { ms: Math.round(gap - every) }); // a busy or starved process: why a peer may see us silent
      this.#lastTickAt = this.#env.now();
      this.#stallTimer = this.#env.setTimer(every, tick);
    };
    this.#stallTimer = this.#env.setTimer(every, tick);
  }

  /** The stall watch has not run for joinTimeoutMs: this process was stopped (whichever callback runs
   * first after it resumes — the watch's timer or a message read from a socket — notices). */
  #stalledJustNow(): boolean {
    const now = this.#env.now();
    if (this.#lastTickAt === 0 || now - this.#lastTickAt <= this.#bounds.joinTimeoutMs) return false;
    this.#untrustedUntil = Math.max(this.#untrustedUntil, now + this.#bounds.joinTimeoutMs);
    return true;
  }

  #trustsUnsolicited(): boolean {
    this.#stalledJustNow();
    return this.#env.now() >= this.#untrustedUntil;
  }

  /**
   * The solo primary we follow is not serving (nothing listens at its address, or a restarted process
   * answers). With a recent confirmation that it covered us, wait for the clients' last forwards (the
   * forward window), then take over if nothing is missing; otherwise say so and wait for an operator.
   */
  #followerTakeover(peer: StatusReply | undefined): void {
    const f = this.#follow;
    if (f === undefined || f.waiting !== undefined) return;
    const now = this.#env.now();
    if (now - f.lastConfirmAt > this.#bounds.joinTimeoutMs) {
      this.#stopFollowing('our last confirmation from the solo primary is too old');
      return this.#blockNoPrimary(peer);
    }
    this.#log('warn', 'primary-gone', { following: f.epoch, peerRole: peer?.role ?? 'nothing listens', waitMs: this.#bounds.forwardWindowMs });
    // No need to ask again after the window: a process that died cannot serve again, and a restarted
    // one holds no state — it serves only by joining a serving replica (us) or by an operator's promote.
    f.waiting = this.#env.setTimer(this.#bounds.forwardWindowMs, () => {
      f.waiting = undefined;
      if (this.#follow === f && this.#role === 'joining') this.#completeFollowerTakeover(f);
    });
  }

  #completeFollowerTakeover(f: Following): void {
    this.#backupLog.applyReady(this.#runner, (d) => this.#onDivergence(d), true);
    const gap = this.#backupLog.beyondGap();
    if (gap.length > 0) {
      this.#stopFollowing('entries are missing');
      this.#block(`the solo primary died; the clients' forwards miss seq ${this.#runner.appliedSeq + 1} (they hold up to ${gap[gap.length - 1]!.seq})`, gap[gap.length - 1]!.seq);
      return this.#scheduleProbe(this.#retryMs());
    }
    const silenceMs = this.#env.now() - f.lastConfirmAt;
    this.#follow = undefined;
    this.#backupLog.clear();
    this.#epoch = Math.max(this.#epoch, this.#peerEpochSeen) + 1;
    this.#takeoverSeq = this.#runner.appliedSeq;
    this.#followable = false;
    this.#unblock();
    this.#joinTimer?.cancel();
    this.#joinTimer = undefined;
    this.#log('warn', 'takeover', { appliedSeq: this.#runner.appliedSeq, silenceMs, follower: true });
    this.#setRole('solo-primary');
    this.#emit({ type: 'takeover', epoch: this.#epoch, appliedSeq: this.#runner.appliedSeq, silenceMs, follower: true });
    this.#startSoloProbe();
  }

  // ---------------------------------------------------------------- blocked: an operator decides

  /** Joining with a state (or the knowledge of an epoch) and no serving peer: we cannot prove nothing is lost. */
  #blockNoPrimary(peer: StatusReply | undefined): void {
    const why =
      peer === undefined
        ? 'no serving primary: nothing listens at the peer address'
        : `no serving primary: the peer is ${peer.role} at epoch ${peer.epoch} (seq ${peer.appliedSeq})`;
    this.#block(`${why}; this replica (epoch ${this.#epoch}, seq ${this.#runner.appliedSeq}) may lack writes the last primary acknowledged`, this.#peerSeqSeen);
  }

  #block(reason: string, knownSeq: number): void {
    if (this.#broken === 'no-follower-takeover') return; // the old stall: wait silently, for good
    const haveSeq = this.#runner.appliedSeq;
    const b: BlockedStatus = { reason, haveSeq, mayLoseFrom: haveSeq + 1 };
    const upTo = Math.max(knownSeq, this.#backupLog.beyondGap().at(-1)?.seq ?? 0);
    if (upTo > haveSeq) b.mayLoseTo = upTo;
    const same = this.#blocked !== undefined && this.#blocked.reason === b.reason && this.#blocked.haveSeq === b.haveSeq;
    this.#blocked = b;
    if (same) return;
    this.#log('error', 'BLOCKED', { ...b, hint: 'this replica waits for its peer; to serve now from what it holds, accepting the loss: tandem-kv promote --accept-loss (or replica.promote({ acceptLoss: true }))' });
    this.#emit({ type: 'blocked', ...b });
  }

  #unblock(): void {
    if (this.#blocked === undefined) return;
    this.#log('info', 'unblocked', {});
    this.#blocked = undefined;
  }

  async promote(options: { acceptLoss: true }): Promise<void> {
    if (options?.acceptLoss !== true) throw new TypeError('promote needs { acceptLoss: true }: writes this replica does not hold are lost');
    if (this.#role === 'stopped') throw new StoppedError('replica stopped');
    if (SERVING.has(this.#role) || this.#listener === undefined) return;
    if (this.#role === 'backup') throw new Error('this replica is a backup: it takes over by itself when its primary fails; promote is for a replica that reports blocked');
    this.#cancelFetch();
    this.#cancelBackupTimers();
    this.#joinTimer?.cancel();
    this.#joinTimer = undefined;
    this.#follow?.waiting?.cancel();
    this.#follow = undefined;
    this.#joinLink?.abort();
    this.#joinLink = undefined;
    // What the clients forwarded applies on a state that is a prefix of that history: a backup's (or a
    // dropped backup's), or the initial one. A deposed primary's state may hold entries nobody else has.
    if (this.#followable || this.#runner.appliedSeq === 0) this.#backupLog.applyReady(this.#runner, (d) => this.#onDivergence(d), true);
    const gap = this.#backupLog.beyondGap();
    this.#backupLog.clear();
    const lostFrom = this.#runner.appliedSeq + 1;
    const lostTo = Math.max(this.#peerSeqSeen, gap.at(-1)?.seq ?? 0, this.#blocked?.mayLoseTo ?? 0);
    this.#epoch = Math.max(this.#epoch, this.#peerEpochSeen) + 1;
    this.#takeoverSeq = this.#runner.appliedSeq;
    this.#followable = false;
    this.#blocked = undefined;
    const ev: Extract<ReplicaEvent, { type: 'promoted' }> = { type: 'promoted', epoch: this.#epoch, appliedSeq: this.#runner.appliedSeq, lostFrom };
    if (lostTo >= lostFrom) ev.lostTo = lostTo;
    this.#log('error', 'PROMOTED', { appliedSeq: ev.appliedSeq, lostFrom, lostTo: ev.lostTo ?? 'unknown', note: 'an operator accepted the loss of acknowledged writes this replica does not hold' });
    this.#setRole('solo-primary');
    this.#emit(ev);
    this.#startSoloProbe();
  }

  /** An operator's connection (hello kind 'admin', authenticated like a peer): status and promote only. */
  #onAdmin(link: Link, m: Message): void {
    switch (m.t) {
      case 'status':
        link.send(this.#statusReply());
        return;
      case 'promote':
        this.#log('warn', 'promote-requested', { remote: link.conn.remoteAddress });
        void this.promote({ acceptLoss: m.acceptLoss }).then(
          () => link.send(this.#statusReply()),
          () => link.send(this.#statusReply()),
        );
        return;
      default:
        this.#violation(`${m.t} from an operator connection`);
    }
  }

  // ---------------------------------------------------------------- startup and rejoin

  #scheduleProbe(ms: number): void {
    this.#joinTimer?.cancel();
    this.#joinTimer = this.#env.setTimer(ms, () => {
      this.#joinTimer = undefined;
      this.#probe();
    });
  }

  /** Look for an active primary; join it, or decide to be primary (startup), or try again later. */
  #probe(): void {
    if (this.#role !== 'starting' && this.#role !== 'joining') return;
    if (this.#fetchCancel !== undefined) return; // a state fetch is in progress; it asks to join when done
    const attempt = ++this.#joinAttempt;
    const retryMs = this.#retryMs();
    void (async () => {
      let link = this.#joinLink && !this.#joinLink.isClosed ? this.#joinLink : undefined;
      let refused = false;
      let alive = link !== undefined;
      if (!link) {
        const r = await this.#dialPeerResult(Math.max(this.#bounds.dialTimeoutMs, 100));
        link = r.link;
        refused = r.refused;
        alive = link !== undefined || r.alive === true;
        if (link) this.#joinLink = link;
      }
      if (attempt !== this.#joinAttempt || (this.#role !== 'starting' && this.#role !== 'joining')) return;
      const askedAt = this.#env.now();
      const reply = link ? await this.#awaitStatus(link, this.#bounds.dialTimeoutMs) : undefined;
      if (reply !== undefined && reply.role === 'solo-primary') this.#confirmFollow(reply.epoch, reply.follow, askedAt);
      if (attempt !== this.#joinAttempt || (this.#role !== 'starting' && this.#role !== 'joining')) return;
      if (reply !== undefined) this.#unansweredSince = undefined;
      if (reply && SERVING.has(reply.role) && link && !link.isClosed) {
        this.#unblock();
        const f = this.#follow;
        if (f !== undefined && reply.epoch === f.epoch && reply.follow !== undefined && reply.follow <= this.#runner.appliedSeq) {
          // A dropped backup the primary still covers: resume from our own state, no transfer.
          this.#sendStateReq(link, { seq: this.#runner.appliedSeq, epoch: f.epoch });
          return;
        }
        this.#stopFollowing(f === undefined ? 'not following' : `the primary (epoch ${reply.epoch}) does not cover us`);
        this.#epoch = Math.max(this.#epoch, reply.epoch);
        const haveVerified = this.#fetched !== undefined && this.#fetched.seq === this.#runner.appliedSeq;
        if (this.#stateSync.fetch !== undefined && !haveVerified) return this.#fetchThenJoin(link);
        this.#sendStateReq(link);
        return;
      }
      const peerDown = refused || (reply !== undefined && !SERVING.has(reply.role));
      if (this.#follow !== undefined && peerDown && (reply === undefined || reply.epoch <= this.#follow.epoch)) {
        this.#followerTakeover(reply);
        this.#scheduleProbe(retryMs);
        return;
      }
      if (this.#epoch >= 1) {
        // This replica knows a service with data existed (it saw a primary of an epoch) and no serving
        // primary is there: leading a fresh state would silently lose what was acknowledged.
        if (peerDown) this.#blockNoPrimary(reply);
        else if (reply === undefined) {
          const now = this.#env.now();
          this.#unansweredSince ??= now;
          if (now - this.#unansweredSince >= this.#bounds.takeoverMs) {
            this.#block(`the peer does not answer (paused, partitioned or overloaded) for ${Math.round(now - this.#unansweredSince)} ms; this replica (epoch ${this.#epoch}, seq ${this.#runner.appliedSeq}) may lack writes it acknowledged`, this.#peerSeqSeen);
          }
        }
        this.#scheduleProbe(retryMs);
        return;
      }
      if (this.#role === 'starting' && this.#shouldLead(reply, refused, alive)) {
        void this.#becomeFirstPrimary();
        return;
      }
      if (!link && this.#role === 'starting' && this.#joinAttempt % 10 === 0) {
        this.#log('info', 'waiting-for-primary', { peer: this.#opts.peer });
      }
      this.#scheduleProbe(retryMs);
    })();
  }

  #retryMs(): number {
    return Math.max(this.#cfg.flushIntervalMs, this.#cfg.heartbeatTimeoutMs / 3);
  }

  /** At startup, with no active primary found: should this replica be the first primary? */
  #shouldLead(peer: StatusReply | undefined, refused: boolean, alive = false): boolean {
    const hint = this.#opts.roleHint ?? 'auto';
    if (hint === 'backup') return false;
    // The peer holds (or knew of) data: it must not be overrun by a fresh state; wait for it or an operator.
    if (peer !== undefined && (peer.epoch >= 1 || peer.blocked !== undefined)) return false;
    if (peer === undefined) {
      // Nothing listens there: nobody else is serving.
      if (refused) return true;
      // A process accepted the connection but does not answer (paused, busy, or it failed our
      // handshake): it may hold the only copy of the state — never start a fresh one beside it.
      if (alive) {
        this.#unansweredSince = undefined;
        return false;
      }
      // The dial itself fails (an unreachable host): nothing that answers is there. Lead only after a
      // whole takeover period of that (a host that comes back holds no state: a restart is fresh).
      const now = this.#env.now();
      this.#unansweredSince ??= now;
      return now - this.#unansweredSince >= this.#bounds.takeoverMs;
    }
    if (peer.role !== 'starting') return false; // a backup (its primary is us, restarted) or a joiner: wait
    const peerHint = peer.roleHint ?? 'auto';
    if (hint === 'primary' && peerHint !== 'primary') return true;
    if (hint === 'auto' && peerHint === 'backup') return true;
    if (hint === 'auto' && peerHint === 'primary') return false;
    return this.#nodeId < peer.nodeId;
  }

  async #becomeFirstPrimary(): Promise<void> {
    const witness = this.#opts.witness;
    if (witness) {
      const ok = await Promise.resolve(witness.mayServeAlone({ nodeId: this.#nodeId, epoch: Math.max(1, this.#epoch), reason: 'startup' })).catch(() => false);
      if (!ok) return this.#scheduleProbe(this.#cfg.heartbeatTimeoutMs);
    }
    if (this.#role !== 'starting') return;
    this.#joinLink?.abort();
    this.#joinLink = undefined;
    this.#epoch = Math.max(1, this.#epoch);
    this.#setRole('solo-primary');
    this.#startSoloProbe();
  }

  /** A delta admission's entries continue exactly at `seq`, in order, in its epoch. */
  #deltaEntriesFollow(snap: StateSnap): boolean {
    const entries = snap.entries ?? [];
    for (let i = 0; i < entries.length; i++) if (entries[i]!.seq !== snap.seq + 1 + i || entries[i]!.epoch !== snap.epoch) return false;
    return true;
  }

  #onStateSnap(link: Link, snap: StateSnap): void {
    if (this.#role !== 'joining' && this.#role !== 'starting') return;
    if (snap.epoch < this.#epoch) {
      this.#log('warn', 'stale-snapshot', { snapEpoch: snap.epoch });
      return;
    }
    this.#cancelFetch(); // a copy arrived: a fetch still running (a stale one) must not touch the state now
    const fetched = this.#fetched;
    this.#fetched = undefined;
    const resumed = snap.delta === true && this.#follow !== undefined && this.#follow.epoch === snap.epoch && this.#runner.appliedSeq === snap.seq;
    if (snap.delta === true && snap.entries !== undefined && !this.#deltaEntriesFollow(snap)) {
      this.#log('warn', 'unexpected-delta-join', { seq: snap.seq, entries: snap.entries.length, note: 'entries do not follow the seq' });
      this.#scheduleProbe(this.#cfg.heartbeatTimeoutMs);
      return;
    }
    if (resumed) {
      // A dropped backup resumed from its own state: the entries after it come with the flushes.
      this.#follow?.waiting?.cancel();
      this.#follow = undefined;
    } else if (snap.delta === true) {
      // A join from the state we streamed: nothing to install, but it must be exactly the one we offered.
      if (fetched === undefined || fetched.seq !== snap.seq || this.#runner.appliedSeq !== snap.seq) {
        this.#log('warn', 'unexpected-delta-join', { seq: snap.seq, appliedSeq: this.#runner.appliedSeq, offered: fetched?.seq });
        this.#runner.reset();
        this.#scheduleProbe(this.#cfg.heartbeatTimeoutMs);
        return;
      }
    } else {
      try {
        const installed = this.#stateSync.install({ seq: snap.seq, version: snap.version, snapshot: snap.snapshot, dedup: snap.dedup });
        this.#runner.restore(installed as unknown as Snapshot);
      } catch (err) {
        this.#log('error', 'state-restore-failed', { error: (err as Error).message });
        this.#runner.reset();
        this.#scheduleProbe(this.#cfg.heartbeatTimeoutMs);
        return;
      }
    }
    // The writes the primary acknowledged after `seq` came with the admission: hold them before we are a
    // backup (our first ack then covers them).
    for (const e of snap.entries ?? []) {
      const outcome = this.#runner.apply(e);
      if (outcome.digest !== e.digest) this.#onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
    }
    this.#joinTimer?.cancel();
    this.#joinTimer = undefined;
    this.#joinAttempt++;
    this.#joinLink = undefined; // the primary now uses this connection for its flushes
    this.#epoch = snap.epoch;
    this.#backupLog.retainAfter(this.#runner.appliedSeq, snap.epoch); // forwards collected while joining, beyond what we hold
    this.#lastFlushAt = this.#env.now();
    this.#log('info', 'joined', { seq: snap.seq, from: link.remote, mode: resumed ? 'resume' : snap.delta === true ? 'delta' : 'copy' });
    this.#stopFollowing('joined');
    this.#followable = true;
    this.#unblock();
    this.#setRole('backup');
    // Start the primary's ack clock for us: we hold everything up to the snapshot now.
    link.send({ t: 'flushAck', epoch: this.#epoch, flushId: 0, upToSeq: this.#runner.appliedSeq, role: 'backup' });
    this.#armWatchdog();
  }
}
