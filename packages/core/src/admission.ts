/**
 * A serving replica admits a joiner as its backup (docs/PROTOCOL.md, "joining", "the delta join" and
 * "Follower"): with the whole-state copy at its current seq; by delta, when its StateSync strategy
 * verified the joiner's streamed state and still holds every entry since; or — a dropped backup that
 * followed — by resume, with the entries after its seq from this replica's own log. From the admission
 * on, the joiner's connection carries the flushes.
 */
import type { PrimaryAttachment, StateSnapshot } from './api.js';
import { codec } from './codec.js';
import { invariant } from './errors.js';
import type { Link } from './link.js';
import type { Entry, StateReq, StateSnap } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';

export class Admission {
  readonly #ctx: ReplicaContext;
  /** Joiner links whose delta join waits for the strategy's verification. */
  readonly #deltaPending = new WeakSet<Link>();

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  /** The joiner's copy is in flight on `link` (it has not acknowledged it yet). */
  #joinInFlight(link: Link): boolean {
    const p = this.#ctx.roles.primary;
    return link === p.peerLink && this.#ctx.role === 'primary' && p.tracker.awaitingJoinAck;
  }

  onStateReq(link: Link, req: StateReq): void {
    const ctx = this.#ctx;
    if (!SERVING.has(ctx.role)) {
      link.send(ctx.statusReply());
      return;
    }
    // The same joiner asking again while its copy is in flight (it cannot have installed it: it would
    // have acknowledged): keep the join in progress rather than send a second copy.
    if (this.#joinInFlight(link)) return;
    if (req.resume !== undefined) {
      // A dropped backup that followed us: admit it from its own state with the entries our log still holds.
      const entries = this.#resumeEntries(req.resume);
      if (entries !== undefined) {
        ctx.log('info', 'resume', { joiner: req.nodeId, fromSeq: req.resume.seq, entries: entries.length });
        this.#admit(link, entries, req.nodeId, true);
      } else {
        ctx.log('info', 'resume-unavailable', {
          joiner: req.nodeId,
          fromSeq: req.resume.seq,
          epoch: req.resume.epoch,
          appliedSeq: ctx.runner.appliedSeq,
          logFrom: ctx.roles.primary.tracker.ackedSeq,
        });
        link.send({ t: 'drop', epoch: ctx.epoch, reason: 'resume unavailable: join with a state transfer' });
      }
      return;
    }
    const attachment = ctx.roles.host.attachment;
    if (
      req.haveSeq !== undefined &&
      req.haveDigest !== undefined &&
      attachment?.verifiedAt !== undefined &&
      attachment.entriesAfter !== undefined
    ) {
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
          if (!SERVING.has(ctx.role) || link.isClosed || ctx.roles.host.attachment !== attachment) return;
          if (this.#joinInFlight(link)) return;
          const delta = ok ? this.#deltaFrom(attachment, ask.haveSeq) : undefined;
          if (ok && delta === undefined) {
            // Verified, but the entries since are no longer all held (or too many): it streams again
            // (a whole copy is what streaming avoids). `drop` makes a joiner forget its fetched state.
            ctx.log('info', 'delta-unavailable', { joiner: ask.nodeId, haveSeq: ask.haveSeq, appliedSeq: ctx.runner.appliedSeq });
            link.send({ t: 'drop', epoch: ctx.epoch, reason: 'delta join unavailable: stream again' });
            return;
          }
          this.#admit(link, delta, ask.nodeId);
        });
      return;
    }
    this.#admit(link, undefined, req.nodeId);
  }

  /** `entries` continue `seq` without a hole, in this replica's epoch, up to appliedSeq. */
  #continues(entries: readonly Entry[], seq: number): boolean {
    const ctx = this.#ctx;
    if (entries.length !== ctx.runner.appliedSeq - seq) return false;
    for (let i = 0; i < entries.length; i++) if (entries[i]!.seq !== seq + 1 + i || entries[i]!.epoch !== ctx.epoch) return false;
    return true;
  }

  /** The entries after `seq` up to appliedSeq from our own log (a resume), when all held and of this epoch. */
  #resumeEntries(resume: { seq: number; epoch: number }): readonly Entry[] | undefined {
    const ctx = this.#ctx;
    const tracker = ctx.roles.primary.tracker;
    const head = ctx.runner.appliedSeq;
    if (resume.epoch !== ctx.epoch || resume.seq > head || resume.seq < tracker.ackedSeq) return undefined;
    if (ctx.role === 'solo-primary' && !ctx.roles.solo.covering) return undefined;
    const entries = tracker.log.range(resume.seq);
    return this.#continues(entries, resume.seq) ? entries : undefined;
  }

  /** The entries after `seq` up to appliedSeq from the strategy, when complete and few enough for the log bound. */
  #deltaFrom(attachment: PrimaryAttachment, seq: number): readonly Entry[] | undefined {
    const ctx = this.#ctx;
    const head = ctx.runner.appliedSeq;
    if (seq > head) return undefined;
    if (head - seq > ctx.cfg.maxUnackedEntries / 2) return undefined;
    let entries: readonly Entry[] | undefined;
    try {
      entries = attachment.entriesAfter!(seq);
    } catch (err) {
      ctx.log('warn', 'delta-entries-failed', { error: (err as Error).message });
      return undefined;
    }
    if (entries === undefined) return undefined;
    return this.#continues(entries, seq) ? entries : undefined;
  }

  /** Make `link`'s replica our backup: from a whole-state copy (delta undefined), or from the state it
   * holds at haveSeq with `delta` = the entries after it, which go into the unacknowledged log. */
  #admit(link: Link, delta: readonly Entry[] | undefined, joinerId: string, resumed = false): void {
    const ctx = this.#ctx;
    const runner = ctx.runner;
    invariant(SERVING.has(ctx.role), 'admit-role', () => `admitting a joiner as ${ctx.role}`);
    // A dropped backup asking for a fresh copy has left the backup role: the drop is complete.
    ctx.roles.solo.cancelDrop();
    ctx.roles.solo.forgetCoverage(); // a backup again (or a full join): nobody follows any more
    let msg: StateSnap;
    if (delta !== undefined) {
      const seq = runner.appliedSeq - delta.length;
      msg = { t: 'stateSnap', epoch: ctx.epoch, seq, version: runner.version, snapshot: null, dedup: [], delta: true };
      // The writes acknowledged since `seq` (alone, while the joiner streamed or was dropped) travel with
      // the admission: the joiner holds them before it is a backup. Too large for one message: flushes.
      if (delta.length > 0) {
        const withEntries: StateSnap = { ...msg, entries: [...delta] };
        if (codec.encode(withEntries).length <= link.conn.maxMessageSize) msg = withEntries;
      }
    } else {
      if (ctx.stateSync.fetch !== undefined || ctx.roles.host.attachment?.verifiedAt !== undefined)
        ctx.log('info', 'whole-state-copy', { joiner: joinerId });
      const snap = ctx.stateSync.capture(runner.takeSnapshot() as unknown as StateSnapshot);
      msg = {
        t: 'stateSnap',
        epoch: ctx.epoch,
        seq: snap.seq,
        version: snap.version,
        snapshot: snap.snapshot,
        dedup: snap.dedup as StateSnap['dedup'],
      };
    }
    const snap = msg;
    if (!link.send(msg)) return;
    // From now on, keep every entry after snap.seq for this backup.
    ctx.roles.primary.adoptBackup(link, snap.seq, delta);
    ctx.roles.solo.stopProbe(link);
    const mode = resumed ? 'resume' : delta !== undefined ? 'delta' : 'copy';
    ctx.log('info', 'peer-joined', { seq: snap.seq, peer: link.remote, mode, entries: delta?.length ?? 0 });
    ctx.transitions.setRole('primary');
    ctx.emit({ type: 'peer-joined', seq: snap.seq, mode });
    ctx.roles.primary.startDuties();
    ctx.roles.primary.releaseHeldIfLeased();
  }
}
