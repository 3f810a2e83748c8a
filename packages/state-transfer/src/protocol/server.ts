/**
 * The serving side of state transfer. For each joiner it fixes a snapshot at seq S (synchronously,
 * O(1) with a chunked service), streams it in checksummed chunks under a window of unacknowledged
 * chunks while the replica keeps serving, then streams the log after S from the catch-up backlog, then
 * sends its state digest at an agreed seq for the joiner to verify. A dropped connection leaves the
 * session in place for `resumeTimeoutMs`: the joiner reconnects and continues from its last
 * acknowledged chunk (or log entry). A backlog overrun starts a fresh transfer.
 */
import type { Connection, Listener } from '@tandem/transport';
import { ChunkBufferPool, ChunkProducer } from './chunk-producer.js';
import { randomId, yieldToEventLoop, type TransferEnv } from '../env.js';
import { TransferProtocolError } from '../errors.js';
import { decodeMessage, encodeMessage, type OpenMsg, type TransferMessage } from './messages.js';
import type { TransferFormat } from '../migrations.js';
import { ProgressMeter, type TransferProgress } from './progress.js';
import {
  acknowledge,
  canResume,
  createSession,
  metaMessage,
  negotiate,
  resumePosition,
  type Session,
  type SliceEncodings,
} from './server-session.js';
import type { StateHead, TransferSource } from '../source.js';

/** Options of a StateTransferServer: the Env and source, chunk and slice sizes, windows, timeouts, rate limit, following. */
export interface StateTransferServerOptions {
  env: TransferEnv;
  source: TransferSource;
  /** Target chunk size (default 512 KiB). */
  chunkBytes?: number;
  /** Upper bound of the encoding work between two yields to the event loop (default 64 KiB). */
  sliceBytes?: number;
  /** Target time of one slice of work, measured with env.now() (default 0.5 ms; 0 = bounded by bytes only). */
  sliceMs?: number;
  /** Cap on the joiner's window of unacknowledged chunks (default 16). */
  maxWindow?: number;
  /** Log entries per log message (default 2048) and most unacknowledged log entries (default 16 384). */
  logBatch?: number;
  logWindow?: number;
  /** How long a session waits for its joiner to reconnect (default 30 000 ms). */
  resumeTimeoutMs?: number;
  /** A connection with no message from the joiner for this long while the server waits is dropped (default 15 000 ms). */
  idleTimeoutMs?: number;
  /** Fresh transfers per session after backlog overruns or failed verification (default 3). */
  maxRestarts?: number;
  /** After verification, keep shipping new log entries to the joiner (default true). */
  follow?: boolean;
  /** Pace the snapshot to at most this many bytes per second per session (default: unlimited). Trades
   * transfer time for the serving replica's latency on a busy machine. */
  maxBytesPerSecond?: number;
  progressIntervalMs?: number;
}

/** What a StateTransferServer reports: sessions opened and resumed, progress, resent chunks, completion and failures. */
export type StateTransferServerEvent =
  | { type: 'session-open'; transferId: string; nodeId: string; seq: number; format: TransferFormat; version: number }
  | { type: 'session-resumed'; transferId: string; nodeId: string; nextChunk: number; appliedSeq: number }
  | { type: 'progress'; nodeId: string; progress: TransferProgress }
  | { type: 'chunk-resent'; transferId: string; index: number; reason: string }
  | { type: 'restart'; transferId: string; nodeId: string; reason: string }
  | { type: 'verified'; transferId: string; nodeId: string; seq: number; digest: string }
  | { type: 'digest-mismatch'; transferId: string; nodeId: string; seq: number; expected: string; actual: string }
  | { type: 'session-closed'; transferId: string; nodeId: string; reason: string }
  | { type: 'protocol-error'; remote: string; error: Error };

const DEFAULTS = {
  chunkBytes: 512 * 1024,
  sliceBytes: 64 * 1024,
  sliceMs: 0.5,
  maxWindow: 16,
  logBatch: 2048,
  logWindow: 16_384,
  resumeTimeoutMs: 30_000,
  idleTimeoutMs: 15_000,
  maxRestarts: 3,
  follow: true,
  progressIntervalMs: 250,
  maxBytesPerSecond: 0,
};

