/**
 * The serving side of a StateSync strategy (docs/PROTOCOL.md, "the delta join"; docs/STATE-TRANSFER.md):
 * each time the replica starts serving it shows the strategy a live view of its state
 * (`attachPrimary`), feeds it every entry it applies, and hands it the connections whose hello is
 * `transfer`; when the replica stops serving, the attachment is detached.
 */
import type { PrimaryAttachment, PrimaryStateView } from './api.js';
import type { Link } from './link.js';
import type { Entry, Hello } from './messages.js';
import { SERVING, type ReplicaContext } from './replica-context.js';

export class StateSyncHost {
  readonly #ctx: ReplicaContext;
  #attachment: PrimaryAttachment | undefined;
  readonly #appliedListeners = new Set<(entry: Entry) => void>();

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
  }

  /** What the strategy gave this serving replica (undefined: not serving, or no attachPrimary). */
  get attachment(): PrimaryAttachment | undefined {
    return this.#attachment;
  }

  /** A serving replica shows its strategy a live view (StateSync.attachPrimary). */
  attach(): void {
    const ctx = this.#ctx;
    if (this.#attachment !== undefined || ctx.stateSync.attachPrimary === undefined) return;
    const runner = ctx.runner;
    const listeners = this.#appliedListeners;
    const view: PrimaryStateView = {
      nodeId: ctx.nodeId,
      serviceName: ctx.opts.service.name,
      version: runner.version,
      get state() {
        return runner.state;
      },
      get appliedSeq() {
        return runner.appliedSeq;
      },
      get epoch() {
        return ctx.epoch;
      },
      env: ctx.env,
      exportDedup: () => runner.dedup.export().map(([k, r]) => [k, { ...r }] as [string, unknown]),
      digest: () => runner.stateDigest(),
      onApplied(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    try {
      this.#attachment = ctx.stateSync.attachPrimary(view);
    } catch (err) {
      ctx.log('error', 'state-sync-attach-failed', { error: (err as Error).message });
    }
  }

  detach(): void {
    const a = this.#attachment;
    if (a === undefined) return;
    this.#attachment = undefined;
    this.#appliedListeners.clear();
    try {
      a.detach();
    } catch (err) {
      this.#ctx.log('error', 'state-sync-detach-failed', { error: (err as Error).message });
    }
  }

  /** The primary applied `entry`: the strategy's backlog gets it, synchronously. */
  notifyApplied(entry: Entry): void {
    if (this.#appliedListeners.size === 0) return;
    for (const l of this.#appliedListeners) {
      try {
        l(entry);
      } catch (err) {
        this.#ctx.log('error', 'applied-listener-failed', { seq: entry.seq, error: (err as Error).message });
      }
    }
  }

  /** `hello {kind: 'transfer'}`: hand the connection to the strategy, or close it (not serving / no strategy). */
  onTransferHello(link: Link, hello: Hello): void {
    const ctx = this.#ctx;
    const accept = this.#attachment?.acceptTransfer;
    if (accept === undefined || !SERVING.has(ctx.role)) {
      ctx.log('info', 'transfer-refused', {
        from: hello.nodeId,
        why: SERVING.has(ctx.role) ? 'no streaming state sync' : `role ${ctx.role}`,
      });
      void link.conn.close('no state transfer here').catch(() => undefined);
      return;
    }
    const attachment = this.#attachment!;
    ctx.roles.solo.endCoverage('the dropped replica streams a new state');
    link.handOff((conn) => {
      if (this.#attachment !== attachment) return conn.abort();
      ctx.log('info', 'transfer-connection', { from: hello.nodeId });
      try {
        accept.call(attachment, conn, { nodeId: hello.nodeId });
      } catch (err) {
        ctx.log('error', 'transfer-accept-failed', { error: (err as Error).message });
        conn.abort();
      }
    });
  }
}
