/**
 * Starting and joining (docs/PROTOCOL.md, "States and transitions"): look for an active primary (probe),
 * then join it — with a state streamed by the StateSync strategy first (state-fetch.ts) or the
 * whole-state copy — and install what arrives (`stateSnap`) to become its backup; or, at startup with no
 * active primary, decide to be the first primary; or, knowing data existed and finding no serving peer,
 * follow (follower.ts) or report blocked (recovery.ts).
 */
import type { StateFetchResult } from './api.js';
import type { TimerHandle } from './env.js';
import { invariant } from './errors.js';
import type { Link } from './link.js';
import type { StateReq, StateSnap, StatusReply } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';
import type { Snapshot } from './service.js';
import { StateFetch } from './state-fetch.js';

export class Joiner {
  readonly #ctx: ReplicaContext;
  /** Streaming a state through the strategy before the join (StateSync.fetch). */
  readonly fetch: StateFetch;
  #joinTimer: TimerHandle | undefined;
  #joinLink: Link | undefined;
  #joinAttempt = 0;
  /** Startup: since when the peer accepted connections (or timed out) without answering `status`. */
  #unansweredSince: number | undefined;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
    this.fetch = new StateFetch(
      ctx,
      (link) => this.sendStateReq(link),
      () => this.scheduleProbe(0),
    );
  }

  // ---------------------------------------------------------------- the probe

  scheduleProbe(ms: number): void {
    this.#joinTimer?.cancel();
    this.#joinTimer = this.#ctx.env.setTimer(ms, () => {
      this.#joinTimer = undefined;
      this.probe();
    });
  }

  cancelProbe(): void {
    this.#joinTimer?.cancel();
    this.#joinTimer = undefined;
  }

  /** A new join: probe at once. */
  restart(): void {
    this.#joinAttempt = 0;
    this.scheduleProbe(0);
  }

  dropJoinLink(): void {
    this.#joinLink?.abort();
    this.#joinLink = undefined;
  }

  /** A state fetched and verified earlier is not the one to join from any more. */
  forgetFetched(): void {
    this.fetch.fetched = undefined;
  }

  cancelFetch(): void {
    this.fetch.cancel();
  }

  onLinkClosed(link: Link): void {
    if (link !== this.#joinLink) return;
    const ctx = this.#ctx;
    this.#joinLink = undefined;
    // A join in progress lost its connection (the primary went away or dropped it): probe again now.
    if ((ctx.role === 'joining' || ctx.role === 'starting') && this.#joinTimer !== undefined) this.scheduleProbe(0);
  }

  /** Look for an active primary; join it, or decide to be primary (startup), or try again later. */
  probe(): void {
    const ctx = this.#ctx;
    if (ctx.role !== 'starting' && ctx.role !== 'joining') return;
    if (this.fetch.running) return; // a state fetch is in progress; it asks to join when done
    const attempt = ++this.#joinAttempt;
    const retryMs = ctx.retryMs();
    const follower = ctx.roles.follower;
    const recovery = ctx.roles.recovery;
    void (async () => {
      let link = this.#joinLink && !this.#joinLink.isClosed ? this.#joinLink : undefined;
      let refused = false;
      let alive = link !== undefined;
      if (!link) {
        const r = await ctx.dialPeerResult(ctx.dialBudgetMs);
        link = r.link;
        refused = r.refused;
        alive = link !== undefined || r.alive === true;
        if (link) this.#joinLink = link;
      }
      if (attempt !== this.#joinAttempt || (ctx.role !== 'starting' && ctx.role !== 'joining')) return;
      const askedAt = ctx.env.now();
      const reply = link ? await ctx.awaitStatus(link, ctx.bounds.dialTimeoutMs) : undefined;
      if (reply !== undefined && reply.role === 'solo-primary') follower.confirm(reply.epoch, reply.follow, askedAt);
      if (attempt !== this.#joinAttempt || (ctx.role !== 'starting' && ctx.role !== 'joining')) return;
      if (reply !== undefined) this.#unansweredSince = undefined;
      if (reply && SERVING.has(reply.role) && link && !link.isClosed) {
        recovery.unblock();
        if (follower.mayResume(reply)) {
          // A dropped backup the primary still covers: resume from our own state, no transfer.
          this.sendStateReq(link, { seq: ctx.runner.appliedSeq, epoch: follower.epoch! });
          return;
        }
        follower.stop(!follower.following ? 'not following' : `the primary (epoch ${reply.epoch}) does not cover us`);
        ctx.learnEpoch(reply.epoch);
        if (ctx.stateSync.fetch !== undefined && !this.fetch.holdsVerified()) return this.fetch.start(link);
        this.sendStateReq(link);
        return;
      }
      const peerDown = refused || (reply !== undefined && !SERVING.has(reply.role));
      if (follower.following && peerDown && (reply === undefined || reply.epoch <= follower.epoch!)) {
        follower.takeover(reply);
        this.scheduleProbe(retryMs);
        return;
      }
      if (ctx.epoch >= 1) {
        // This replica knows a service with data existed (it saw a primary of an epoch) and no serving
        // primary is there: leading a fresh state would silently lose what was acknowledged.
        if (peerDown) recovery.blockNoPrimary(reply);
        else if (reply === undefined) {
          const now = ctx.env.now();
          this.#unansweredSince ??= now;
          if (now - this.#unansweredSince >= ctx.bounds.takeoverMs) {
            recovery.block(
              `the peer does not answer (paused, partitioned or overloaded) for ${Math.round(now - this.#unansweredSince)} ms; this replica (epoch ${ctx.epoch}, seq ${ctx.runner.appliedSeq}) may lack writes it acknowledged`,
              ctx.peerSeqSeen,
            );
          }
        }
        this.scheduleProbe(retryMs);
        return;
      }
      if (ctx.role === 'starting' && this.#shouldLead(reply, refused, alive)) {
        void this.#becomeFirstPrimary();
        return;
      }
      if (!link && ctx.role === 'starting' && this.#joinAttempt % 10 === 0) {
        ctx.log('info', 'waiting-for-primary', { peer: ctx.opts.peer });
      }
      this.scheduleProbe(retryMs);
    })();
  }

  /** At startup, with no active primary found: should this replica be the first primary? */
  #shouldLead(peer: StatusReply | undefined, refused: boolean, alive = false): boolean {
    const ctx = this.#ctx;
    const hint = ctx.opts.roleHint ?? 'auto';
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
      const now = ctx.env.now();
      this.#unansweredSince ??= now;
      return now - this.#unansweredSince >= ctx.bounds.takeoverMs;
    }
    if (peer.role !== 'starting') return false; // a backup (its primary is us, restarted) or a joiner: wait
    const peerHint = peer.roleHint ?? 'auto';
    if (hint === 'primary' && peerHint !== 'primary') return true;
    if (hint === 'auto' && peerHint === 'backup') return true;
    if (hint === 'auto' && peerHint === 'primary') return false;
    return ctx.nodeId < peer.nodeId;
  }

  async #becomeFirstPrimary(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.witness.present && (await ctx.witness.ask('startup', Math.max(1, ctx.epoch), () => ctx.role === 'starting')) !== 'granted') {
      if (ctx.role === 'starting') this.scheduleProbe(ctx.cfg.heartbeatTimeoutMs);
      return;
    }
    if (ctx.role !== 'starting') return;
    this.dropJoinLink();
    ctx.learnEpoch(1);
    ctx.transitions.setRole('solo-primary');
    ctx.roles.solo.startProbe();
  }

  // ---------------------------------------------------------------- asking to join, and the answer

  /** Ask the primary to join: from the fetched state when it is still the one we hold, else a whole copy. */
  sendStateReq(link: Link, resume?: { seq: number; epoch: number }): void {
    const ctx = this.#ctx;
    const f: StateFetchResult | undefined = this.fetch.fetched;
    const req: StateReq = { t: 'stateReq', nodeId: ctx.nodeId };
    if (resume !== undefined) req.resume = resume;
    else if (f !== undefined && f.seq === ctx.runner.appliedSeq) {
      req.haveSeq = f.seq;
      req.haveDigest = f.digest;
    }
    link.send(req);
    // The primary answers with the copy, or tells us (drop) when its join timeout passes; a closed
    // connection re-probes at once (onLinkClosed). This only covers a primary that went silent.
    this.scheduleProbe(ctx.bounds.joinTimeoutMs + ctx.bounds.dialTimeoutMs);
  }

  /** An admission's entries continue exactly at `seq`, in order, in its epoch. */
  #deltaEntriesFollow(snap: StateSnap): boolean {
    const entries = snap.entries ?? [];
    for (let i = 0; i < entries.length; i++) if (entries[i]!.seq !== snap.seq + 1 + i || entries[i]!.epoch !== snap.epoch) return false;
    return true;
  }

  onStateSnap(link: Link, snap: StateSnap): void {
    const ctx = this.#ctx;
    const runner = ctx.runner;
    const follower = ctx.roles.follower;
    if (ctx.role !== 'joining' && ctx.role !== 'starting') return;
    if (snap.epoch < ctx.epoch) {
      ctx.log('warn', 'stale-snapshot', { snapEpoch: snap.epoch });
      return;
    }
    this.fetch.cancel(); // a copy arrived: a fetch still running (a stale one) must not touch the state now
    const fetched = this.fetch.fetched;
    this.fetch.fetched = undefined;
    const resumed = snap.delta === true && follower.following && follower.epoch === snap.epoch && runner.appliedSeq === snap.seq;
    if (snap.entries !== undefined && !this.#deltaEntriesFollow(snap)) {
      ctx.log('warn', 'unexpected-delta-join', { seq: snap.seq, entries: snap.entries.length, note: 'entries do not follow the seq' });
      this.scheduleProbe(ctx.cfg.heartbeatTimeoutMs);
      return;
    }
    if (resumed) {
      // A dropped backup resumed from its own state: the entries after it come with the flushes.
      follower.end();
    } else if (snap.delta === true) {
      // A join from the state we streamed: nothing to install, but it must be exactly the one we offered.
      if (fetched === undefined || fetched.seq !== snap.seq || runner.appliedSeq !== snap.seq) {
        ctx.log('warn', 'unexpected-delta-join', { seq: snap.seq, appliedSeq: runner.appliedSeq, offered: fetched?.seq });
        runner.reset();
        this.scheduleProbe(ctx.cfg.heartbeatTimeoutMs);
        return;
      }
    } else {
      try {
        const installed = ctx.stateSync.install({ seq: snap.seq, version: snap.version, snapshot: snap.snapshot, dedup: snap.dedup });
        runner.restore(installed as unknown as Snapshot);
      } catch (err) {
        ctx.log('error', 'state-restore-failed', { error: (err as Error).message });
        runner.reset();
        this.scheduleProbe(ctx.cfg.heartbeatTimeoutMs);
        return;
      }
    }
    invariant(
      runner.appliedSeq === snap.seq,
      'joined-at-snapshot',
      () => `joined at seq ${runner.appliedSeq}, the primary's copy is at ${snap.seq}`,
    );
    // The writes the primary acknowledged after `seq` came with the admission: hold them before we are a
    // backup (our first ack then covers them).
    for (const e of snap.entries ?? []) {
      const outcome = runner.apply(e);
      if (outcome.digest !== e.digest) ctx.onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
    }
    this.cancelProbe();
    this.#joinAttempt++;
    this.#joinLink = undefined; // the primary now uses this connection for its flushes
    ctx.setEpoch(snap.epoch);
    ctx.backupLog.retainAfter(runner.appliedSeq, snap.epoch); // forwards collected while joining, beyond what we hold
    ctx.roles.backup.noteJoined(link);
    ctx.log('info', 'joined', { seq: snap.seq, from: link.remote, mode: resumed ? 'resume' : snap.delta === true ? 'delta' : 'copy' });
    follower.stop('joined');
    ctx.followable = true;
    ctx.roles.recovery.unblock();
    ctx.transitions.setRole('backup');
    // Start the primary's ack clock for us: we hold everything up to the snapshot now.
    link.send({ t: 'flushAck', epoch: ctx.epoch, flushId: 0, upToSeq: runner.appliedSeq, role: 'backup' });
    ctx.roles.backup.armWatchdog();
  }
}
