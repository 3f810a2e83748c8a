/**
 * A primary without a backup (docs/PROTOCOL.md, "primary → solo-primary" and "Follower"): it tells a
 * faulty backup it is dropped and holds requests until the drop is acknowledged (or the backup is proven
 * gone, or takeoverMs passed since its last acknowledged flush); then it serves alone, keeps probing its
 * peer (a paused backup learns it was dropped, a newer primary deposes it), and covers the dropped
 * replica — it keeps piggybacking its log from the backup's acknowledged seq so the dropped replica can
 * follow by the clients' forwards — until the coverage ends.
 */
import type { TimerHandle } from './env.js';
import type { Link } from './link.js';
import type { Drop, DropAck } from './messages.js';
import type { ReplicaContext } from './replica-context.js';

/** A primary telling its faulty backup it is dropped (see beginDrop). */
interface DropPhase {
  link: Link | undefined;
  timer: TimerHandle | undefined;
  dialing: boolean;
}

/** Coverage of a dropped backup: the log is kept from `from`; `endingSince`: coverage ends W after this
 * (no longer confirmed meanwhile). */
interface Coverage {
  from: number;
  lastReachedAt: number;
  endingSince: number | undefined;
}

export class Solo {
  readonly #ctx: ReplicaContext;
  /**
   * The backup was declared faulty and told so (`drop`); until it acknowledges (or is proven dead, or
   * takeoverMs passed since its last acknowledged flush) requests are held, so a backup that did not
   * hear about it cannot take over while this replica answers alone.
   */
  #dropping: DropPhase | undefined;
  #covering: Coverage | undefined;
  #probeTimer: TimerHandle | undefined;
  #probeLink: Link | undefined;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  get dropping(): boolean {
    return this.#dropping !== undefined;
  }

  get covering(): boolean {
    return this.#covering !== undefined;
  }

  /** The seq the coverage started from (status()). */
  get coveringFromSeq(): number | undefined {
    return this.#covering?.from;
  }

  // ---------------------------------------------------------------- dropping the backup

  beginDrop(reason: string): void {
    const ctx = this.#ctx;
    const primary = ctx.roles.primary;
    primary.stopFlushTimer();
    const link = primary.peerLink;
    primary.peerLink = undefined;
    const now = ctx.env.now();
    const tracker = primary.tracker;
    const wait = tracker.lastAckedSentAt + ctx.bounds.takeoverMs - now;
    // Keep the log from the backup's acknowledged seq: serving alone, this replica still piggybacks it,
    // so the dropped backup — if it lives — can follow by the clients' forwards ("Follower").
    tracker.stopFlushing();
    tracker.leaseUntil = 0;
    this.#covering = { from: tracker.ackedSeq, lastReachedAt: now, endingSince: undefined };
    const d: DropPhase = { link: link && !link.isClosed ? link : undefined, timer: undefined, dialing: false };
    this.#dropping = d;
    ctx.log('info', 'dropping-backup', { reason, maxWaitMs: Math.max(0, wait) });
    if (wait <= 0) {
      // The backup has been silent for a whole takeover period: were it alive and still a backup, it
      // would have asked us (takeover probe) before taking over. Tell it anyway; serve now.
      this.#sendDrop();
      this.#goSolo('backup silent for takeoverMs');
      return;
    }
    d.timer = ctx.env.setTimer(wait, () => this.#goSolo('drop not acknowledged within takeoverMs of the last ack'));
    this.#sendDrop();
  }

  /** Send the drop on the current link, or dial the peer for it; a refused dial proves it gone. */
  #sendDrop(): void {
    const ctx = this.#ctx;
    const d = this.#dropping;
    const drop: Drop = { t: 'drop', epoch: ctx.epoch, reason: 'declared faulty' };
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
    void ctx.dialPeerResult(ctx.dialBudgetMs).then(({ link, refused }) => {
      d.dialing = false;
      if (this.#dropping !== d) {
        link?.abort();
        return;
      }
      if (link) {
        d.link = link;
        link.send(drop);
      } else if (refused) {
        this.endCoverage('the dropped replica is gone (dial refused)');
        this.#goSolo('backup unreachable (dial refused)');
      } else {
        // Unreachable for another reason: try again shortly (the deadline timer bounds the wait).
        ctx.env.setTimer(ctx.cfg.ackTimeoutMs, () => this.#dropping === d && this.#sendDrop());
      }
    });
  }

  onDropAck(link: Link, ack: DropAck): void {
    const ctx = this.#ctx;
    if (ack.epoch > ctx.epoch) {
      ctx.transitions.stepDown(ack.epoch);
      return;
    }
    if (this.#dropping !== undefined) this.#goSolo('backup acknowledged the drop');
    void link.conn.close('drop acknowledged').catch(() => undefined);
  }

  /** End the drop phase (if any) and serve alone; the drop link stays open so a slow backup still reads the drop. */
  #goSolo(why: string): void {
    const ctx = this.#ctx;
    const d = this.#dropping;
    if (d === undefined || ctx.role !== 'primary') return;
    this.#dropping = undefined;
    d.timer?.cancel();
    ctx.log('warn', 'solo', { why });
    ctx.transitions.setRole('solo-primary');
    // Answer what waited: sync replies (their entries are ours alone now) and held requests.
    ctx.roles.primary.releaseSyncWaitersAll();
    ctx.roles.primary.releaseHeld();
    this.startProbe();
  }

  /** Leave the drop phase without serving (step-down, or the dropped backup asks to re-join). */
  cancelDrop(): void {
    const d = this.#dropping;
    if (d === undefined) return;
    this.#dropping = undefined;
    d.timer?.cancel();
  }

  // ---------------------------------------------------------------- serving alone: probing the peer

  /** A solo primary keeps looking for its peer: a paused backup learns it was dropped; a newer primary deposes us. */
  startProbe(): void {
    const ctx = this.#ctx;
    this.#probeTimer?.cancel();
    const interval = Math.max(ctx.cfg.flushIntervalMs, ctx.cfg.heartbeatTimeoutMs / 2);
    const tick = (): void => {
      this.#probeTimer = undefined;
      if (ctx.role !== 'solo-primary') return;
      const link = this.#probeLink;
      if (link && !link.isClosed) {
        link.send(ctx.hello());
        link.send({ t: 'status' });
        this.#probeTimer = ctx.env.setTimer(interval, tick);
        return;
      }
      void ctx.dialPeerResult(ctx.dialBudgetMs).then(({ link: l, refused }) => {
        if (l) {
          if (ctx.role !== 'solo-primary') return void l.abort();
          this.#probeLink = l;
          l.send({ t: 'status' });
        } else if (refused) {
          // Nothing listens at the peer's address: a dropped replica there is gone; its restart holds no state.
          this.endCoverage('the dropped replica is gone (dial refused)');
        }
        this.#tickCoverage();
        if (ctx.role === 'solo-primary') this.#probeTimer = ctx.env.setTimer(interval, tick);
      });
    };
    this.#probeTimer = ctx.env.setTimer(interval, tick);
  }

  /** A backup was admitted on `link`: no more probing (and no probe connection besides it). */
  stopProbe(link?: Link): void {
    this.#probeTimer?.cancel();
    this.#probeTimer = undefined;
    if (this.#probeLink && this.#probeLink !== link) this.#probeLink.abort();
    this.#probeLink = undefined;
  }

  cancelProbeTimer(): void {
    this.#probeTimer?.cancel();
    this.#probeTimer = undefined;
  }

  onProbeLinkClosed(link: Link): void {
    if (link === this.#probeLink) this.#probeLink = undefined;
  }

  /** The drop's connection closed: send the drop again (on a new one). */
  onDropLinkClosed(link: Link): void {
    const d = this.#dropping;
    if (d !== undefined && link === d.link) {
      d.link = undefined;
      this.#sendDrop();
    }
  }

  // ---------------------------------------------------------------- covering a dropped backup

  /** The seq from which this solo primary piggybacks for its dropped backup (confirmed in hello/status). */
  coveringFrom(): number | undefined {
    const c = this.#covering;
    return c === undefined || c.endingSince !== undefined || this.#ctx.role !== 'solo-primary' ? undefined : c.from;
  }

  /** The peer answered a status question (the dropped replica is reachable). */
  notePeerReached(): void {
    if (this.#covering !== undefined) this.#covering.lastReachedAt = this.#ctx.env.now();
  }

  /**
   * Stop confirming the coverage now, end it coverageEndMs later (docs/PROTOCOL.md, "Follower"): a
   * dropped replica takes over only with a confirmation younger than coverageEndMs, so it cannot rely on
   * a coverage this replica ended.
   */
  endCoverageSoon(why: string): void {
    const ctx = this.#ctx;
    const c = this.#covering;
    if (c === undefined || c.endingSince !== undefined) return;
    c.endingSince = ctx.env.now();
    ctx.log('warn', 'coverage-ending', {
      why,
      fromSeq: c.from,
      entries: ctx.roles.primary.tracker.log.size,
      inMs: ctx.bounds.joinTimeoutMs,
    });
  }

  #tickCoverage(): void {
    const ctx = this.#ctx;
    const c = this.#covering;
    if (c === undefined) return;
    const now = ctx.env.now();
    if (
      c.endingSince === undefined &&
      now - c.lastReachedAt >= ctx.bounds.joinTimeoutMs &&
      ctx.roles.primary.tracker.log.size >= ctx.cfg.flushMaxEntries
    ) {
      this.endCoverageSoon(`the dropped replica has not answered for ${Math.round(now - c.lastReachedAt)} ms`);
    }
    if (c.endingSince !== undefined && now - c.endingSince >= ctx.bounds.joinTimeoutMs) this.endCoverage('coverage period over');
  }

  endCoverage(why: string): void {
    const ctx = this.#ctx;
    if (this.#covering === undefined) return;
    ctx.log('info', 'coverage-ended', { why, fromSeq: this.#covering.from });
    this.#covering = undefined;
    if (ctx.role === 'solo-primary') ctx.roles.primary.tracker.clear();
  }

  /** A backup again (or a full join, or a step-down): nobody follows any more. */
  forgetCoverage(): void {
    this.#covering = undefined;
  }
}
