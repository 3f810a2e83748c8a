/**
 * The backup's duties (docs/PROTOCOL.md, "The normal path" 4–5 and "Takeover"): take entries from the
 * primary's flushes and the clients' forwards (MACs verified), apply them in seq order (BackupLog),
 * acknowledge, and watch the heartbeat. On silence it waits the forward window, asks the primary whether
 * it is alive, and — when it is not — takes over: applies every entry it can order, raises the epoch and
 * serves alone.
 */
import type { CloseInfo } from '@tandem/transport';
import { verifyEntryMac, verifyPackedEntries } from './auth.js';
import { decodeEntries } from './codec.js';
import type { TimerHandle } from './env.js';
import { invariant } from './errors.js';
import type { Link } from './link.js';
import type { Entry, Flush, Fwd, Req } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';

/** Entries a backup applies per turn of the event loop (see applyPending). */
const APPLY_BATCH = 256;
/** Takeover probes a slow primary may answer in a row (each counts as a heartbeat) before the backup re-joins. */
const MAX_SLOW_PRIMARY_PROBES = 3;
/** Client requests a backup holds while it suspects its primary is gone (then serves them, or tells notPrimary). */
const MAX_HELD_REQUESTS = 1024;

/** Dials of the primary's address before the fast path gives up (none refused, none greeted). */
const CONFIRM_DIALS = 3;
/** Pause between them. */
const CONFIRM_REDIAL_MS = 2;

/** The process-crash fast path under way (docs/PROTOCOL.md, "Fast path for a dead process"). */
interface ProcessCrashCheck {
  phase: 'dialing' | 'grace';
  timer: TimerHandle | undefined;
  /** When the primary's connection closed. */
  lostAt: number;
}

export class Backup {
  readonly #ctx: ReplicaContext;
  #drainTimer: TimerHandle | undefined;
  /** Takeover probes a primary answered as still our primary (reset by each flush). */
  #slowPrimaryProbes = 0;
  #lastFlushAt = 0;
  #watchdog: TimerHandle | undefined;
  #suspectTimer: TimerHandle | undefined;
  /** The backup is asking its primary whether it is alive before taking over. */
  #probingPrimary = false;
  /** The connection the primary's last flush arrived on: its reset or close starts the fast path. */
  #primaryLink: Link | undefined;
  #crashCheck: ProcessCrashCheck | undefined;
  /** Client requests held while the primary is suspected (the crash check, or heartbeat silence until the
   * takeover): served right after the takeover, else told notPrimary when the suspicion ends. */
  #held: { link: Link; req: Req }[] = [];

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  /** When the last flush arrived (or the join completed). */
  get lastFlushAt(): number {
    return this.#lastFlushAt;
  }

  /** A joiner became backup now: its heartbeat clock starts; `link`: the primary flushes on it. */
  noteJoined(link?: Link): void {
    this.#lastFlushAt = this.#ctx.env.now();
    this.#primaryLink = link;
  }

  // ---------------------------------------------------------------- entries

