/**
 * Streaming state transfer for @tandem/core replicas: a `StateSync` whose serving side runs a
 * `StateTransferServer` over the replica's live state (snapshot fixed at S, chunks, resume, a catch-up
 * backlog fed by every entry the replica applies, digest check at an agreed seq), and whose joining side
 * streams a verified state with a `StateTransferClient` before it asks to join — the primary then adds
 * it as backup from the verified seq and sends only the entries after it (docs/STATE-TRANSFER.md).
 *
 *   createReplica({ …, stateSync: streamingStateSync({ service }) })   // on both replicas
 *
 * The transfer runs on the replica's own listening address: the joiner's first message there is
 * `hello {kind: 'transfer'}` and the replica hands the connection to this strategy. The exactly-once
 * window fixed at S travels with the snapshot (aux), so retransmissions are still recognised after a
 * takeover. The whole-state copy (`capture`/`install`, with version migrations) stays the fallback.
 */
import type {
  Entry,
  JoinTarget,
  PrimaryAttachment,
  PrimaryStateView,
  StateFetchContext,
  StateFetchResult,
  StateSnapshot,
  StateSync,
} from '@tandem/core';
import type { Connection } from '@tandem/transport';
import { ReplicationBacklog, type BacklogOptions, type LogEntry } from '../backlog.js';
import { StateTransferClient, type StateTransferClientEvent, type StateTransferClientOptions } from '../protocol/client.js';
import { pack } from '../codec.js';
import type { TransferEnv } from '../env.js';
import type { TransferFormat } from '../migrations.js';
import type { TransferProgress } from '../protocol/progress.js';
import { versionedStateSync } from './replica-sync.js';
import { StateTransferServer, type StateTransferServerEvent, type StateTransferServerOptions } from '../protocol/server.js';
import type { CapturedState, TransferSink, TransferSource } from '../source.js';
import { supportsChunks, type TransferableService } from '../transferable.js';

/** StateTransferServerOptions that streamingStateSync passes through to its server. */
export type StreamingServerSettings = Omit<StateTransferServerOptions, 'env' | 'source' | 'follow'>;
/** StateTransferClientOptions that streamingStateSync passes through to its client. */
export type StreamingClientSettings = Omit<
  StateTransferClientOptions<unknown>,
  'env' | 'service' | 'sink' | 'nodeId' | 'address' | 'dial' | 'follow'
>;

/** Options of streamingStateSync: the service, backlog bounds, server and client settings, event listener. */
export interface StreamingStateSyncOptions {
  /** This replica's service (with `migrations` to receive an older version's state). For the digest
   * check after a migration, its `digest(state)` must describe the logical content, not the format. */
  service: TransferableService<unknown>;
  /** The catch-up backlog on the serving side (default 100 000 entries). */
  backlog?: BacklogOptions<LogEntry>;
  /** StateTransferServer settings (chunk size, window, slices, resume timeout…). */
  server?: StreamingServerSettings;
  /** StateTransferClient settings (window, reconnects, idle timeout…). Default maxReconnects 5. */
  client?: StreamingClientSettings;
  /** How long the primary waits for a joiner's verification to be reported before answering its join
   * with the whole-state copy instead (default 2 000 ms). */
  verifyWaitMs?: number;
  /** Joining side: progress of the transfer (bytes, records, entries, percent, rate). */
  onProgress?(progress: TransferProgress): void;
  /** Every client event (joining side) and server event (serving side). */
  onEvent?(event: StreamingStateSyncEvent): void;
}

/** An event of the joiner's client or of the serving side's server, tagged with the side. */
export type StreamingStateSyncEvent = ({ side: 'joiner' } & StateTransferClientEvent) | ({ side: 'server' } & StateTransferServerEvent);

/** A StateSync that streams (see the file comment). Also exposes counters for tests and status pages. */
export interface StreamingStateSync extends StateSync {
  readonly stats: {
    /** Transfers this replica served that the joiner verified. */
    served: number;
    /** Transfers this replica fetched and verified as joiner. */
    fetched: number;
    /** Fetches that failed (the replica then asked for the whole-state copy). */
    fetchFailures: number;
  };
}

interface Verification {
  seq: number;
  digest: string;
}

