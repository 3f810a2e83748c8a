/**
 * What every role of a replica reads: its options, configuration, environment and service runner, its
 * role and epoch (changed only through the guarded setters below), counters, the peer it dials, and the
 * role objects themselves (docs/PROTOCOL.md, "The code"). One ReplicaContext per replica; the role
 * modules hold their own state and reach each other through `roles`, and role changes through
 * `transitions` (replica.ts).
 */
import type { Connection, Listener } from '@tandem/transport';
import { isTransportError } from '@tandem/transport';
import type { BlockedStatus, ReplicaEvent, ReplicaOptions, ReplicationConfig, Role, StateSync } from './api.js';
import { BackupLog, type Divergence } from './backup-log.js';
import type { DerivedTimingBounds } from './config.js';
import type { Env } from './env.js';
import { invariant, ProtocolViolationError } from './errors.js';
import { NO_FAULT_HOOKS, type FaultHooks } from './fault-hooks.js';
import { dialHandshake, type AuthenticationError, type RateLimitedLog } from './handshake.js';
import { Link, type LinkHandlers } from './link.js';
import type { Hello, StatusReply } from './messages.js';
import type { ConnectionKind, ReplicaMetricsSink } from './metrics.js';
import { statusDetail } from './status-detail.js';
import type { ResolvedSecurity } from './security.js';
import type { ServiceRunner } from './service.js';
import type { Primary } from './primary.js';
import type { Solo } from './solo.js';
import type { Backup } from './backup.js';
import type { Follower } from './follower.js';
import type { Recovery } from './recovery.js';
import type { Joiner } from './joiner.js';
import type { Admission } from './admission.js';
import type { StateSyncHost } from './state-sync-host.js';
import { WitnessGate } from './witness-gate.js';

export const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);

/** The role objects of one replica. */
export interface Roles {
  readonly primary: Primary;
  readonly solo: Solo;
  readonly backup: Backup;
  readonly follower: Follower;
  readonly recovery: Recovery;
  readonly joiner: Joiner;
  readonly admission: Admission;
  readonly host: StateSyncHost;
}

/** Role changes (implemented by the replica, replica.ts). */
export interface Transitions {
  /** Move to `role`; only the moves of docs/PROTOCOL.md ("States and transitions") are allowed. */
  setRole(role: Role): void;
  /** A newer epoch (or an equal one from a serving peer with a smaller node id) deposes this replica. */
  stepDown(newerEpoch: number): void;
  /** Drop primary/backup duties and join the (other) primary; `keepLog`: a follower keeps its forwards. */
  becomeJoining(epoch: number, keepLog?: boolean): void;
  /** A peer's epoch/role seen in any message. */
  observeEpoch(epoch: number, role: Role | undefined, link: Link): void;
}

export interface ReplicaParts {
  opts: ReplicaOptions<unknown, unknown, unknown>;
  cfg: ReplicationConfig;
  bounds: DerivedTimingBounds;
  runner: ServiceRunner<unknown, unknown, unknown>;
  stateSync: StateSync;
  security: ResolvedSecurity;
  rateLog: RateLimitedLog;
}

export class ReplicaContext {
  readonly opts: ReplicaOptions<unknown, unknown, unknown>;
  readonly cfg: ReplicationConfig;
  readonly bounds: DerivedTimingBounds;
  readonly env: Env;
  readonly runner: ServiceRunner<unknown, unknown, unknown>;
  readonly stateSync: StateSync;
  readonly nodeId: string;
  readonly security: ResolvedSecurity;
  readonly rateLog: RateLimitedLog;
  /** Entries a backup (or a follower, or a joiner that knows the epoch) collected, applied in seq order. */
  readonly backupLog: BackupLog;
  /** The optional witness, as the roles use it (witness-gate.ts). */
  readonly witness: WitnessGate;
  /** TEST ONLY hooks for deliberately broken behaviour (fault-hooks.ts); the designed protocol by default. */
  faults: FaultHooks = NO_FAULT_HOOKS;

  readonly links = new Set<Link>();
  readonly listeners = new Set<(e: ReplicaEvent) => void>();
  /** Status questions waiting for their statusReply, by link. */
  readonly statusWaiters = new Map<Link, (r: StatusReply) => void>();
  handlers!: LinkHandlers;
  roles!: Roles;
  transitions!: Transitions;

