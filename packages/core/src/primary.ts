/**
 * The primary's duties (docs/PROTOCOL.md, "The normal path" and "Lease"): sequence each request, apply
 * it, reply at once with the state information (piggybacked entries once per client connection), and
 * flush the unacknowledged entries to the backup every flushIntervalMs or flushMaxEntries entries (the
 * flush doubles as heartbeat). It answers only while the backup's flushAcks renew its lease; requests
 * that arrive without one (or under flow control, or while a backup is dropped) are held. A backup that
 * stays silent is declared faulty after one more turn of the event loop — the drop and serving alone are
 * solo.ts.
 */
import type { CloseInfo } from '@tandem/transport';
import { entryMac, packedEntriesMac } from './auth.js';
import { AdmissionHold, DEFAULT_HOLD_TIMEOUT_MS } from './admission-hold.js';
import { isExpired, type DedupRecord } from './dedup.js';
import { invariant } from './errors.js';
import { FlushTracker } from './flush-tracker.js';
import type { Link } from './link.js';
import type { Entry, FlushAck, Rep, Req } from './messages.js';
import type { ReplicaRequestOutcome } from './metrics.js';
import { SERVING, type ReplicaContext } from './replica-context.js';
import { drawSeed } from './service.js';
import type { TimerHandle } from './env.js';

/** Requests held by a primary whose lease lapsed, answered when it is renewed (or notPrimary). */
const MAX_HELD_REQUESTS = 1024;

interface SyncWaiter {
  seq: number;
  link: Link;
  rep: Rep;
}

/**
 * 'entries' piggyback, per client connection: the highest seq whose entry already went out in a reply
 * on it, and the log generation that mark belongs to (a join or a drop restarts the log and voids it).
 * Each entry is sent once per connection; a new connection starts from the backup's acknowledged seq.
 */
interface PiggybackCursor {
  generation: number;
  upTo: number;
}

