/**
 * The replica's side of a `Witness` (docs/PARTITIONS.md): ask before serving alone, answer alone only while
 * the grant is in force, ask again when it lapsed, give it up when no longer serving alone.
 *
 * Every way into `solo-primary` (a backup's takeover, a primary dropping its backup, a follower's takeover,
 * the first primary at startup, an operator's promote) goes through `ask`; `holds` is checked on the solo
 * primary's request path; `onRoleChange` releases the grant when the replica leaves `solo-primary`. While the
 * pair is healthy nothing here runs: the witness is off the request path.
 */
import type { Role, Witness, WitnessReason } from './api.js';
import type { TimerHandle } from './env.js';
import type { ReplicaContext } from './replica-context.js';

/** What the witness answered: a grant, a refusal (another replica holds it, or a newer epoch was
 * granted), or nothing (unreachable, timed out). */
export type WitnessAnswer = 'granted' | 'refused' | 'unreachable';

export class WitnessGate {
  readonly #ctx: ReplicaContext;
  readonly #witness: Witness | undefined;
  #renewing = false;
  #renewTimer: TimerHandle | undefined;
  /** Asking again for a drop after the witness was unreachable (beforeDrop). */
  #dropRetry: TimerHandle | undefined;
  /** The last thing the witness said or did not say, for status and logs. */
  #last = 'not asked';
  /** Granted and not released (the epoch of the grant). */
  #grantedEpoch: number | undefined;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
    this.#witness = ctx.opts.witness;
  }

  get present(): boolean {
    return this.#witness !== undefined;
  }

  /**
   * May this replica serve alone at `epoch`? 'granted' at once without a witness. A refusal and an
   * unreachable witness (a rejected promise) are logged (rate-limited): the replica stays passive. A grant
   * that comes back when `stillWanted()` is false is released at once and answered as 'refused'.
   */
  async ask(reason: WitnessReason, epoch: number, stillWanted: () => boolean = () => true): Promise<WitnessAnswer> {
    const w = this.#witness;
    if (w === undefined) return 'granted';
    const ctx = this.#ctx;
    let answer: WitnessAnswer;
    try {
      answer = (await w.mayServeAlone({ nodeId: ctx.nodeId, epoch, reason })) === true ? 'granted' : 'refused';
      this.#last = `${answer} (${reason}, epoch ${epoch})`;
    } catch (err) {
      answer = 'unreachable';
      this.#last = `unreachable (${reason}, epoch ${epoch}): ${(err as Error).message}`;
    }
    if (answer === 'granted' && !stillWanted()) {
      // The replica moved on while it asked (another role, another epoch): an unused grant would keep the
      // peer out until its lease expired — give it back at once.
      this.#grantedEpoch = epoch;
      this.release();
      return 'refused';
    }
    if (answer === 'granted') {
      this.#grantedEpoch = epoch;
      ctx.log('info', 'witness-granted', { reason, grantEpoch: epoch, witness: this.describe() });
    } else {
      ctx.rateLog.log(`witness-${reason}`, (suppressed) =>
        ctx.log('warn', 'witness-refused', {
          reason,
          grantEpoch: epoch,
          witness: this.describe(),
          suppressed,
          hint: 'this replica stays passive (unavailable rather than unsafe) and asks again',
        }),
      );
    }
    return answer;
  }

  /**
   * A primary about to drop its faulty backup and serve alone: granted → `proceed`; refused → step down
   * (the backup was granted a takeover: it serves now, we join it); unreachable → stay passive (without
   * acks there is no lease: requests are held) and `retry` after a retry period.
   */
  beforeDrop(retry: () => void, proceed: () => void): void {
    const ctx = this.#ctx;
    const epoch = ctx.epoch;
    const wanted = (): boolean => ctx.role === 'primary' && ctx.epoch === epoch && !ctx.roles.solo.dropping;
    void this.ask('peer-faulty', epoch, wanted).then((answer) => {
      if (!wanted()) return;
      if (answer === 'granted') return proceed();
      if (answer === 'refused') return ctx.transitions.stepDown(ctx.epoch);
      this.#dropRetry = ctx.env.setTimer(ctx.retryMs(), () => {
        this.#dropRetry = undefined;
        retry();
      });
    });
  }

  cancelRetry(): void {
    this.#dropRetry?.cancel();
    this.#dropRetry = undefined;
  }

  /** A solo primary may answer: no witness, a witness without leases, or a grant still in force for a
   * forward window more (what it answers now reaches the peer through the clients before the peer can be
   * granted: docs/PARTITIONS.md). */
  holds(): boolean {
    const w = this.#witness;
    return w === undefined || w.holds === undefined || w.holds(this.#ctx.bounds.forwardWindowMs);
  }

  /**
   * The solo primary's grant lapsed (a request found `holds()` false): ask again with reason 'renew'.
   * Granted → `onRenewed` (answer the held requests); refused → step down (the peer won); unreachable →
   * ask again after a retry period, holding meanwhile.
   */
  renew(onRenewed: () => void): void {
    const ctx = this.#ctx;
    if (this.#renewing || this.#renewTimer !== undefined || ctx.role !== 'solo-primary') return;
    this.#renewing = true;
    const epoch = ctx.epoch;
    ctx.log('warn', 'witness-lapsed', { witness: this.describe() });
    void this.ask('renew', epoch, () => ctx.role === 'solo-primary' && ctx.epoch === epoch).then((result) => {
      this.#renewing = false;
      if (ctx.role !== 'solo-primary' || ctx.epoch !== epoch) return;
      // Refused: the peer holds the grant (or a newer epoch was granted) — it serves; we join it.
      if (result === 'refused') return ctx.transitions.stepDown(ctx.epoch);
      if (result === 'granted' && this.holds()) return onRenewed();
      // Unreachable (or granted but not yet in force): hold and ask again after a retry period.
      this.#renewTimer = ctx.env.setTimer(ctx.retryMs(), () => {
        this.#renewTimer = undefined;
        if (ctx.role === 'solo-primary' && !this.holds()) this.renew(onRenewed);
        else if (ctx.role === 'solo-primary') onRenewed();
      });
    });
  }

  /** Role changes: leaving `solo-primary` (a backup joined, a step-down, a stop) gives the grant up; so
   * does any move out of the serving roles (a primary granted 'peer-faulty' that stepped down before it
   * went solo). */
  onRoleChange(was: Role, now: Role): void {
    const leftSolo = was === 'solo-primary' && now !== 'solo-primary';
    if (!leftSolo && (now === 'primary' || now === 'solo-primary')) return;
    this.#renewTimer?.cancel();
    this.#renewTimer = undefined;
    this.release();
  }

  release(): void {
    const w = this.#witness;
    const epoch = this.#grantedEpoch;
    if (w === undefined || epoch === undefined) return;
    this.#grantedEpoch = undefined;
    this.#last = `released (epoch ${epoch})`;
    if (w.release === undefined) return;
    const ctx = this.#ctx;
    try {
      void Promise.resolve(w.release({ nodeId: ctx.nodeId, epoch })).catch((err: unknown) =>
        ctx.log('warn', 'witness-release-failed', { error: (err as Error).message, hint: 'its lease expires on its own' }),
      );
    } catch (err) {
      ctx.log('warn', 'witness-release-failed', { error: (err as Error).message, hint: 'its lease expires on its own' });
    }
  }

  /** One line for status and logs. */
  describe(): string {
    const w = this.#witness;
    if (w === undefined) return 'none';
    let d: string | undefined;
    try {
      d = w.describe?.();
    } catch {
      d = undefined;
    }
    return d === undefined ? this.#last : `${this.#last}; ${d}`;
  }

  stop(): void {
    this.cancelRetry();
    this.#renewTimer?.cancel();
    this.#renewTimer = undefined;
    this.release();
  }
}