  listener: Listener | undefined;
  address: string;
  divergences = 0;
  authFailures = 0;
  forgedForwards = 0;
  /** appliedSeq when this replica last started serving as a new leader (late forwards beyond it were lost). */
  takeoverSeq = 0;
  /** This replica's state is a prefix of the history of the primary of `epoch` (it was its backup). */
  followable = false;
  /** Why this replica cannot serve and cannot prove that nothing acknowledged is lost. */
  blocked: BlockedStatus | undefined;
  /** The highest appliedSeq a serving peer of `peerEpochSeen` reported (the end of the range a promote may lose). */
  peerSeqSeen = 0;
  /** The highest epoch any peer reported. */
  peerEpochSeen = 0;
  /** Where metrics go (ReplicaOptions.metrics, or assigned later); undefined: nowhere, at no cost. */
  metrics: ReplicaMetricsSink | undefined;
  /** env.now() at start(). */
  startedAt = 0;
  /** Admitted connections open now, by kind. */
  readonly connections: Record<ConnectionKind, number> = { client: 0, peer: 0, transfer: 0, admin: 0 };

  #role: Role = 'starting';
  #epoch = 0;

  constructor(p: ReplicaParts) {
    this.opts = p.opts;
    this.cfg = p.cfg;
    this.bounds = p.bounds;
    this.env = p.opts.env;
    this.runner = p.runner;
    this.stateSync = p.stateSync;
    this.nodeId = p.opts.nodeId ?? p.opts.listen;
    this.address = p.opts.listen;
    this.security = p.security;
    this.rateLog = p.rateLog;
    this.backupLog = new BackupLog(p.cfg.maxUnackedEntries + p.cfg.flushMaxEntries);
    this.witness = new WitnessGate(this);
    this.metrics = p.opts.metrics;
  }

  /** A connection was admitted (accepted after its hello, or a dialled peer link): count it by kind. */
  connectionOpened(link: Link, kind: ConnectionKind): void {
    link.kind = kind;
    this.connections[kind]++;
    this.metrics?.connection?.(kind, 'opened');
  }

  /** A link closed: uncount it if it was counted. */
  connectionClosed(link: Link): void {
    const kind = link.kind;
    if (kind === undefined) return;
    link.kind = undefined;
    this.connections[kind]--;
    this.metrics?.connection?.(kind, 'closed');
  }