/** A StateSync for @tandem/core replicas that streams the state in chunks from the serving replica instead of one message. */
export function streamingStateSync(options: StreamingStateSyncOptions): StreamingStateSync {
  const service = options.service;
  const whole = versionedStateSync(service);
  const stats = { served: 0, fetched: 0, fetchFailures: 0 };
  const emit = (e: StreamingStateSyncEvent): void => {
    try {
      options.onEvent?.(e);
    } catch {
      // a listener's error is not the transfer's
    }
  };

  return {
    stats,
    capture: (snapshot: StateSnapshot) => whole.capture(snapshot),
    install: (snapshot: StateSnapshot) => whole.install(snapshot),

    attachPrimary(view: PrimaryStateView): PrimaryAttachment {
      const env = view.env as TransferEnv;
      const backlog = new ReplicationBacklog<LogEntry>(options.backlog);
      backlog.reset(view.appliedSeq);
      const stopFeed = view.onApplied((entry: Entry) => backlog.append(entry as unknown as LogEntry));
      const source: TransferSource = {
        serviceName: view.serviceName,
        version: view.version,
        canStreamRecords: supportsChunks(service),
        backlog,
        capture(format: TransferFormat): CapturedState {
          // Synchronous: S = appliedSeq, the state view (copy-on-write cursor, or the encoded whole
          // state) and the dedup window are all fixed in this one turn.
          const aux = view.exportDedup();
          const body: CapturedState['body'] =
            format === 'records' && service.snapshotChunks
              ? { format: 'records', cursor: service.snapshotChunks(view.state) }
              : { format: 'blob', bytes: pack(service.snapshot(view.state)) };
          return { seq: view.appliedSeq, epoch: view.epoch, version: view.version, body, aux };
        },
        head: () => ({ seq: view.appliedSeq, digest: view.digest() }),
      };
      const server = new StateTransferServer({ ...options.server, env, source, follow: false });
      const verified = new Map<string, Verification>();
      const waiters = new Set<() => void>();
      const conns = new Set<Connection>();
      server.on((e) => {
        if (e.type === 'session-open') verified.delete(e.nodeId);
        if (e.type === 'verified') {
          stats.served++;
          verified.set(e.nodeId, { seq: e.seq, digest: e.digest });
          for (const w of [...waiters]) w();
        }
        emit({ side: 'server', ...e });
      });
      let detached = false;
      return {
        acceptTransfer(conn: Connection): void {
          if (detached) return conn.abort();
          conns.add(conn);
          void server.handle(conn).finally(() => conns.delete(conn));
        },
        verifiedAt({ nodeId, haveSeq, haveDigest }): Promise<boolean> {
          const matches = (): boolean => {
            const v = verified.get(nodeId);
            return v !== undefined && v.seq === haveSeq && v.digest === haveDigest;
          };
          if (matches()) return Promise.resolve(true);
          // The joiner's `verified` (transfer connection) and its stateReq (protocol connection) travel on
          // different connections: the verification may be reported a moment after the join request.
          return new Promise<boolean>((resolve) => {
            const done = (ok: boolean): void => {
              waiters.delete(check);
              timer.cancel();
              resolve(ok);
            };
            const check = (): void => {
              if (detached) done(false);
              else if (matches()) done(true);
            };
            const timer = env.setTimer(options.verifyWaitMs ?? 2000, () => done(false));
            waiters.add(check);
          });
        },
        entriesAfter(seq: number): readonly Entry[] | undefined {
          if (seq >= backlog.lastSeq) return seq === backlog.lastSeq ? [] : undefined;
          if (!backlog.covers(seq + 1)) return undefined;
          return backlog.read(seq + 1, backlog.lastSeq - seq) as unknown as Entry[];
        },
        detach(): void {
          if (detached) return;
          detached = true;
          stopFeed();
          verified.clear();
          for (const w of [...waiters]) w();
          void server.close();
          for (const c of conns) c.abort();
          conns.clear();
        },
      };
    },

    async fetch(ctx: StateFetchContext): Promise<StateFetchResult | undefined> {
      const sink = joinSink(ctx.target);
      const client = new StateTransferClient<unknown>({
        maxReconnects: 5,
        ...options.client,
        env: ctx.env as TransferEnv,
        service,
        sink,
        nodeId: ctx.nodeId,
        dial: () => ctx.dialTransfer(),
        follow: false,
      });
      client.on((e) => {
        if (e.type === 'progress') options.onProgress?.(e.progress);
        emit({ side: 'joiner', ...e });
      });
      ctx.onCancel(() => void client.close());
      try {
        const r = await client.run();
        stats.fetched++;
        return { seq: r.seq, digest: r.digest };
      } catch (err) {
        stats.fetchFailures++;
        throw err;
      }
    },
  };
}

/** The joining replica's state as the transfer client's sink. */
function joinSink(target: JoinTarget): TransferSink<unknown> {
  return {
    install(installed) {
      const dedup = installed.aux === undefined ? [] : installed.aux;
      if (!Array.isArray(dedup)) throw new TypeError('state transfer: the exactly-once window (aux) is not an array');
      target.install({ seq: installed.seq, state: installed.state, dedup });
    },
    apply(entries) {
      for (const e of entries) target.apply(e);
    },
    head: () => ({ seq: target.appliedSeq, digest: target.digest() }),
  };
}
