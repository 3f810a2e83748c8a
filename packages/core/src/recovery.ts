/**
 * Blocked, and the operator's action (docs/PROTOCOL.md, "Blocked, and the operator's action"): a replica
 * that knows data existed, finds no serving peer and cannot prove it holds every acknowledged write says
 * so (`blocked`, with the range it may lose) and waits; an operator may `promote({ acceptLoss: true })`
 * it — it then applies what it can order and serves alone at a new epoch. Admin connections ask status
 * and promote here.
 */
import type { BlockedStatus, ReplicaEvent, Role } from './api.js';
import { ServiceUnavailableError, StoppedError } from './errors.js';
import type { Link } from './link.js';
import type { Message, StatusReply } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';

export class Recovery {
  readonly #ctx: ReplicaContext;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  /** Joining with a state (or the knowledge of an epoch) and no serving peer: we cannot prove nothing is lost. */
  blockNoPrimary(peer: StatusReply | undefined): void {
    const ctx = this.#ctx;
    const why =
      peer === undefined
        ? 'no serving primary: nothing listens at the peer address'
        : `no serving primary: the peer is ${peer.role} at epoch ${peer.epoch} (seq ${peer.appliedSeq})`;
    this.block(
      `${why}; this replica (epoch ${ctx.epoch}, seq ${ctx.runner.appliedSeq}) may lack writes the last primary acknowledged`,
      ctx.peerSeqSeen,
    );
  }

  block(reason: string, knownSeq: number): void {
    const ctx = this.#ctx;
    if (!ctx.faults.reportsBlocked()) return; // (a broken variant: wait silently, for good)
    const haveSeq = ctx.runner.appliedSeq;
    const b: BlockedStatus = { reason, haveSeq, mayLoseFrom: haveSeq + 1 };
    const upTo = Math.max(knownSeq, ctx.backupLog.beyondGap().at(-1)?.seq ?? 0);
    if (upTo > haveSeq) b.mayLoseTo = upTo;
    const same = ctx.blocked !== undefined && ctx.blocked.reason === b.reason && ctx.blocked.haveSeq === b.haveSeq;
    ctx.blocked = b;
    if (same) return;
    ctx.log('error', 'BLOCKED', {
      ...b,
      hint: 'this replica waits for its peer; to serve now from what it holds, accepting the loss: tandem-kv promote --accept-loss (or replica.promote({ acceptLoss: true }))',
    });
    ctx.emit({ type: 'blocked', ...b });
  }

  unblock(): void {
    const ctx = this.#ctx;
    if (ctx.blocked === undefined) return;
    ctx.log('info', 'unblocked', {});
    ctx.blocked = undefined;
  }

  async promote(options: { acceptLoss: true }): Promise<void> {
    const ctx = this.#ctx;
    if (options?.acceptLoss !== true) throw new TypeError('promote needs { acceptLoss: true }: writes this replica does not hold are lost');
    if (ctx.role === 'stopped') throw new StoppedError('replica stopped');
    if (SERVING.has(ctx.role) || ctx.listener === undefined) return;
    if (ctx.role === 'backup')
      throw new Error(
        'this replica is a backup: it takes over by itself when its primary fails; promote is for a replica that reports blocked',
      );
    if (ctx.witness.present) {
      const waiting = (): boolean => (ctx.role as Role) === 'joining' || (ctx.role as Role) === 'starting'; // it may change while we ask
      const answer = await ctx.witness.ask('takeover', Math.max(ctx.peerEpochSeen, ctx.epoch) + 1, waiting);
      if (answer !== 'granted')
        throw new ServiceUnavailableError(
          waiting()
            ? `the witness ${answer === 'refused' ? 'refuses' : 'cannot be reached for'} this promote (${ctx.witness.describe()}): another replica may be serving`
            : `not promoted: this replica became ${ctx.role} while the witness was asked`,
        );
    }
    const joiner = ctx.roles.joiner;
    joiner.cancelFetch();
    ctx.roles.backup.cancelTimers();
    joiner.cancelProbe();
    ctx.roles.follower.end();
    joiner.dropJoinLink();
    // What the clients forwarded applies on a state that is a prefix of that history: a backup's (or a
    // dropped backup's), or the initial one. A deposed primary's state may hold entries nobody else has.
    if (ctx.followable || ctx.runner.appliedSeq === 0) ctx.backupLog.applyReady(ctx.runner, (d) => ctx.onDivergence(d), true);
    const gap = ctx.backupLog.beyondGap();
    ctx.backupLog.clear();
    const lostFrom = ctx.runner.appliedSeq + 1;
    const lostTo = Math.max(ctx.peerSeqSeen, gap.at(-1)?.seq ?? 0, ctx.blocked?.mayLoseTo ?? 0);
    ctx.newLeaderEpoch(ctx.peerEpochSeen);
    ctx.takeoverSeq = ctx.runner.appliedSeq;
    ctx.followable = false;
    ctx.blocked = undefined;
    const ev: Extract<ReplicaEvent, { type: 'promoted' }> = {
      type: 'promoted',
      epoch: ctx.epoch,
      appliedSeq: ctx.runner.appliedSeq,
      lostFrom,
    };
    if (lostTo >= lostFrom) ev.lostTo = lostTo;
    ctx.log('error', 'PROMOTED', {
      appliedSeq: ev.appliedSeq,
      lostFrom,
      lostTo: ev.lostTo ?? 'unknown',
      note: 'an operator accepted the loss of acknowledged writes this replica does not hold',
    });
    ctx.transitions.setRole('solo-primary');
    ctx.emit(ev);
    ctx.roles.solo.startProbe();
  }

  /** An operator's connection (hello kind 'admin', authenticated like a peer): status and promote only. */
  onAdmin(link: Link, m: Message): void {
    const ctx = this.#ctx;
    switch (m.t) {
      case 'status':
        link.send(ctx.statusReply(true));
        return;
      case 'promote':
        ctx.log('warn', 'promote-requested', { remote: link.conn.remoteAddress });
        void this.promote({ acceptLoss: m.acceptLoss }).then(
          () => link.send(ctx.statusReply(true)),
          () => link.send(ctx.statusReply(true)),
        );
        return;
      default:
        ctx.violation(`${m.t} from an operator connection`);
    }
  }
}