  get role(): Role {
    return this.#role;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get serving(): boolean {
    return SERVING.has(this.#role);
  }

  /** Only the replica's setRole (which checks the move) calls this. */
  assignRole(role: Role): void {
    this.#role = role;
  }

  /** Set the epoch; it never goes backwards. */
  setEpoch(epoch: number): void {
    invariant(
      Number.isInteger(epoch) && epoch >= this.#epoch,
      'epoch-monotonic',
      () => `epoch ${this.#epoch} → ${epoch} (role ${this.#role})`,
    );
    this.#epoch = epoch;
  }

  /** Learn of an epoch: max(ours, it). */
  learnEpoch(epoch: number): void {
    if (epoch > this.#epoch) this.setEpoch(epoch);
  }

  /** A replica starting to serve as a new leader (takeover, a follower's takeover, a promote): the epoch
   * after `above` (default: its own), strictly above the one it had. */
  newLeaderEpoch(above = this.#epoch): number {
    const next = Math.max(above, this.#epoch) + 1;
    invariant(next > this.#epoch, 'leader-epoch', () => `a new leader's epoch ${next} is not above ${this.#epoch}`);
    this.setEpoch(next);
    return next;
  }

  // ------------------------------------------------------------------ logs and events

  emit(event: ReplicaEvent): void {
    const m = this.metrics;
    if (m?.event !== undefined) {
      try {
        m.event(event);
      } catch (err) {
        this.log('error', 'metrics-failed', { error: (err as Error).message });
      }
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log('error', 'listener-failed', { error: (err as Error).message });
      }
    }
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.env.logger.log(level, event, { node: this.nodeId, role: this.#role, epoch: this.#epoch, ...fields });
  }

  violation(message: string): never {
    throw new ProtocolViolationError(message);
  }

  onDivergence(d: Divergence): void {
    this.divergences++;
    this.log('error', 'DIVERGENCE', {
      seq: d.seq,
      expectedDigest: d.expectedDigest,
      actualDigest: d.actualDigest,
      clientId: d.entry.clientId,
      requestId: d.entry.requestId,
      request: d.entry.body,
      hint: 'the service is not deterministic given (state, request, ctx): replies differ between primary and backup',
    });
    this.emit({ type: 'divergence', seq: d.seq, expectedDigest: d.expectedDigest, actualDigest: d.actualDigest });
  }

  /** Entries the old primary acknowledged that this replica cannot reflect. */
  reportLost(seqs: number[], why: string): void {
    this.log('error', 'LOST-ENTRIES', {
      seqs,
      why,
      hint: 'replies for these entries were sent by the old primary but cannot be ordered here',
    });
    this.emit({ type: 'lost-entries', epoch: this.#epoch, seqs });
  }

  // ------------------------------------------------------------------ what this replica tells its peer

  hello(): Hello {
    const h: Hello = {
      t: 'hello',
      kind: 'peer',
      service: this.opts.service.name,
      nodeId: this.nodeId,
      epoch: this.#epoch,
      role: this.#role,
    };
    const follow = this.roles.solo.coveringFrom();
    if (follow !== undefined) h.follow = follow;
    return h;
  }

  /** `detail`: add the operator's fields (admin connections; peers do not need them). */
  statusReply(detail = false): StatusReply {
    const r: StatusReply = {
      t: 'statusReply',
      role: this.#role,
      epoch: this.#epoch,
      appliedSeq: this.runner.appliedSeq,
      nodeId: this.nodeId,
    };
    if (this.opts.roleHint) r.roleHint = this.opts.roleHint;
    const follow = this.roles.solo.coveringFrom();
    if (follow !== undefined) r.follow = follow;
    if (this.blocked !== undefined) r.blocked = { ...this.blocked };
    if (this.witness.present) r.witness = this.witness.describe().slice(0, 512);
    if (detail) r.detail = statusDetail(this);
    return r;
  }

  /** The probe period of a joiner/starting replica. */
  retryMs(): number {
    return Math.max(this.cfg.flushIntervalMs, this.cfg.heartbeatTimeoutMs / 3);
  }

  // ------------------------------------------------------------------ dialling the peer

  /** The usual budget of a dial of the peer. */
  get dialBudgetMs(): number {
    return Math.max(this.bounds.dialTimeoutMs, 100);
  }

  /** Dial the peer and complete the handshake; `refused` says nothing listens there (the peer process is
   * gone); `alive`: something accepted the connection (a process listens there, even if it then failed
   * the handshake or never answers). */
  async dialPeerResult(timeoutMs: number): Promise<{ link: Link | undefined; refused: boolean; alive?: boolean }> {
    const startedAt = this.env.now();
    let conn: Connection;
    try {
      conn = await this.env.network.dial(this.opts.peer, {
        maxMessageSize: this.cfg.maxMessageSize,
        timeoutMs,
      });
    } catch (err) {
      // Only "nothing listens there" proves the peer process gone — not a live listener's refusal (a
      // certificate or key it rejects, its connection limit) nor an unreachable host.
      const refused = isTransportError(err, 'ConnectionRefusedError') && (err as { nothingListens?: boolean }).nothingListens === true;
      this.log('debug', 'peer-dial-failed', { error: (err as Error).message, refused });
      return { link: undefined, refused };
    }
    if (this.#role === 'stopped') {
      conn.abort();
      return { link: undefined, refused: false };
    }
    let it: AsyncIterator<Uint8Array>;
    try {
      const auth = this.security.peerRing === undefined ? undefined : { ring: this.security.peerRing };
      it = await dialHandshake(conn, this.hello(), auth, this.env, Math.max(1, startedAt + timeoutMs - this.env.now()));
    } catch (err) {
      // The peer refused us, or could not prove it holds the key: count it like a refusal here.
      const e = err as AuthenticationError;
      this.authFailures++;
      this.rateLog.log('peer-handshake', (suppressed) =>
        this.log('warn', 'peer-handshake-failed', { peer: this.opts.peer, code: e.code, error: e.message, suppressed }),
      );
      this.emit({ type: 'auth-refused', side: 'dialled', remote: this.opts.peer, code: e.code, reason: e.message });
      return { link: undefined, refused: false, alive: true };
    }
    if ((this.#role as Role) === 'stopped') {
      conn.abort();
      return { link: undefined, refused: false };
    }
    const link = new Link(conn, 'out', this.handlers, this.env.logger);
    this.links.add(link);
    this.connectionOpened(link, 'peer');
    link.start(it);
    return { link, refused: false };
  }

  /** Send `status` on a link and wait up to `timeoutMs` for the statusReply (undefined: none). */
  awaitStatus(link: Link, timeoutMs: number): Promise<StatusReply | undefined> {
    return new Promise<StatusReply | undefined>((resolve) => {
      let done = false;
      const finish = (r: StatusReply | undefined): void => {
        if (done) return;
        done = true;
        timer.cancel();
        if (this.statusWaiters.get(link) === waiter) this.statusWaiters.delete(link);
        resolve(r);
      };
      const waiter = (r: StatusReply): void => finish(r);
      const timer = this.env.setTimer(timeoutMs, () => finish(undefined));
      this.statusWaiters.set(link, waiter);
      void link.conn.closed.then(() => finish(undefined));
      if (!link.send({ t: 'status' })) finish(undefined);
    });
  }

  /** Dial the peer on a fresh connection and ask its status; undefined when no answer within `budgetMs`. */
  async probePeerStatus(budgetMs: number): Promise<StatusReply | undefined> {
    const startedAt = this.env.now();
    const { link } = await this.dialPeerResult(Math.max(1, budgetMs));
    if (link === undefined) return undefined;
    const left = Math.max(1, startedAt + budgetMs - this.env.now());
    const reply = await this.awaitStatus(link, left);
    void link.conn.close('status probe done').catch(() => undefined);
    return reply;
  }
}