/** The serving side of state transfer: streams a snapshot of its source, then the backlog, to joiners. */
export class StateTransferServer {
  readonly #env: TransferEnv;
  readonly #source: TransferSource;
  readonly #o: typeof DEFAULTS;
  readonly #sessions = new Map<string, Session>();
  /**
   * Chunk buffers shared by this server's transfers: up to maxWindow + 4 free ones (~640 KiB each with
   * the defaults) stay mapped between transfers, so a transfer does not start by page-faulting fresh
   * memory on the serving replica (seen as a 12 ms stall with 3.7 ms of system time at a session's open).
   */
  readonly #buffers: ChunkBufferPool;
  /** The session each connection currently serves (a restart moves a connection to a new session). */
  readonly #byConn = new Map<Connection, Session>();
  readonly #listeners = new Set<(e: StateTransferServerEvent) => void>();
  readonly #listenersOfListeners: Listener[] = [];
  #closed = false;

  constructor(options: StateTransferServerOptions) {
    this.#env = options.env;
    this.#source = options.source;
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[k];
      if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    }
    this.#o = o;
    this.#buffers = new ChunkBufferPool(o.maxWindow + 4);
  }

  /** Subscribe to the server's events; returns a function that unsubscribes. */
  on(listener: (e: StateTransferServerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sessions alive (attached or waiting for their joiner to reconnect). */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Listen on `address` with env.network and serve every joiner that connects. Returns the bound address. */
  async listen(address: string): Promise<string> {
    const listener = await this.#env.network.listen(address);
    this.#listenersOfListeners.push(listener);
    void (async () => {
      for await (const conn of listener) void this.handle(conn);
    })().catch(() => {});
    return listener.address;
  }

  /** Serve one joiner connection (its first message must be `open`). Resolves when it closes. */
  async handle(conn: Connection): Promise<void> {
    if (this.#closed) {
      conn.abort();
      return;
    }
    const it = conn[Symbol.asyncIterator]();
    let opened = false;
    // A joiner that sends nothing while the server waits for it is dropped (it may resume); a verified
    // follower is silent when there is nothing to apply, which is fine.
    const onIdle = (): void => {
      if (this.#byConn.get(conn)?.phase === 'following') idle = this.#env.setTimer(this.#o.idleTimeoutMs, onIdle);
      else conn.abort(new Error('state transfer: joiner idle'));
    };
    let idle = this.#env.setTimer(this.#o.idleTimeoutMs, onIdle);
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        idle.cancel();
        idle = this.#env.setTimer(this.#o.idleTimeoutMs, onIdle);
        let msg: TransferMessage;
        try {
          msg = decodeMessage(r.value);
        } catch (err) {
          this.#emit({ type: 'protocol-error', remote: conn.remoteAddress, error: err as Error });
          conn.abort(err as Error);
          break;
        }
        if (!opened) {
          if (msg.t !== 'open') {
            this.#protocolError(conn, `expected open, got ${msg.t}`);
            break;
          }
          opened = true;
          const session = this.#open(conn, msg);
          if (!session) break;
          this.#byConn.set(conn, session);
          void this.#pump(session, conn);
          continue;
        }
        const session = this.#byConn.get(conn);
        if (!session || !this.#onMessage(session, conn, msg)) break;
      }
    } finally {
      idle.cancel();
      const session = this.#byConn.get(conn);
      this.#byConn.delete(conn);
      if (session && session.conn === conn) this.#detach(session, 'connection closed');
    }
  }

  /** Drop every session and stop listening. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const l of this.#listenersOfListeners) await l.close().catch(() => {});
    for (const s of [...this.#sessions.values()]) this.#dispose(s, 'server closed');
  }

  // ------------------------------------------------------------------ opening

  #open(conn: Connection, m: OpenMsg): Session | undefined {
    const terms = negotiate(m, this.#source, this.#o.maxWindow);
    if ('refused' in terms) {
      const { code, message } = terms.refused;
      void conn
        .send(encodeMessage({ t: 'fail', code, message, retry: false }))
        .catch(() => {})
        .finally(() => void conn.close());
      return undefined;
    }
    const { format, window } = terms;

    const existing = m.resume ? this.#sessions.get(m.resume.transferId) : undefined;
    if (
      existing &&
      m.resume &&
      existing.nodeId === m.nodeId &&
      canResume(existing, m.resume.nextChunk, m.resume.appliedSeq, this.#source.backlog)
    ) {
      const old = existing.conn;
      existing.conn = undefined;
      old?.abort();
      existing.expiry?.cancel();
      existing.expiry = undefined;
      existing.window = window;
      this.#resumeAt(existing, m.resume.nextChunk, m.resume.appliedSeq);
      existing.conn = conn;
      existing.meter.resumes++;
      void conn.send(metaMessage(existing, true)).catch(() => {});
      this.#emit({
        type: 'session-resumed',
        transferId: existing.transferId,
        nodeId: m.nodeId,
        nextChunk: m.resume.nextChunk,
        appliedSeq: m.resume.appliedSeq,
      });
      return existing;
    }
    if (existing) this.#dispose(existing, 'replaced by a fresh transfer');
    const s = this.#newSession(m.nodeId, format, window, 0, terms.encodings);
    s.conn = conn;
    void conn.send(metaMessage(s, false)).catch(() => {});
    return s;
  }

  #resumeAt(s: Session, nextChunk: number, appliedSeq: number): void {
    this.#ack(s, nextChunk, appliedSeq);
    resumePosition(s, nextChunk, appliedSeq);
  }

  #newSession(nodeId: string, format: TransferFormat, window: number, restarts: number, encodings: SliceEncodings): Session {
    const transferId = randomId(this.#env);
    const captured = this.#source.capture(format);
    const producer = new ChunkProducer(this.#env, transferId, captured, {
      chunkBytes: this.#o.chunkBytes,
      sliceBytes: this.#o.sliceBytes,
      sliceMs: this.#o.sliceMs,
      pool: this.#buffers,
      ...encodings,
    });
    const meter = new ProgressMeter(() => this.#env.now(), this.#o.progressIntervalMs);
    meter.restart(transferId, producer.totalRecords);
    meter.restarts = restarts;
    const s = createSession({ transferId, nodeId, format, window, captured, encodings, producer, meter, restarts, now: this.#env.now() });
    this.#sessions.set(transferId, s);
    this.#emit({ type: 'session-open', transferId, nodeId, seq: captured.seq, format, version: captured.version });
    return s;
  }

  // ------------------------------------------------------------------ messages from the joiner

  /** Returns false when the connection must stop being read. */
  #onMessage(s: Session, conn: Connection, m: TransferMessage): boolean {
    if (s.conn !== conn) return false;
    switch (m.t) {
      case 'ack':
        if (m.transferId !== s.transferId) return true; // from a transfer this session restarted
        if (m.nextChunk > s.producer.produced) return this.#protocolError(conn, `ack for chunk ${m.nextChunk} never sent`);
        this.#ack(s, m.nextChunk, m.appliedSeq);
        s.wake.notify();
        return true;
      case 'nack':
        if (m.transferId !== s.transferId) return true;
        if (m.index < s.ackedNext || m.index >= s.producer.produced)
          return this.#protocolError(conn, `nack for chunk ${m.index} outside ${s.ackedNext}..${s.producer.produced - 1}`);
        s.sentNext = Math.min(s.sentNext, m.index);
        this.#emit({ type: 'chunk-resent', transferId: s.transferId, index: m.index, reason: m.reason });
        s.wake.notify();
        return true;
      case 'verified':
        if (m.transferId !== s.transferId || s.phase !== 'verifying') return true;
        if (m.ok) {
          this.#emit({ type: 'verified', transferId: s.transferId, nodeId: s.nodeId, seq: m.seq, digest: m.digest });
          s.meter.phase = 'verified';
          this.#progress(s, true);
          if (this.#o.follow) {
            s.phase = 'following';
            s.meter.phase = 'following';
          } else {
            this.#dispose(s, 'verified');
          }
        } else {
          this.#emit({
            type: 'digest-mismatch',
            transferId: s.transferId,
            nodeId: s.nodeId,
            seq: m.seq,
            expected: s.sentDigest,
            actual: m.digest,
          });
          this.#dispose(s, 'digest mismatch');
        }
        s.wake.notify();
        return true;
      case 'fail':
        this.#dispose(s, `joiner failed: ${m.code} ${m.message}`);
        return false;
      default:
        return this.#protocolError(conn, `unexpected ${m.t} from the joiner`);
    }
  }

  #ack(s: Session, nextChunk: number, appliedSeq: number): void {
    acknowledge(s, nextChunk, appliedSeq);
    this.#progress(s, false);
  }

  #protocolError(conn: Connection, message: string): false {
    const error = new TransferProtocolError(`state transfer: ${message}`);
    this.#emit({ type: 'protocol-error', remote: conn.remoteAddress, error });
    conn.abort(error);
    return false;
  }

  // ------------------------------------------------------------------ sending

  async #pump(s: Session, conn: Connection): Promise<void> {
    const unsubscribe = this.#source.backlog.onAppend(() => {
      if (s.phase === 'following' || s.phase === 'log') s.wake.notify();
    });
    try {
      while (s.conn === conn && !conn.isClosed && this.#sessions.get(s.transferId) === s) {
        const progressed = await this.#step(s, conn);
        if (!progressed) await Promise.race([s.wake.wait(), conn.closed]);
      }
    } catch {
      if (s.conn === conn) conn.abort();
    } finally {
      unsubscribe();
    }
  }

  /** Do one unit of work; false when there is nothing to do until the joiner answers or the log grows. */
  async #step(s: Session, conn: Connection): Promise<boolean> {
    if (s.phase === 'snapshot') return this.#snapshotStep(s, conn);
    if (s.phase === 'log' || s.phase === 'following') return this.#logStep(s, conn);
    return false;
  }

  async #snapshotStep(s: Session, conn: Connection): Promise<boolean> {
    const p = s.producer;
    if (!this.#source.backlog.covers(s.captured.seq + 1))
      return this.#restart(
        s,
        conn,
        `backlog overrun during the snapshot (needs seq ${s.captured.seq + 1}, starts at ${this.#source.backlog.firstSeq})`,
      );
    if (s.sentNext < p.produced) {
      if (s.sentNext - s.ackedNext >= s.window) return false;
      const chunk = s.retained.get(s.sentNext);
      if (!chunk) return this.#restart(s, conn, `chunk ${s.sentNext} no longer held`);
      s.sentNext++;
      await conn.send(s.producer.encode(chunk));
      return true;
    }
    if (!p.exhausted) {
      if (s.sentNext - s.ackedNext >= s.window) return false;
      const chunk = await p.next();
      if (chunk) s.retained.set(chunk.index, chunk);
      if (s.conn !== conn || this.#sessions.get(s.transferId) !== s) return false;
      if (chunk) {
        if (s.sentNext === chunk.index) {
          s.sentNext++;
          await conn.send(s.producer.encode(chunk));
        }
        s.sentBytes += chunk.data.length;
        const rate = this.#o.maxBytesPerSecond;
        const ahead = rate > 0 ? s.sendStartedAt + (s.sentBytes * 1000) / rate - this.#env.now() : 0;
        if (ahead > 0) await new Promise<void>((resolve) => this.#env.setTimer(ahead, resolve));
        else await yieldToEventLoop(this.#env);
      }
      return true;
    }
    if (s.ackedNext < p.produced) return false;
    await conn.send(
      encodeMessage({
        t: 'snapEnd',
        transferId: s.transferId,
        chunks: p.produced,
        records: p.records,
        bytes: p.bytes,
        checksum: p.checksum.digest(),
      }),
    );
    s.meter.phase = 'catch-up';
    this.#progress(s, true);
    s.phase = 'log';
    s.logNext = Math.max(s.logNext, s.captured.seq + 1);
    // The snapshot is acknowledged in full: its view is no longer needed.
    p.close();
    return true;
  }

  async #logStep(s: Session, conn: Connection): Promise<boolean> {
    const backlog = this.#source.backlog;
    if (!backlog.covers(s.logNext)) {
      return this.#restart(s, conn, `backlog overrun during catch-up (needs seq ${s.logNext}, starts at ${backlog.firstSeq})`);
    }
    if (s.logNext <= backlog.lastSeq) {
      const applied = Math.max(s.appliedSeq, s.captured.seq);
      if (s.logNext - 1 - applied >= this.#o.logWindow) return false;
      const entries = backlog.read(s.logNext, this.#o.logBatch);
      s.logNext += entries.length;
      await conn.send(encodeMessage({ t: 'log', transferId: s.transferId, entries }));
      return true;
    }
    if (s.phase === 'log') {
      // Everything up to the head has been sent, in this same turn: the head's digest is the one the
      // joiner will have after applying it.
      let head: StateHead;
      if (this.#source.headAfter) {
        const r = this.#source.headAfter(s.logNext - 1, this.#o.logBatch);
        if (r.entries.length > 0) {
          s.logNext += r.entries.length;
          await conn.send(encodeMessage({ t: 'log', transferId: s.transferId, entries: r.entries }));
        }
        if (!r.head) return true;
        head = r.head;
      } else head = this.#source.head();
      if (head.seq !== s.logNext - 1) {
        return this.#restart(
          s,
          conn,
          `source head ${head.seq} is not the backlog's last seq ${s.logNext - 1} (every applied entry must be appended to the backlog)`,
        );
      }
      s.phase = 'verifying';
      s.sentDigest = head.digest;
      await conn.send(encodeMessage({ t: 'caughtUp', transferId: s.transferId, seq: head.seq, digest: head.digest }));
      return true;
    }
    return false;
  }

  async #restart(s: Session, conn: Connection, reason: string): Promise<boolean> {
    this.#emit({ type: 'restart', transferId: s.transferId, nodeId: s.nodeId, reason });
    this.#dispose(s, reason);
    if (s.restarts + 1 > this.#o.maxRestarts) {
      await conn
        .send(
          encodeMessage({
            t: 'fail',
            code: 'ERR_BACKLOG_OVERRUN',
            message: `${reason}; gave up after ${s.restarts} fresh transfers`,
            retry: false,
          }),
        )
        .catch(() => {});
      void conn.close();
      return false;
    }
    const next = this.#newSession(s.nodeId, s.format, s.window, s.restarts + 1, s.encodings);
    next.conn = conn;
    s.conn = undefined;
    this.#byConn.set(conn, next);
    await conn.send(metaMessage(next, false));
    void this.#pump(next, conn);
    return false;
  }

  // ------------------------------------------------------------------ session lifetime

  #detach(s: Session, reason: string): void {
    s.conn = undefined;
    s.wake.notify();
    if (s.phase === 'done' || this.#sessions.get(s.transferId) !== s) return;
    s.expiry?.cancel();
    s.expiry = this.#env.setTimer(this.#o.resumeTimeoutMs, () => this.#dispose(s, `joiner did not come back (${reason})`));
  }

  #dispose(s: Session, reason: string): void {
    if (this.#sessions.get(s.transferId) !== s) return;
    this.#sessions.delete(s.transferId);
    s.phase = 'done';
    s.expiry?.cancel();
    s.producer.close();
    s.retained.clear();
    s.wake.notify();
    this.#emit({ type: 'session-closed', transferId: s.transferId, nodeId: s.nodeId, reason });
  }

  #progress(s: Session, force: boolean): void {
    if (this.#listeners.size === 0 || !s.meter.due(force)) return;
    this.#emit({ type: 'progress', nodeId: s.nodeId, progress: s.meter.snapshot() });
  }

  #emit(e: StateTransferServerEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // a listener's error is not the transfer's
      }
    }
  }
}
