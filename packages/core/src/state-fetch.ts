/**
 * The joining side of a streaming StateSync strategy (docs/PROTOCOL.md, "the delta join"): a joiner
 * whose strategy has `fetch` streams a state verified equal to the primary's at some seq N through its
 * own `transfer` connection, then asks to join from there (`stateReq {haveSeq, haveDigest}`); when the
 * fetch fails, it asks for the whole-state copy. `JoinTarget` is the joiner's state machine as the
 * strategy drives it.
 */
import type { Connection } from '@tandem/transport';
import { z } from 'zod';
import type { JoinTarget, StateFetchResult } from './api.js';
import type { DedupRecord } from './dedup.js';
import { DivergenceError, ProtocolViolationError, StoppedError } from './errors.js';
import { dialHandshake } from './handshake.js';
import { remainderOf, type Link } from './link.js';
import { dedupRecordSchema, entrySchema, type Hello } from './messages.js';
import type { ReplicaContext } from './replica-context.js';

const dedupRecordsSchema = z.array(dedupRecordSchema);

export class StateFetch {
  readonly #ctx: ReplicaContext;
  readonly #join: (link: Link) => void;
  readonly #reprobe: () => void;
  /** A StateSync.fetch in progress: its cancel function. */
  #cancel: (() => void) | undefined;
  /** The state the last fetch verified (unchanged since while runner.appliedSeq === seq). */
  fetched: StateFetchResult | undefined;

  /** `join`: ask the primary to join on `link` (stateReq); `reprobe`: look for the primary again. */
  constructor(ctx: ReplicaContext, join: (link: Link) => void, reprobe: () => void) {
    this.#ctx = ctx;
    this.#join = join;
    this.#reprobe = reprobe;
  }

  get running(): boolean {
    return this.#cancel !== undefined;
  }

  /** The state we hold is the one the last fetch verified. */
  holdsVerified(): boolean {
    return this.fetched !== undefined && this.fetched.seq === this.#ctx.runner.appliedSeq;
  }

  cancel(): void {
    const c = this.#cancel;
    this.#cancel = undefined;
    c?.();
  }

  /**
   * Stream a verified state from the primary, then ask to join from it (`stateReq {haveSeq,
   * haveDigest}`); on failure, ask for the whole-state copy.
   */
  start(link: Link): void {
    const ctx = this.#ctx;
    const fetch = ctx.stateSync.fetch!;
    const cancelListeners: (() => void)[] = [];
    let cancelled = false;
    let touched = false;
    this.#cancel = () => {
      cancelled = true;
      for (const l of cancelListeners.splice(0)) l();
    };
    const nodeId = ctx.nodeId;
    const fetchCtx = {
      peer: ctx.opts.peer,
      nodeId,
      serviceName: ctx.opts.service.name,
      env: ctx.env,
      target: this.#joinTarget(
        () => !cancelled,
        () => {
          touched = true;
        },
      ),
      dialTransfer: async (): Promise<Connection> => {
        const timeoutMs = Math.max(ctx.bounds.dialTimeoutMs, 1000);
        const conn = await ctx.env.network.dial(ctx.opts.peer, { maxMessageSize: ctx.cfg.maxMessageSize, timeoutMs });
        const hello: Hello = { t: 'hello', kind: 'transfer', service: ctx.opts.service.name, nodeId, epoch: ctx.epoch };
        const auth = ctx.security.peerRing === undefined ? undefined : { ring: ctx.security.peerRing };
        return remainderOf(conn, await dialHandshake(conn, hello, auth, ctx.env, timeoutMs));
      },
      onCancel(listener: () => void): void {
        if (cancelled) listener();
        else cancelListeners.push(listener);
      },
    };
    ctx.log('info', 'state-fetch-start', { peer: ctx.opts.peer });
    const startedAt = ctx.env.now();
    void (async () => {
      let result: StateFetchResult | undefined;
      try {
        result = await fetch.call(ctx.stateSync, fetchCtx);
      } catch (err) {
        if (!cancelled) ctx.log('warn', 'state-fetch-failed', { error: (err as Error).message, fallback: 'whole-state copy' });
      }
      if (cancelled) return;
      this.#cancel = undefined;
      if (ctx.role !== 'starting' && ctx.role !== 'joining') return;
      const verified = result !== undefined && result.seq === ctx.runner.appliedSeq && result.digest === ctx.runner.stateDigest();
      this.fetched = verified ? result : undefined;
      // An unfinished fetch leaves no half-copied state behind (a starting replica that ends up leading
      // must start from the initial state, as without streaming).
      if (!verified && touched) ctx.runner.reset();
      if (verified) ctx.log('info', 'state-fetched', { seq: result!.seq, ms: Math.round(ctx.env.now() - startedAt) });
      if (link.isClosed) {
        // The status connection went away meanwhile: probe again (a verified state is kept for the delta join).
        this.#reprobe();
        return;
      }
      this.#join(link);
    })();
  }

  /** The joining side's view of this replica's state machine (StateSync.fetch drives it). */
  #joinTarget(live: () => boolean, touched: () => void): JoinTarget {
    const ctx = this.#ctx;
    const runner = ctx.runner;
    const check = (): void => {
      if (!live() || (ctx.role !== 'joining' && ctx.role !== 'starting')) throw new StoppedError('the state fetch was cancelled');
      touched();
    };
    return {
      get appliedSeq() {
        return runner.appliedSeq;
      },
      install: ({ seq, state, dedup }) => {
        check();
        const records = dedupRecordsSchema.safeParse(dedup);
        if (!records.success)
          throw new ProtocolViolationError(
            `state transfer: invalid dedup window: ${records.error.issues[0]?.message ?? 'schema mismatch'}`,
          );
        this.fetched = undefined;
        runner.installState(state, seq, records.data as unknown as [string, DedupRecord][]);
        ctx.log('info', 'state-installed', { seq, records: records.data.length });
      },
      apply: (raw) => {
        check();
        const parsed = entrySchema.safeParse(raw);
        if (!parsed.success)
          throw new ProtocolViolationError(`state transfer: invalid log entry: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`);
        const e = parsed.data;
        if (e.seq !== runner.appliedSeq + 1)
          throw new ProtocolViolationError(`state transfer: entry ${e.seq} does not follow ${runner.appliedSeq}`);
        const outcome = runner.apply(e);
        if (outcome.digest !== e.digest) {
          ctx.onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
          throw new DivergenceError(
            e.seq,
            e.digest,
            outcome.digest,
            `reply digest mismatch at seq ${e.seq} while catching up (primary ${e.digest}, joiner ${outcome.digest})`,
          );
        }
      },
      digest: () => runner.stateDigest(),
    };
  }
}