export class Primary {
  readonly #ctx: ReplicaContext;
  /** The log of entries the backup has not acknowledged, flush bookkeeping and the lease. */
  readonly tracker: FlushTracker;
  /** The connection to the backup (the joiner's own, since its stateReq). */
  peerLink: Link | undefined;
  #peerDialing = false;
  #flushTimer: TimerHandle | undefined;
  #silenceCheck: TimerHandle | undefined;
  #held: { link: Link; req: Req; at: number }[] = [];
  #syncWaiters: SyncWaiter[] = [];
  /** Owned here, not by the link: nothing else reads or moves a connection's mark. */
  readonly #cursors = new WeakMap<Link, PiggybackCursor>();
  /** Requests the admission hook (ReplicaHooks.admit) holds. */
  readonly #admissionHeld: AdmissionHold;
  /** Replies an afterApply hook delays, by seq: a retransmission of such a request waits as well. */
  readonly #gates = new Map<number, Promise<void>>();

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
    const b = ctx.bounds;
    this.tracker = new FlushTracker(ctx.cfg, b.leaseMs, b.joinTimeoutMs, b.peerFaultyMs);
    this.#admissionHeld = new AdmissionHold(ctx.env, MAX_HELD_REQUESTS);
  }

  // ---------------------------------------------------------------- requests

  /** `at`: when the request arrived (env.now()); a held request keeps its arrival time for the metrics. */
  onRequest(link: Link, req: Req, at = this.#ctx.metrics === undefined ? 0 : this.#ctx.env.now()): void {
    const ctx = this.#ctx;
    const role = ctx.role;
    if (role !== 'primary' && role !== 'solo-primary') {
      link.send({ t: 'notPrimary', requestId: req.requestId, epoch: ctx.epoch, role });
      ctx.metrics?.request?.('not-primary', ctx.env.now() - at);
      return;
    }
    const dropping = ctx.roles.solo.dropping;
    if (role === 'primary' && (dropping || !this.tracker.leaseValid(ctx.env.now()) || this.tracker.flowControlled)) {
      // Lease lapsed: we may have been paused while the backup took over. Hold until it is renewed.
      // Dropping the backup: hold until it acknowledged the drop (or is proven gone).
      // Flow control: the backup lags by maxUnackedEntries / 2 — wait for it rather than evict it.
      if (this.#held.length < MAX_HELD_REQUESTS) this.#held.push({ link, req, at });
      if (!dropping) this.ensureFlushSoon();
      return;
    }
    if (role === 'solo-primary' && !ctx.witness.holds()) {
      // Serving alone on a witness's grant that may have lapsed (docs/PARTITIONS.md): the peer may be
      // granted once it expires, so hold until the witness renews it — or step down when it refuses.
      if (this.#held.length < MAX_HELD_REQUESTS) this.#held.push({ link, req, at });
      ctx.witness.renew(() => this.releaseHeld());
      return;
    }
    const outcome = this.#serve(link, req);
    ctx.metrics?.request?.(outcome, ctx.env.now() - at);
    if (this.#admissionHeld.size > 0) this.#reofferAdmissionHeld();
  }

  #serve(link: Link, req: Req): ReplicaRequestOutcome {
    const ctx = this.#ctx;
    const runner = ctx.runner;
    const t = this.tracker;
    invariant(SERVING.has(ctx.role) && ctx.epoch >= 1, 'serving-role', () => `serving a request as ${ctx.role} at epoch ${ctx.epoch}`);
    invariant(
      ctx.role !== 'primary' || t.ackedSeq <= runner.appliedSeq,
      'acked-le-applied',
      () => `the backup acknowledged seq ${t.ackedSeq}, beyond the primary's ${runner.appliedSeq}`,
    );
    const dup = runner.dedup.get(req.clientId, req.requestId);
    if (dup !== undefined && ctx.faults.answersFromDedup()) {
      const rep = this.#repFromRecord(req.requestId, dup);
      this.#authenticate(rep, req);
      this.#sendReply(link, rep, this.#gates.get(dup.seq)); // a delayed reply stays delayed
      return 'duplicate';
    }
    const parsed = runner.parseRequest(req.body);
    if (!parsed.ok) {
      link.send({
        t: 'rep',
        requestId: req.requestId,
        epoch: ctx.epoch,
        seq: 0,
        digest: '',
        time: 0,
        seed: 0,
        error: { name: 'InvalidRequestError', message: parsed.message },
      });
      return 'invalid';
    }
    const hooks = ctx.opts.hooks;
    if (hooks?.admit !== undefined && !hooks.admit({ clientId: req.clientId, requestId: req.requestId, body: req.body }, runner.state)) {
      this.#admissionHeld.hold(link, req, hooks.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS, () => ctx.epoch);
      return 'held';
    }
    const entry: Entry = {
      seq: runner.appliedSeq + 1,
      epoch: ctx.epoch,
      clientId: req.clientId,
      requestId: req.requestId,
      body: req.body,
      time: Math.max(ctx.env.wallClock(), runner.lastTime),
      seed: drawSeed(ctx.env.random),
      digest: '',
    };
    const outcome = runner.applyParsed(entry, parsed.request);
    entry.digest = outcome.digest;
    ctx.roles.host.notifyApplied(entry);
    const gate = hooks?.afterApply?.(entry, runner.state);
    if (gate !== undefined) {
      const done = (): void => void this.#gates.delete(entry.seq);
      this.#gates.set(entry.seq, gate.then(done, done));
    }
    const rep: Rep = {
      t: 'rep',
      requestId: req.requestId,
      epoch: ctx.epoch,
      seq: entry.seq,
      digest: entry.digest,
      time: entry.time,
      seed: entry.seed,
    };
    if (outcome.error === undefined) rep.body = outcome.body;
    else rep.error = outcome.error;
    const result: ReplicaRequestOutcome = outcome.error === undefined ? 'ok' : 'app-error';

    const covering = ctx.role === 'solo-primary' && ctx.roles.solo.covering;
    if (ctx.role === 'solo-primary' && !covering) {
      rep.replicated = true; // no backup exists: nothing for the client to forward
      this.#sendReply(link, rep, gate);
      return result;
    }
    t.append(entry);
    if (ctx.cfg.replyMode === 'sync' && !covering) {
      rep.replicated = true;
      this.#syncWaiters.push({ seq: entry.seq, link, rep });
      this.flush();
      return result;
    }
    if (ctx.cfg.piggyback === 'entries') rep.entries = this.#piggyback(link, entry.seq, req.resync === true);
    this.#authenticate(rep, req);
    this.#sendReply(link, rep, gate); // the reply goes out first; everything below is bookkeeping
    if (covering) {
      if (t.log.size >= ctx.cfg.maxUnackedEntries)
        ctx.roles.solo.endCoverageSoon('the dropped replica has not come back within maxUnackedEntries entries');
      return result;
    }
    if (t.overflowing) {
      this.peerFaulty(`backup has not acknowledged ${t.log.size} entries`);
    } else if (t.countFlushDue) {
      this.flush();
    }
    return result;
  }

  /** Send a reply now, or once the afterApply hook's promise settled (FIG. 4a: after a callee answered). */
  #sendReply(link: Link, rep: Rep, gate: Promise<void> | undefined): void {
    if (gate === undefined) {
      link.send(rep);
      return;
    }
    const send = (): void => {
      if (!link.isClosed) link.send(rep);
    };
    gate.then(send, send);
  }

  /** Offer the requests the admission hook holds again (after an apply). */
  #reofferAdmissionHeld(): void {
    const ctx = this.#ctx;
    const admit = ctx.opts.hooks?.admit;
    this.#admissionHeld.reoffer(
      (req) => admit === undefined || admit({ clientId: req.clientId, requestId: req.requestId, body: req.body }, ctx.runner.state),
      (link, req) => {
        const before = ctx.runner.appliedSeq;
        this.onRequest(link, req);
        return ctx.runner.appliedSeq !== before;
      },
      () => SERVING.has(ctx.role),
    );
  }

  /**
   * The entries a reply on `link` carries: from the connection's mark, or — on its first reply, after a
   * log restart, or when the client asks (resync) — from the backup's acknowledged seq, up to `seq`.
   */
  #piggyback(link: Link, seq: number, resync: boolean): Uint8Array {
    const t = this.tracker;
    let from = t.ackedSeq;
    const cursor = this.#cursors.get(link);
    const current = cursor !== undefined && cursor.generation === t.generation;
    if (current)
      invariant(seq > cursor.upTo, 'piggyback-mark', () => `reply seq ${seq} on a connection already carried up to ${cursor.upTo}`);
    if (current && !resync && cursor.upTo > from) from = cursor.upTo;
    const bytes = t.log.packedRange(from);
    if (cursor === undefined) this.#cursors.set(link, { generation: t.generation, upTo: seq });
    else {
      cursor.generation = t.generation;
      cursor.upTo = seq;
    }
    return bytes;
  }

  #repFromRecord(requestId: number, rec: DedupRecord): Rep {
    const ctx = this.#ctx;
    const t = this.tracker;
    const rep: Rep = { t: 'rep', requestId, epoch: ctx.epoch, seq: rec.seq, digest: rec.digest, time: rec.time, seed: rec.seed };
    if (rec.epoch !== ctx.epoch) rep.entryEpoch = rec.epoch;
    if (rec.error !== undefined) rep.error = rec.error;
    else if (isExpired(rec)) {
      rep.error = {
        name: 'ReplyExpiredError',
        message: `request ${requestId} was already applied (seq ${rec.seq}); its reply is no longer kept (dedupMaxBytes)`,
      };
    } else rep.body = rec.body;
    if ((ctx.role === 'solo-primary' && !ctx.roles.solo.covering) || rec.seq <= t.ackedSeq) rep.replicated = true;
    else if (ctx.cfg.piggyback === 'entries') rep.entries = t.log.packedRange(t.ackedSeq, rec.seq);
    return rep;
  }

  /**
   * With a cluster key, the state information a reply carries gets the primary's MAC, so the backup can
   * tell what this primary sequenced from what a client made up (docs/SECURITY.md).
   */
  #authenticate(rep: Rep, req: Req): void {
    const ring = this.#ctx.security.macRing;
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

  /** After a takeover, an entry of the old epoch beyond what we applied is a reply we cannot reflect. */
  checkLateEntries(entries: readonly Entry[]): void {
    const ctx = this.#ctx;
    const lost = entries.filter((e) => e.epoch < ctx.epoch && e.seq > ctx.takeoverSeq && ctx.takeoverSeq > 0);
    if (lost.length > 0)
      ctx.reportLost(
        lost.map((e) => e.seq),
        'forward arrived after takeover',
      );
  }

  // ---------------------------------------------------------------- flush, ack, lease

  startDuties(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = this.#ctx.env.setTimer(this.#ctx.cfg.flushIntervalMs, () => this.#onFlushTimer());
  }

  #onFlushTimer(): void {
    this.#flushTimer = undefined;
    if (this.#ctx.role !== 'primary') return;
    this.flush();
  }

  ensureFlushSoon(): void {
    if (this.#flushTimer === undefined && this.#ctx.role === 'primary') this.startDuties();
  }

  /** No flushes any more (the backup is being dropped). */
  stopFlushTimer(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
  }

  /**
   * Send the unflushed entries (none = heartbeat). If the oldest flush is unacknowledged for
   * ackTimeoutMs, resend everything unacknowledged; after maxRetransmits such resends, the peer is faulty.
   */
  flush(): void {
    const ctx = this.#ctx;
    if (ctx.role !== 'primary' || ctx.roles.solo.dropping) return;
    const now = ctx.env.now();
    this.#flushTimer?.cancel();
    this.#flushTimer = ctx.env.setTimer(ctx.cfg.flushIntervalMs, () => this.#onFlushTimer());
    const link = this.peerLink;
    const plan = this.tracker.plan(now);
    if (plan.kind === 'faulty') {
      this.#confirmSilence();
      return;
    }
    if (plan.kind === 'join-timeout') {
      this.peerFaulty(`the joiner installed no state copy within ${ctx.bounds.joinTimeoutMs} ms`);
      return;
    }
    if (plan.retransmit) ctx.log('debug', 'flush-retransmit', { attempt: this.tracker.retransmits, fromSeq: this.tracker.ackedSeq });
    if (link === undefined || link.isClosed) {
      this.#redialPeer();
      return;
    }
    if (link.send({ t: 'flush', epoch: ctx.epoch, flushId: plan.flushId, entries: plan.entries })) this.tracker.sent(plan.flushId, now);
  }

  /**
   * The backup looks silent: look again after one turn of the event loop, so acknowledgements that
   * arrived while this process was busy are read first — a primary that was itself slow must not
   * blame its backup for it (docs/PROTOCOL.md, "Failure detector").
   */
  #confirmSilence(): void {
    const ctx = this.#ctx;
    if (this.#silenceCheck !== undefined) return;
    this.#silenceCheck = ctx.env.setTimer(0, () => {
      this.#silenceCheck = undefined;
      if (ctx.role !== 'primary' || ctx.roles.solo.dropping) return;
      const now = ctx.env.now();
      if (!this.tracker.silentTooLong(now)) {
        this.ensureFlushSoon();
        return;
      }
      this.peerFaulty(
        `no acknowledgement for ${Math.round(now - this.tracker.lastAckAt)} ms and ${ctx.cfg.maxRetransmits} retransmissions`,
      );
    });
  }

  onFlushAck(link: Link, ack: FlushAck): void {
    const ctx = this.#ctx;
    if (ack.epoch > ctx.epoch) {
      ctx.transitions.stepDown(ack.epoch);
      return;
    }
    if (ctx.role !== 'primary' || ack.epoch < ctx.epoch || ack.role !== 'backup') return;
    if (link !== this.peerLink) return;
    const t = this.tracker;
    // Only a forged or broken peer acknowledges what this primary never sequenced.
    if (ack.upToSeq > ctx.runner.appliedSeq)
      ctx.violation(`flushAck up to seq ${ack.upToSeq}, beyond this primary's ${ctx.runner.appliedSeq}`);
    if (t.awaitingJoinAck && ack.upToSeq < t.ackedSeq) {
      // It installed an older copy than the one we keep entries for: the gap cannot be filled.
      this.peerFaulty(`the joiner installed seq ${ack.upToSeq}, older than the copy at ${t.ackedSeq}`);
      return;
    }
    t.acked(ack, ctx.env.now());
    if (t.lastAckRttMs >= 0) ctx.metrics?.flushRtt?.(t.lastAckRttMs);
    invariant(
      t.ackedSeq <= ctx.runner.appliedSeq,
      'acked-le-applied',
      () => `the backup acknowledged seq ${t.ackedSeq}, beyond the primary's ${ctx.runner.appliedSeq}`,
    );
    if (this.#syncWaiters.length > 0) this.#releaseSyncWaiters();
    if (this.#held.length > 0 && t.leaseValid(ctx.env.now()) && !t.flowControlled) this.releaseHeld();
  }

  #releaseSyncWaiters(): void {
    let i = 0;
    const w = this.#syncWaiters;
    while (i < w.length && w[i]!.seq <= this.tracker.ackedSeq) {
      w[i]!.link.send(w[i]!.rep);
      i++;
    }
    if (i > 0) this.#syncWaiters = w.slice(i);
  }

  /** A backup is ours again (admitted): answer held requests if the lease allows. */
  releaseHeldIfLeased(): void {
    if (this.#held.length > 0 && this.tracker.leaseValid(this.#ctx.env.now())) this.releaseHeld();
  }

  releaseHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) if (!h.link.isClosed) this.onRequest(h.link, h.req, h.at);
  }

  /** Serving alone now: send the sync replies that waited (their entries are ours alone). */
  releaseSyncWaitersAll(): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w.link.send(w.rep);
  }

  #answerHeldNotPrimary(): void {
    const ctx = this.#ctx;
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      h.link.send({ t: 'notPrimary', requestId: h.req.requestId, epoch: ctx.epoch, role: ctx.role });
      ctx.metrics?.request?.('not-primary', ctx.env.now() - h.at);
    }
    this.#syncWaiters = [];
    this.#admissionHeld.release((link, req) => link.send({ t: 'notPrimary', requestId: req.requestId, epoch: ctx.epoch, role: ctx.role }));
  }

  #redialPeer(): void {
    const ctx = this.#ctx;
    if (this.#peerDialing || ctx.role !== 'primary' || ctx.roles.solo.dropping) return;
    this.#peerDialing = true;
    void ctx.dialPeerResult(ctx.dialBudgetMs).then(({ link }) => {
      this.#peerDialing = false;
      if (ctx.role !== 'primary' || ctx.roles.solo.dropping) {
        link?.abort();
        return;
      }
      if (link === undefined) {
        this.peerFaulty('peer unreachable (dial failed)');
        return;
      }
      this.peerLink = link;
      this.tracker.resendAll(); // a new connection: resend everything unacknowledged
      this.flush();
    });
  }

  /**
   * The backup is gone (or too slow): ask the witness, if any, then drop it (solo.ts) — or step down
   * when the witness says no.
   */
  peerFaulty(reason: string): void {
    const ctx = this.#ctx;
    if (ctx.role !== 'primary' || ctx.roles.solo.dropping) return;
    const proceed = (): void => {
      if (ctx.role !== 'primary' || ctx.roles.solo.dropping) return;
      ctx.log('warn', 'peer-faulty', { reason, unacked: this.tracker.log.size });
      ctx.emit({ type: 'peer-faulty', reason });
      ctx.roles.solo.beginDrop(reason);
    };
    if (!ctx.witness.present) return proceed();
    this.cancelTimers();
    ctx.witness.beforeDrop(() => this.peerFaulty(reason), proceed);
  }

  /** A joiner becomes our backup from a state at `seq` (delta: the entries after it, kept for it). */
  adoptBackup(link: Link, seq: number, delta: readonly Entry[] | undefined): void {
    const old = this.peerLink;
    this.peerLink = link;
    if (old && old !== link) old.abort();
    this.tracker.reset(seq, this.#ctx.env.now(), true);
    if (delta !== undefined) for (const e of delta) this.tracker.append(e);
  }

  onLinkClosed(link: Link, info: CloseInfo): void {
    if (link !== this.peerLink) return;
    const ctx = this.#ctx;
    this.peerLink = undefined;
    if (ctx.role === 'primary' && !ctx.roles.solo.dropping) {
      ctx.log('warn', 'peer-link-closed', { reason: info.reason });
      this.#redialPeer();
    }
  }

  cancelTimers(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    this.#silenceCheck?.cancel();
    this.#silenceCheck = undefined;
    this.#ctx.witness.cancelRetry();
    this.#ctx.roles.solo.cancelDrop();
    this.#admissionHeld.cancel();
  }

  /** Leaving every serving role (step-down, a drop): no duties, held requests told notPrimary, the log
   * and the backup's connection gone. Called after the role changed to joining. */
  leave(): void {
    this.#answerHeldNotPrimary();
    const peer = this.peerLink;
    this.peerLink = undefined;
    peer?.abort();
    this.tracker.clear();
  }
}