  onFlush(link: Link, flush: Flush): void {
    const ctx = this.#ctx;
    if (flush.epoch < ctx.epoch || SERVING.has(ctx.role)) {
      if (flush.epoch > ctx.epoch) {
        ctx.transitions.stepDown(flush.epoch);
        return;
      }
      // A deposed or duplicate primary: tell it our epoch so it steps down.
      link.send({ t: 'flushAck', epoch: ctx.epoch, flushId: flush.flushId, upToSeq: ctx.runner.appliedSeq, role: ctx.role });
      if (flush.epoch === ctx.epoch) ctx.transitions.observeEpoch(flush.epoch, 'primary', link);
      return;
    }
    if (ctx.role !== 'backup') return; // joining/starting: the primary will get our stateReq
    ctx.learnEpoch(flush.epoch);
    invariant(ctx.epoch >= 1, 'backup-epoch', () => `a backup at epoch ${ctx.epoch}`);
    this.#lastFlushAt = ctx.env.now();
    this.#slowPrimaryProbes = 0;
    this.#primaryLink = link;
    // A flush: a primary is alive, whatever closed before.
    if (this.#crashCheck !== undefined) this.#endCrashCheck('a flush arrived');
    if (this.#suspectTimer) {
      this.#suspectTimer.cancel();
      this.#suspectTimer = undefined;
      ctx.log('info', 'primary-alive-again', {});
    }
    this.#releaseHeld();
    this.#acceptEntries(flush.entries, true);
    link.send({ t: 'flushAck', epoch: ctx.epoch, flushId: flush.flushId, upToSeq: ctx.runner.appliedSeq, role: 'backup' });
  }

  onForward(link: Link, fwd: Fwd): void {
    const ctx = this.#ctx;
    const ring = ctx.security.macRing;
    // A backup collects forwards; so does a dropped backup following the solo primary, and a joiner that
    // knows the primary's epoch: it acknowledges these forwards, so it must not throw them away — the
    // entries after the state it will install are state information the primary acknowledged.
    const collecting = ctx.role === 'backup' || ((ctx.role === 'joining' || ctx.role === 'starting') && ctx.epoch >= 1);
    let entries = fwd.entries;
    const forgedBefore = ctx.forgedForwards;
    if (ring !== undefined && entries.length > 0) {
      entries = entries.filter((e) => verifyEntryMac(ring, e, e.mac) || this.#forged(link, [e.seq], 'entry MAC does not verify'));
    }
    if (fwd.packed !== undefined) {
      entries = entries.slice();
      for (const p of fwd.packed) {
        // Skip lists the backup already applied (the primary's flush got here first): no decoding.
        if (collecting && p.upToSeq <= ctx.runner.appliedSeq) continue;
        if (ring !== undefined && !verifyPackedEntries(ring, p.upToSeq, p.bytes, p.mac)) {
          this.#forged(
            link,
            [p.upToSeq],
            p.mac === undefined ? 'no MAC on forwarded entries' : 'the MAC of forwarded entries does not verify',
          );
          continue;
        }
        for (const e of decodeEntries(p.bytes)) entries.push(e); // throws ProtocolViolationError
      }
    }
    const m = ctx.metrics;
    if (m?.forward !== undefined) {
      m.forward('received');
      if (ctx.forgedForwards !== forgedBefore) m.forward('rejected');
    }
    if (collecting) {
      if (this.#acceptEntries(entries, false) > 0) m?.forward?.('applied');
    } else if (SERVING.has(ctx.role)) {
      ctx.roles.primary.checkLateEntries(entries);
    }
    link.send({ t: 'fwdAck', fwdId: fwd.fwdId, epoch: ctx.epoch, role: ctx.role });
  }

  /** Returns how many entries were stored (new, kept for in-order apply). */
  #acceptEntries(entries: readonly Entry[], fromPrimary: boolean): number {
    const ctx = this.#ctx;
    if (ctx.faults.acceptEntries(entries, ctx.runner, (d) => ctx.onDivergence(d))) return 0;
    let stored = 0;
    for (const e of entries) {
      const r = ctx.backupLog.offer(e, ctx.runner.appliedSeq, ctx.epoch, fromPrimary);
      if (r === 'stored') stored++;
      else if (r === 'stale-epoch') ctx.log('warn', 'stale-entry', { seq: e.seq, entryEpoch: e.epoch });
      else if (r === 'full') ctx.log('warn', 'backup-log-full', { seq: e.seq });
    }
    if (stored > 0 || fromPrimary) this.applyPending();
    return stored;
  }

  /**
   * Apply what is ready, at most APPLY_BATCH entries per turn of the event loop: a backup catching up a
   * long run (a delta join, a resume) keeps reading and acknowledging meanwhile, so its primary does not
   * take it for silent (docs/PROTOCOL.md, "Failure detector").
   */
  applyPending(): void {
    const ctx = this.#ctx;
    const applied = ctx.backupLog.applyReady(ctx.runner, (d) => ctx.onDivergence(d), false, APPLY_BATCH);
    if (ctx.role === 'backup' && ctx.faults.appliesInOrder) ctx.backupLog.assertAhead(ctx.runner.appliedSeq);
    if (applied < APPLY_BATCH || this.#drainTimer !== undefined) return;
    this.#drainTimer = ctx.env.setTimer(0, () => {
      this.#drainTimer = undefined;
      if (ctx.role === 'backup' || (ctx.role === 'joining' && ctx.roles.follower.following)) this.applyPending();
    });
  }

