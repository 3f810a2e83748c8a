/**
 * A dropped backup follows its solo primary (docs/PROTOCOL.md, "Follower"): role `joining`, state kept,
 * collecting the clients' forwards. It resumes as backup from its own state when the primary still covers
 * it, or — when that primary dies and a recent confirmation says it covered us — waits the forward window
 * and takes over if nothing is missing (else it is blocked, recovery.ts). A stall watch tells messages
 * that waited out a stall of this process from evidence of the present.
 */
import type { TimerHandle } from './env.js';
import type { Link } from './link.js';
import type { Drop, StatusReply } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';

/** A dropped backup following its solo primary. */
interface Following {
  epoch: number;
  /** Since when we know the primary covers us (its answer to our question, or fresh unsolicited news). */
  lastConfirmAt: number;
  /** The forward window after the primary was found gone. */
  waiting: TimerHandle | undefined;
  /** The witness (if any) granted this takeover. */
  granted?: boolean;
}

export class Follower {
  readonly #ctx: ReplicaContext;
  #follow: Following | undefined;
  /** Until then, messages read now may have waited out a stall of this process (SIGSTOP, a long GC):
   * they prove nothing about the present (see watchStalls). */
  #untrustedUntil = 0;
  #stallTimer: TimerHandle | undefined;
  /** When the stall watch last ran (see watchStalls). */
  #lastTickAt = 0;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  get following(): boolean {
    return this.#follow !== undefined;
  }

  /** The epoch of the solo primary we follow. */
  get epoch(): number | undefined {
    return this.#follow?.epoch;
  }

  // ---------------------------------------------------------------- dropped by the primary

  onDrop(link: Link, drop: Drop): void {
    const ctx = this.#ctx;
    if (drop.epoch < ctx.epoch) {
      // A deposed primary: our ack carries the newer epoch, so it steps down.
      link.send({ t: 'dropAck', epoch: ctx.epoch });
      return;
    }
    if (SERVING.has(ctx.role)) {
      ctx.transitions.observeEpoch(drop.epoch, 'primary', link);
      if (SERVING.has(ctx.role)) return;
    }
    link.send({ t: 'dropAck', epoch: drop.epoch });
    void link.conn.close('dropped').catch(() => undefined);
    ctx.roles.joiner.forgetFetched(); // a joiner told to stream again (or a dropped backup) fetches a fresh state
    const role = ctx.role;
    if (role === 'backup' || role === 'joining' || role === 'starting') {
      ctx.log('warn', 'dropped-by-primary', { primaryEpoch: drop.epoch, reason: drop.reason });
      if (role === 'starting') {
        ctx.learnEpoch(drop.epoch);
        ctx.roles.joiner.scheduleProbe(0);
      } else if (role === 'backup') {
        this.leaveBackup(drop.epoch, 'dropped');
      } else {
        // A joiner told to join otherwise (a resume the primary cannot serve, a delta to stream again).
        this.stop('the primary asks for a state transfer');
        ctx.transitions.becomeJoining(drop.epoch);
      }
    }
  }

  /**
   * The backup stops being one (dropped, or its primary serves alone). Its state is still a prefix of the
   * primary's history, so it follows: it keeps collecting the clients' forwards (the solo primary still
   * piggybacks for it) and asks to resume from where it is — or, should that primary die meanwhile, can
   * prove it holds everything it acknowledged and take over.
   */
  leaveBackup(epoch: number, why: string): void {
    const ctx = this.#ctx;
    const follow = ctx.followable && epoch === ctx.epoch && ctx.faults.follows();
    ctx.transitions.becomeJoining(epoch, follow);
    if (follow) {
      // The drop is evidence of the primary's coverage now — unless it waited out a stall of ours.
      this.#follow = { epoch, lastConfirmAt: this.#trustsUnsolicited() ? ctx.env.now() : Number.NEGATIVE_INFINITY, waiting: undefined };
      ctx.log('info', 'following', { why, appliedSeq: ctx.runner.appliedSeq, pending: ctx.backupLog.pendingCount });
    } else {
      ctx.followable = false;
    }
  }

  /** Stop following (the forwards collected are dropped). */
  stop(why: string): void {
    const ctx = this.#ctx;
    const f = this.#follow;
    if (f === undefined) return;
    f.waiting?.cancel();
    this.#follow = undefined;
    ctx.followable = false;
    ctx.backupLog.clear();
    ctx.log('info', 'following-stopped', { why });
  }

  /** Forget the follow without touching the forwards (a resume completed, a promote). */
  end(): void {
    this.#follow?.waiting?.cancel();
    this.#follow = undefined;
  }

  /**
   * The solo primary said (hello, statusReply) whether it still covers us. `askedAt`: when we sent the
   * status question this answers (fresh evidence); undefined for an unsolicited hello (trusted only
   * outside a stall of ours).
   */
  confirm(epoch: number, from: number | undefined, askedAt?: number): void {
    const ctx = this.#ctx;
    const f = this.#follow;
    if (f === undefined || ctx.role !== 'joining' || epoch !== f.epoch) return;
    const at = askedAt ?? (this.#trustsUnsolicited() ? ctx.env.now() : undefined);
    if (from !== undefined && from <= ctx.runner.appliedSeq) {
      if (at !== undefined) f.lastConfirmAt = Math.max(f.lastConfirmAt, at);
    } else
      this.stop(
        from === undefined ? 'the primary no longer covers us' : `the primary covers from ${from}, beyond our seq ${ctx.runner.appliedSeq}`,
      );
  }

  /** A serving peer answered our probe: may we resume from our own state (it still covers us)? */
  mayResume(reply: StatusReply): boolean {
    const f = this.#follow;
    return f !== undefined && reply.epoch === f.epoch && reply.follow !== undefined && reply.follow <= this.#ctx.runner.appliedSeq;
  }

  // ---------------------------------------------------------------- the stall watch

  /**
   * A process stopped longer than joinTimeoutMs (SIGSTOP, a long GC) reads messages that waited in its
   * sockets as if they were new. A solo primary may have ended its coverage meanwhile (it takes 2 ×
   * joinTimeoutMs without hearing from us), so for joinTimeoutMs after such a stall only answers to our
   * own questions count as evidence of it (confirm).
   */
  watchStalls(): void {
    const ctx = this.#ctx;
    const every = Math.max(ctx.cfg.flushIntervalMs, ctx.bounds.joinTimeoutMs / 20);
    this.#lastTickAt = ctx.env.now();
    const tick = (): void => {
      if (ctx.role === 'stopped') return;
      const gap = ctx.env.now() - this.#lastTickAt;
      if (this.#stalledJustNow()) ctx.log('warn', 'process-stalled', { ms: Math.round(gap) });
      else if (gap > every + ctx.bounds.dialTimeoutMs) ctx.log('info', 'event-loop-late', { ms: Math.round(gap - every) }); // a busy or starved process: why a peer may see us silent
      this.#lastTickAt = ctx.env.now();
      this.#stallTimer = ctx.env.setTimer(every, tick);
    };
    this.#stallTimer = ctx.env.setTimer(every, tick);
  }

  /** The stall watch has not run for joinTimeoutMs: this process was stopped (whichever callback runs
   * first after it resumes — the watch's timer or a message read from a socket — notices). */
  #stalledJustNow(): boolean {
    const ctx = this.#ctx;
    const now = ctx.env.now();
    if (this.#lastTickAt === 0 || now - this.#lastTickAt <= ctx.bounds.joinTimeoutMs) return false;
    this.#untrustedUntil = Math.max(this.#untrustedUntil, now + ctx.bounds.joinTimeoutMs);
    return true;
  }

  #trustsUnsolicited(): boolean {
    this.#stalledJustNow();
    return this.#ctx.env.now() >= this.#untrustedUntil;
  }

  // ---------------------------------------------------------------- the follower's takeover

  /**
   * The solo primary we follow is not serving (nothing listens at its address, or a restarted process
   * answers). With a recent confirmation that it covered us, wait for the clients' last forwards (the
   * forward window), then take over if nothing is missing; otherwise say so and wait for an operator.
   */
  takeover(peer: StatusReply | undefined): void {
    const ctx = this.#ctx;
    const f = this.#follow;
    if (f === undefined || f.waiting !== undefined) return;
    const now = ctx.env.now();
    if (now - f.lastConfirmAt > ctx.bounds.joinTimeoutMs) {
      this.stop('our last confirmation from the solo primary is too old');
      return ctx.roles.recovery.blockNoPrimary(peer);
    }
    ctx.log('warn', 'primary-gone', { following: f.epoch, peerRole: peer?.role ?? 'nothing listens', waitMs: ctx.bounds.forwardWindowMs });
    // No need to ask again after the window: a process that died cannot serve again, and a restarted
    // one holds no state — it serves only by joining a serving replica (us) or by an operator's promote.
    f.waiting = ctx.env.setTimer(ctx.bounds.forwardWindowMs, () => {
      f.waiting = undefined;
      if (this.#follow === f && ctx.role === 'joining') this.#completeTakeover(f);
    });
  }

  #completeTakeover(f: Following): void {
    const ctx = this.#ctx;
    if (ctx.witness.present && !f.granted) {
      // The dead solo primary held the witness's grant: it is ours once its lease expired.
      const wanted = (): boolean => this.#follow === f && ctx.role === 'joining' && f.waiting === undefined;
      void ctx.witness.ask('takeover', Math.max(ctx.peerEpochSeen, ctx.epoch) + 1, wanted).then((answer) => {
        if (!wanted()) return;
        if (answer === 'granted') {
          f.granted = true;
          return this.#completeTakeover(f);
        }
        f.waiting = ctx.env.setTimer(ctx.retryMs(), () => {
          f.waiting = undefined;
          if (this.#follow === f && ctx.role === 'joining') this.#completeTakeover(f);
        });
      });
      return;
    }
    ctx.backupLog.applyReady(ctx.runner, (d) => ctx.onDivergence(d), true);
    const gap = ctx.backupLog.beyondGap();
    if (gap.length > 0) {
      ctx.witness.release();
      this.stop('entries are missing');
      ctx.roles.recovery.block(
        `the solo primary died; the clients' forwards miss seq ${ctx.runner.appliedSeq + 1} (they hold up to ${gap[gap.length - 1]!.seq})`,
        gap[gap.length - 1]!.seq,
      );
      return ctx.roles.joiner.scheduleProbe(ctx.retryMs());
    }
    const silenceMs = ctx.env.now() - f.lastConfirmAt;
    this.#follow = undefined;
    ctx.backupLog.clear();
    ctx.newLeaderEpoch(ctx.peerEpochSeen);
    ctx.takeoverSeq = ctx.runner.appliedSeq;
    ctx.followable = false;
    ctx.roles.recovery.unblock();
    ctx.roles.joiner.cancelProbe();
    ctx.log('warn', 'takeover', { appliedSeq: ctx.runner.appliedSeq, silenceMs, follower: true });
    ctx.transitions.setRole('solo-primary');
    ctx.emit({ type: 'takeover', epoch: ctx.epoch, appliedSeq: ctx.runner.appliedSeq, silenceMs, follower: true });
    ctx.roles.solo.startProbe();
  }

  /** The replica stops. */
  shutdown(): void {
    this.#follow?.waiting?.cancel();
    this.#stallTimer?.cancel();
  }
}