  /** A client forwarded state information the primary did not authenticate: report it, never apply it. */
  #forged(link: Link, seqs: number[], reason: string): false {
    const ctx = this.#ctx;
    ctx.forgedForwards++;
    const remote = link.conn.remoteAddress;
    const clientId = link.hello?.nodeId;
    ctx.rateLog.log('forged-forward', (suppressed) =>
      ctx.log('error', 'FORGED-FORWARD', {
        remote,
        clientId,
        seqs,
        reason,
        suppressed,
        hint: 'a client forwarded state information the primary did not sequence; not applied',
      }),
    );
    ctx.emit({ type: 'forged-forward', remote, seqs, reason });
    return false;
  }

  // ---------------------------------------------------------------- watchdog and takeover

  armWatchdog(): void {
    const ctx = this.#ctx;
    this.#watchdog?.cancel();
    const wait = Math.max(0, this.#lastFlushAt + ctx.cfg.heartbeatTimeoutMs - ctx.env.now());
    this.#watchdog = ctx.env.setTimer(wait, () => this.#onWatchdog());
  }

  #onWatchdog(): void {
    const ctx = this.#ctx;
    this.#watchdog = undefined;
    if (ctx.role !== 'backup') return;
    const now = ctx.env.now();
    const silence = now - this.#lastFlushAt;
    // Compare against the same deadline armWatchdog computed (not `silence < timeout`): floating-point
    // rounding could otherwise make the two disagree and re-arm a 0 ms timer at the same instant.
    if (now < this.#lastFlushAt + ctx.cfg.heartbeatTimeoutMs) return this.armWatchdog();
    if (!ctx.faults.waitsForForwards()) return this.#onSuspectExpired();
    if (this.#suspectTimer === undefined && !this.#probingPrimary) {
      ctx.log('warn', 'primary-silent', { silenceMs: silence, forwardWindowMs: ctx.bounds.forwardWindowMs });
      // Wait for in-flight client forwards before taking over (still accepting them meanwhile).
      this.#suspectTimer = ctx.env.setTimer(ctx.bounds.forwardWindowMs, () => this.#onSuspectExpired());
    }
    this.#armWatchdogLater();
  }

  /** While suspecting, keep a watchdog running so a resumed primary's flush cancels the suspicion. */
  #armWatchdogLater(): void {
    this.#watchdog = this.#ctx.env.setTimer(this.#ctx.cfg.heartbeatTimeoutMs, () => this.#onWatchdog());
  }

  #onSuspectExpired(): void {
    const ctx = this.#ctx;
    this.#suspectTimer = undefined;
    if (ctx.role !== 'backup' || this.#probingPrimary) return;
    const now = ctx.env.now();
    if (now < this.#lastFlushAt + ctx.cfg.heartbeatTimeoutMs) return;
    // Before taking over, ask the primary itself: one that answers is alive (it may have dropped us
    // without our hearing it) — then re-join instead. A crashed primary refuses the dial at once; a
    // paused one stays silent for takeoverProbeMs.
    this.#probingPrimary = true;
    void ctx.probePeerStatus(ctx.bounds.takeoverProbeMs).then((reply) => {
      this.#probingPrimary = false;
      if (ctx.role !== 'backup') return;
      if (ctx.env.now() < this.#lastFlushAt + ctx.cfg.heartbeatTimeoutMs) return; // a flush came: the watchdog runs
      if (
        reply !== undefined &&
        reply.role === 'primary' &&
        reply.epoch === ctx.epoch &&
        this.#slowPrimaryProbes < MAX_SLOW_PRIMARY_PROBES
      ) {
        // Our primary is alive and still has a backup — us: it is slow (a busy machine), not gone. Its
        // answer counts as a heartbeat; a few in a row without a flush and we join again (below).
        this.#slowPrimaryProbes++;
        ctx.log('info', 'primary-slow', { silenceMs: Math.round(ctx.env.now() - this.#lastFlushAt), probes: this.#slowPrimaryProbes });
        this.#lastFlushAt = ctx.env.now();
        if (this.#crashCheck === undefined) this.#releaseHeld();
        this.armWatchdog();
        return;
      }
      if (reply !== undefined && SERVING.has(reply.role) && reply.epoch >= ctx.epoch) {
        ctx.log('warn', 'takeover-aborted', { why: 'the primary answered', primaryRole: reply.role, primaryEpoch: reply.epoch });
        ctx.roles.follower.leaveBackup(reply.epoch, `the primary answered as ${reply.role}`);
        return;
      }
      this.#takeoverIfAllowed();
    });
  }

  // ---------------------------------------------------------------- fast path for a dead process

  /**
   * A connection closed. When it is the one our primary flushes on and the primary (or the network)
   * ended it, ask whether the primary's process is gone: dial its address. Nothing listening there (a
   * refused dial) proves it dead — it sends no reply any more — so after processCrashGraceMs every reply
   * it ever sent has reached its client and that client's forward has reached us: take over then. A dial
   * that connects (or times out) proves nothing: the heartbeat detector stays in charge.
   */
  onLinkClosed(link: Link, info: CloseInfo): void {
    if (link !== this.#primaryLink) return;
    this.#primaryLink = undefined;
    const ctx = this.#ctx;
    if (ctx.role !== 'backup' || info.by !== 'remote' || !ctx.cfg.fastFailover || this.#crashCheck !== undefined) return;
    const check: ProcessCrashCheck = { phase: 'dialing', timer: undefined, lostAt: ctx.env.now() };
    this.#crashCheck = check;
    ctx.log('info', 'primary-link-lost', { reason: info.reason });
    if (!ctx.faults.confirmsProcessCrash()) return this.#takeoverIfAllowed(); // (a broken variant: any reset is a crash)
    this.#dialToConfirm(check, 1);
  }

  /**
   * Dial the primary's address. Refused, nothing listening: the process is gone. Connected and greeted
   * (the handshake completed): it lives. Anything else — connected and then reset before the handshake
   * completed (a dying process whose listener the kernel has not closed yet), a handshake refused, a
   * timeout — proves nothing: ask again shortly, a few times, then leave it to the heartbeat detector.
   */
  #dialToConfirm(check: ProcessCrashCheck, attempt: number): void {
    const ctx = this.#ctx;
    void ctx.dialPeerResult(ctx.dialBudgetMs).then(({ link: probe, refused }) => {
      if (probe !== undefined) void probe.conn.close('process-crash check: alive').catch(() => undefined);
      if (this.#crashCheck !== check) return;
      if (ctx.role !== 'backup') return this.#endCrashCheck('no longer backup');
      if (refused) return this.#processGone(check);
      // Something listens and answers (a live primary after a network reset, or a restarted process): the
      // heartbeat detector decides.
      if (probe !== undefined) return this.#endCrashCheck('the primary accepts connections');
      if (attempt >= CONFIRM_DIALS) return this.#endCrashCheck('the dial was not refused');
      check.timer = ctx.env.setTimer(CONFIRM_REDIAL_MS, () => {
        check.timer = undefined;
        if (this.#crashCheck === check && ctx.role === 'backup') this.#dialToConfirm(check, attempt + 1);
      });
    });
  }

  #processGone(check: ProcessCrashCheck): void {
    const ctx = this.#ctx;
    const graceMs = ctx.faults.processCrashGraceMs(ctx.bounds.processCrashGraceMs);
    check.phase = 'grace';
    ctx.log('warn', 'primary-process-gone', { graceMs, sinceLostMs: Math.round(ctx.env.now() - check.lostAt) });
    check.timer = ctx.env.setTimer(graceMs, () => {
      check.timer = undefined;
      if (this.#crashCheck !== check || ctx.role !== 'backup') return;
      this.#takeoverIfAllowed();
    });
  }

  /** Stop the fast path; requests held meanwhile are told notPrimary (the client re-sends elsewhere). */
  #endCrashCheck(why: string): void {
    const ctx = this.#ctx;
    const check = this.#crashCheck;
    if (check === undefined) return;
    check.timer?.cancel();
    this.#crashCheck = undefined;
    ctx.log('info', 'process-crash-check-ended', { why });
    // Still suspecting by heartbeat silence: the requests keep waiting for that takeover.
    if (!this.#suspecting || ctx.role !== 'backup') this.#releaseHeld();
  }

  /** The heartbeat detector suspects the primary: silent, waiting out the forward window or probing it. */
  get #suspecting(): boolean {
    return this.#suspectTimer !== undefined || this.#probingPrimary;
  }

  /**
   * While the primary is suspected (the fast path's crash check, or heartbeat silence: the forward window
   * and the probe), a client request waits here for the takeover instead of being told notPrimary, so the
   * new primary answers it at once rather than at the client's next retransmission (requestTimeoutMs
   * later). Holding changes nothing: it is served as if it arrived right after the takeover. True: held.
   */
  holdRequest(link: Link, req: Req): boolean {
    if ((this.#crashCheck === undefined && !this.#suspecting) || this.#ctx.role !== 'backup') return false;
    // A retransmission (the client re-sends to both replicas) replaces the copy already held.
    const i = this.#held.findIndex((h) => h.link === link && h.req.requestId === req.requestId);
    if (i >= 0) this.#held[i] = { link, req };
    else if (this.#held.length >= MAX_HELD_REQUESTS) return false;
    else this.#held.push({ link, req });
    return true;
  }

  /** The suspicion ended without a takeover: the held requests are told notPrimary (the client re-sends). */
  #releaseHeld(): void {
    const ctx = this.#ctx;
    const held = this.#held;
    this.#held = [];
    for (const h of held)
      if (!h.link.isClosed) h.link.send({ t: 'notPrimary', requestId: h.req.requestId, epoch: ctx.epoch, role: ctx.role });
  }

  /** Serving now: answer the requests held during the crash check. */
  #serveHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) if (!h.link.isClosed) this.#ctx.roles.primary.onRequest(h.link, h.req);
  }

  #takeoverIfAllowed(): void {
    const ctx = this.#ctx;
    if (!ctx.witness.present) return this.#takeover(ctx.env.now() - this.#lastFlushAt);
    const epoch = ctx.epoch;
    void ctx.witness
      .ask('takeover', epoch + 1, () => ctx.role === 'backup' && ctx.epoch === epoch)
      .then((answer) => {
        if (ctx.role !== 'backup') return;
        if (answer === 'granted') this.#takeover(ctx.env.now() - this.#lastFlushAt);
        else this.#witnessRefused();
      });
  }

  #witnessRefused(): void {
    this.#endCrashCheck('the witness refused a takeover');
    this.#releaseHeld();
    this.armWatchdog();
  }

  #takeover(silenceMs: number): void {
    const ctx = this.#ctx;
    invariant(ctx.role === 'backup', 'takeover-role', () => `a takeover by a ${ctx.role}`);
    const processCrash = this.#crashCheck?.phase === 'grace';
    const held = this.#held;
    this.#held = [];
    this.cancelTimers();
    this.#held = held;
    // Everything the clients forwarded that can be ordered is applied now (the P-crash-after-reply case).
    ctx.backupLog.applyReady(ctx.runner, (d) => ctx.onDivergence(d), true);
    if (ctx.faults.appliesInOrder) ctx.backupLog.assertAhead(ctx.runner.appliedSeq);
    const gap = ctx.backupLog.beyondGap();
    ctx.backupLog.clear();
    ctx.newLeaderEpoch();
    ctx.takeoverSeq = ctx.runner.appliedSeq;
    if (gap.length > 0)
      ctx.reportLost(
        gap.map((e) => e.seq),
        `missing seq ${ctx.runner.appliedSeq + 1} at takeover`,
      );
    ctx.log('warn', 'takeover', { appliedSeq: ctx.runner.appliedSeq, silenceMs, ...(processCrash ? { processCrash } : {}) });
    ctx.followable = false;
    ctx.transitions.setRole('solo-primary');
    ctx.emit({ type: 'takeover', epoch: ctx.epoch, appliedSeq: ctx.runner.appliedSeq, silenceMs });
    ctx.roles.solo.startProbe();
    this.#serveHeld();
  }

  cancelTimers(): void {
    this.#watchdog?.cancel();
    this.#watchdog = undefined;
    this.#suspectTimer?.cancel();
    this.#suspectTimer = undefined;
    this.#endCrashCheck('the backup role ended');
    this.#releaseHeld();
    this.#primaryLink = undefined;
  }

  /** The replica stops: no catching up any more. */
  stop(): void {
    this.#drainTimer?.cancel();
  }
}
