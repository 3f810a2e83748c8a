/**
 * The joining side of state transfer: dials the serving replica, receives the snapshot chunk by chunk
 * (checking each chunk's CRC and the whole-state checksum, migrating older versions), installs it,
 * applies the log after the snapshot, and verifies its digest against the server's at an agreed seq.
 * A dropped connection is resumed from the last acknowledged chunk or log entry; a corrupted chunk is
 * asked for again; a bad whole-state checksum, a digest mismatch or a backlog overrun start a fresh
 * transfer (bounded by `maxRestarts`).
 */
import { Buffer } from 'node:buffer';
import type { Connection } from '@tandem/transport';
import type { LogEntry } from '../backlog.js';
import { chunkChecksum, WholeStateChecksum } from './checksum.js';
import { unpack } from '../codec.js';
import {
  decodeRecordSlices,
  isPackedSlice,
  isTextSlice,
  PACKED_RECORDS,
  sliceItems,
  TEXT_SLICES,
  type RecordSlice,
} from '../maps/record-codec.js';
import type { TransferEnv } from '../env.js';
import {
  ChecksumMismatchError,
  DigestMismatchError,
  isStateTransferError,
  TransferAbortedError,
  TransferFailedError,
  TransferProtocolError,
} from '../errors.js';
import { decodeMessage, encodeMessage, type ChunkMsg, type MetaMsg, type SnapEndMsg, type TransferMessage } from './messages.js';
import { joinerFormats, migrateRecords, migrateSnapshot, migrationPath, type TransferFormat } from '../migrations.js';
import { ProgressMeter, type TransferProgress } from './progress.js';
import type { TransferSink } from '../source.js';
import { serviceVersion, supportsChunks, type StateBuilder, type StateMigration, type TransferableService } from '../transferable.js';

/** Options of a StateTransferClient: the joiner's service and sink, the server to fetch from, window, reconnects, timeouts, following. */
export interface StateTransferClientOptions<State> {
  env: TransferEnv;
  service: TransferableService<State>;
  sink: TransferSink<State>;
  /** This replica's id (the server keys resumable sessions by it). */
  nodeId: string;
  /** The serving replica's state-transfer address (dialled with env.network)… */
  address?: string;
  /** …or a function that opens a connection to it. */
  dial?: () => Promise<Connection>;
  /** Window of unacknowledged chunks (default 8; the server may lower it). */
  window?: number;
  /** Consecutive failed (re)connections before giving up (default 20). */
  maxReconnects?: number;
  reconnectDelayMs?: number;
  /** No message for this long → the connection is dropped and resumed (default 15 000 ms). */
  idleTimeoutMs?: number;
  /** Fresh transfers after a bad whole-state checksum, digest mismatch or backlog overrun (default 3). */
  maxRestarts?: number;
  /** After verification keep applying the server's new log entries until close() (default false). */
  follow?: boolean;
  progressIntervalMs?: number;
}

/** The outcome of a completed join: the seq where digests matched, the format and versions, and what was moved and how often it resumed. */
export interface JoinResult {
  transferId: string;
  /** The seq at which the digests were compared and found equal. */
  seq: number;
  digest: string;
  /** The snapshot's seq S. */
  snapshotSeq: number;
  format: TransferFormat;
  /** Version the server sent, and this replica's version (different = migrated). */
  sourceVersion: number;
  version: number;
  bytes: number;
  records: number;
  /** Log entries applied after the snapshot up to verification. */
  entries: number;
  resumes: number;
  restarts: number;
  elapsedMs: number;
}

/**
 * What a StateTransferClient reports while joining: progress, metadata, corrupt chunks, lost connections, restarts, installed,
 * verified, errors.
 */
export type StateTransferClientEvent =
  | { type: 'progress'; progress: TransferProgress }
  | { type: 'meta'; transferId: string; seq: number; version: number; format: TransferFormat; resumed: boolean; startChunk: number }
  | { type: 'corrupt-chunk'; transferId: string; index: number; expectedCrc: number; actualCrc: number }
  | { type: 'connection-lost'; transferId: string | undefined; nextChunk: number; appliedSeq: number; reason: string }
  | { type: 'restart'; reason: string }
  | { type: 'installed'; seq: number; version: number; sourceVersion: number }
  | { type: 'verified'; seq: number; digest: string }
  | { type: 'error'; error: Error };

type Outcome = 'continue' | 'done' | 'fresh' | 'drop';

interface Receiving<State> {
  meta: MetaMsg;
  steps: StateMigration[];
  builder: StateBuilder<State> | undefined;
  blobParts: Uint8Array[];
  auxParts: Uint8Array[];
  checksum: WholeStateChecksum;
  nextChunk: number;
  nackedFor: number | undefined;
  installed: boolean;
  appliedSeq: number;
  verified: boolean;
}

/** The joining side of state transfer: fetches a snapshot and the backlog after it from a server, installs them, and verifies digests. */
export class StateTransferClient<State> {
  readonly #o: StateTransferClientOptions<State>;
  readonly #env: TransferEnv;
  readonly #listeners = new Set<(e: StateTransferClientEvent) => void>();
  readonly #meter: ProgressMeter;
  readonly #startedAt: number;
  #rx: Receiving<State> | undefined;
  #conn: Connection | undefined;
  #closed = false;
  #running: Promise<JoinResult> | undefined;
  #loopDone: Promise<void> | undefined;
  #resolve!: (r: JoinResult) => void;
  #reject!: (e: Error) => void;
  #result: JoinResult | undefined;
  #restarts = 0;

  constructor(options: StateTransferClientOptions<State>) {
    if (!options.address && !options.dial) throw new TypeError('StateTransferClient needs an address or a dial function');
    this.#o = options;
    this.#env = options.env;
    this.#meter = new ProgressMeter(() => this.#env.now(), options.progressIntervalMs ?? 250);
    this.#startedAt = this.#env.now();
  }

  /** Subscribe to the client's events; returns a function that unsubscribes. */
  on(listener: (e: StateTransferClientEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Transfer, catch up and verify. Resolves once verified (with `follow`, applying continues until close()). */
  run(): Promise<JoinResult> {
    if (this.#running) return this.#running;
    this.#running = new Promise<JoinResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#loopDone = this.#loop().then(
      () => {
        if (!this.#result) this.#reject(new TransferAbortedError());
      },
      (err: Error) => {
        if (this.#result) this.#emit({ type: 'error', error: err });
        else this.#reject(err);
      },
    );
    return this.#running;
  }

  /** Stop (a follower stops following). A transfer not yet verified rejects with TransferAbortedError. */
  async close(): Promise<void> {
    this.#closed = true;
    const c = this.#conn;
    if (c) await c.close('state transfer client closed').catch(() => {});
    await this.#loopDone;
  }

  // ------------------------------------------------------------------ connection loop

  async #loop(): Promise<void> {
    let failures = 0;
    const maxReconnects = this.#o.maxReconnects ?? 20;
    const delay = this.#o.reconnectDelayMs ?? 100;
    while (!this.#closed) {
      let conn: Connection;
      try {
        conn = this.#o.dial ? await this.#o.dial() : await this.#env.network.dial(this.#o.address!);
      } catch (err) {
        if (++failures > maxReconnects)
          throw new TransferFailedError(`could not reach the serving replica: ${(err as Error).message}`, { cause: err });
        await this.#sleep(delay);
        continue;
      }
      if (this.#closed) {
        conn.abort();
        break;
      }
      this.#conn = conn;
      const before = this.#progressMark();
      const outcome = await this.#session(conn);
      this.#conn = undefined;
      if (outcome === 'done' || this.#closed) break;
      if (this.#progressMark() !== before) failures = 0;
      if (outcome === 'fresh') {
        if (++this.#restarts > (this.#o.maxRestarts ?? 3))
          throw new TransferFailedError(`gave up after ${this.#restarts - 1} fresh transfers`);
        this.#meter.restarts = this.#restarts;
        this.#rx = undefined;
        continue;
      }
      const rx = this.#rx;
      this.#emit({
        type: 'connection-lost',
        transferId: rx?.meta.transferId,
        nextChunk: rx?.nextChunk ?? 0,
        appliedSeq: rx?.appliedSeq ?? 0,
        reason: (await conn.closed).reason,
      });
      if (++failures > maxReconnects) throw new TransferFailedError(`connection lost ${failures} times without progress`);
      if (rx) this.#meter.resumes++;
      await this.#sleep(delay);
    }
  }

  #progressMark(): string {
    const rx = this.#rx;
    return rx ? `${rx.meta.transferId}:${rx.nextChunk}:${rx.appliedSeq}` : '';
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#env.setTimer(ms, resolve));
  }

  async #session(conn: Connection): Promise<Outcome> {
    const svc = this.#o.service;
    const version = serviceVersion(svc);
    const formats = joinerFormats(svc);
    const rx = this.#rx;
    const resumable = rx && !rx.verified ? rx : rx?.verified && this.#o.follow ? rx : undefined;
    void conn
      .send(
        encodeMessage({
          t: 'open',
          service: svc.name,
          nodeId: this.#o.nodeId,
          version,
          formats,
          window: Math.max(1, Math.min(1024, this.#o.window ?? 8)),
          encodings: [TEXT_SLICES, PACKED_RECORDS],
          ...(resumable
            ? { resume: { transferId: resumable.meta.transferId, nextChunk: resumable.nextChunk, appliedSeq: resumable.appliedSeq } }
            : {}),
        }),
      )
      .catch(() => {});
    const idleMs = this.#o.idleTimeoutMs ?? 15_000;
    // A silent server is dropped and resumed — except once verified and following (no writes = no messages).
    const onIdle = (): void => {
      if (this.#rx?.verified) idle = this.#env.setTimer(idleMs, onIdle);
      else conn.abort(new Error('state transfer: server idle'));
    };
    let idle = this.#env.setTimer(idleMs, onIdle);
    try {
      for await (const bytes of conn) {
        idle.cancel();
        idle = this.#env.setTimer(idleMs, onIdle);
        let msg: TransferMessage;
        try {
          msg = decodeMessage(bytes);
        } catch (err) {
          // Garbage on the wire: drop the connection and resume from the last good chunk.
          conn.abort(err as Error);
          return 'drop';
        }
        let outcome: Outcome;
        try {
          outcome = this.#handle(conn, msg);
        } catch (err) {
          const e = err as Error & { code?: string };
          if (isStateTransferError(e, 'TransferProtocolError')) {
            conn.abort(e);
            return 'drop';
          }
          void conn.send(encodeMessage({ t: 'fail', code: e.code ?? 'ERR_JOINER', message: e.message, retry: false })).catch(() => {});
          void conn.close();
          // A state that passed its checksums but does not decode or install (a builder, the service's
          // restore or the sink refused it) fails the transfer with a typed error, the original as cause.
          if (isStateTransferError(e)) throw e;
          throw new TransferFailedError(`the received state could not be installed: ${e.name}: ${e.message}`, { cause: e });
        }
        if (outcome === 'continue') continue;
        if (outcome === 'done') {
          await conn.close('state transfer complete');
          return 'done';
        }
        // A fresh start: let what we sent (verified/fail) reach the server, then drop this connection.
        await conn.close('state transfer restarts');
        return outcome;
      }
      return 'drop';
    } finally {
      idle.cancel();
    }
  }

  // ------------------------------------------------------------------ messages from the server

  #handle(conn: Connection, m: TransferMessage): Outcome {
    switch (m.t) {
      case 'meta':
        return this.#onMeta(conn, m);
      case 'chunk':
        return this.#onChunk(conn, m);
      case 'snapEnd':
        return this.#onSnapEnd(conn, m);
      case 'log': {
        const rx = this.#rx;
        if (!rx || m.transferId !== rx.meta.transferId) return 'continue';
        if (!rx.installed) throw new TransferProtocolError('log entries before the snapshot was complete');
        let i = 0;
        while (i < m.entries.length && m.entries[i]!.seq <= rx.appliedSeq) i++;
        const fresh = i === 0 ? m.entries : m.entries.slice(i);
        if (fresh.length === 0) return 'continue';
        for (let k = 0; k < fresh.length; k++) {
          if (fresh[k]!.seq !== rx.appliedSeq + 1 + k)
            throw new TransferProtocolError(`log gap: expected seq ${rx.appliedSeq + 1 + k}, got ${fresh[k]!.seq}`);
        }
        this.#o.sink.apply(fresh as LogEntry[]);
        rx.appliedSeq += fresh.length;
        this.#meter.entries += fresh.length;
        this.#ack(conn, rx);
        this.#progress(false);
        return 'continue';
      }
      case 'caughtUp': {
        const rx = this.#rx;
        if (!rx || m.transferId !== rx.meta.transferId) return 'continue';
        if (!rx.installed || m.seq !== rx.appliedSeq)
          throw new TransferProtocolError(`caughtUp at seq ${m.seq} but the joiner is at ${rx.appliedSeq}`);
        const head = this.#o.sink.head();
        const ok = head.seq === m.seq && head.digest === m.digest;
        void conn
          .send(encodeMessage({ t: 'verified', transferId: rx.meta.transferId, seq: head.seq, digest: head.digest, ok }))
          .catch(() => {});
        if (!ok) {
          const err = new DigestMismatchError(m.seq, m.digest, head.digest);
          this.#emit({ type: 'restart', reason: err.message });
          this.#emit({ type: 'error', error: err });
          return 'fresh';
        }
        if (!rx.verified) {
          rx.verified = true;
          this.#meter.phase = this.#o.follow ? 'following' : 'verified';
          this.#emit({ type: 'verified', seq: head.seq, digest: head.digest });
          this.#progress(true);
          this.#result = {
            transferId: rx.meta.transferId,
            seq: head.seq,
            digest: head.digest,
            snapshotSeq: rx.meta.seq,
            format: rx.meta.format,
            sourceVersion: rx.meta.version,
            version: serviceVersion(this.#o.service),
            bytes: this.#meter.bytes,
            records: this.#meter.records,
            entries: this.#meter.entries,
            resumes: this.#meter.resumes,
            restarts: this.#restarts,
            elapsedMs: this.#env.now() - this.#startedAt,
          };
          this.#resolve(this.#result);
        }
        return this.#o.follow ? 'continue' : 'done';
      }
      case 'fail':
        if (m.retry) {
          this.#emit({ type: 'restart', reason: `${m.code}: ${m.message}` });
          return 'fresh';
        }
        throw new TransferFailedError(`the serving replica refused the transfer: ${m.code}: ${m.message}`);
      default:
        throw new TransferProtocolError(`unexpected ${m.t} from the server`);
    }
  }

  #onMeta(conn: Connection, m: MetaMsg): Outcome {
    const rx = this.#rx;
    if (m.resumed && rx && rx.meta.transferId === m.transferId) {
      if (!rx.installed && m.startChunk !== rx.nextChunk)
        throw new TransferProtocolError(`resumed at chunk ${m.startChunk}, expected ${rx.nextChunk}`);
      this.#emit({
        type: 'meta',
        transferId: m.transferId,
        seq: m.seq,
        version: m.version,
        format: m.format,
        resumed: true,
        startChunk: m.startChunk,
      });
      return 'continue';
    }
    if (rx) {
      this.#restarts++;
      this.#meter.restarts = this.#restarts;
      this.#emit({ type: 'restart', reason: 'the server started a fresh transfer' });
      if (this.#restarts > (this.#o.maxRestarts ?? 3) + 1)
        throw new TransferFailedError(`gave up after ${this.#restarts - 1} fresh transfers`);
    }
    const svc = this.#o.service;
    const steps = migrationPath(svc as TransferableService<unknown>, m.version, m.format);
    if (m.format === 'records' && !supportsChunks(svc))
      throw new TransferProtocolError('records format offered to a service without restoreChunks');
    this.#rx = {
      meta: m,
      steps,
      builder: m.format === 'records' ? svc.restoreChunks!() : undefined,
      blobParts: [],
      auxParts: [],
      checksum: new WholeStateChecksum(),
      nextChunk: 0,
      nackedFor: undefined,
      installed: false,
      appliedSeq: 0,
      verified: false,
    };
    if (m.totalRecords !== undefined && m.totalRecords > 0) this.#rx.builder?.expect?.(m.totalRecords);
    this.#meter.restart(m.transferId, m.totalRecords);
    this.#meter.resumes = 0;
    this.#emit({ type: 'meta', transferId: m.transferId, seq: m.seq, version: m.version, format: m.format, resumed: false, startChunk: 0 });
    this.#progress(true);
    void conn;
    return 'continue';
  }

  #onChunk(conn: Connection, m: ChunkMsg): Outcome {
    const rx = this.#rx;
    if (!rx || m.transferId !== rx.meta.transferId || rx.installed) return 'continue';
    if (m.index !== rx.nextChunk) return 'continue'; // in flight behind a chunk we asked again for
    const crc = chunkChecksum(m.data);
    if (crc !== m.crc) {
      this.#emit({ type: 'corrupt-chunk', transferId: m.transferId, index: m.index, expectedCrc: m.crc, actualCrc: crc });
      if (rx.nackedFor !== m.index) {
        rx.nackedFor = m.index;
        void conn
          .send(encodeMessage({ t: 'nack', transferId: m.transferId, index: m.index, reason: `crc ${crc} != ${m.crc}` }))
          .catch(() => {});
      }
      return 'continue';
    }
    if (m.section === 'state') {
      if (rx.builder) {
        let slices: RecordSlice[];
        try {
          slices = decodeRecordSlices(m.data);
        } catch (err) {
          throw new TransferProtocolError(`chunk ${m.index}: undecodable records: ${(err as Error).message}`, { cause: err });
        }
        const b = rx.builder;
        for (const slice of slices) {
          if (rx.steps.length === 0 && b.addPacked && isPackedSlice(slice)) b.addPacked(slice);
          else if (rx.steps.length === 0 && b.addText && isTextSlice(slice)) b.addText(slice);
          else b.add(migrateRecords(sliceItems(slice), rx.steps, b.recordWidth ?? 1));
        }
      } else {
        rx.blobParts.push(m.data);
      }
    } else {
      rx.auxParts.push(m.data);
    }
    rx.checksum.add(crc, m.data.length);
    rx.nextChunk++;
    rx.nackedFor = undefined;
    this.#meter.bytes += m.data.length;
    this.#meter.records += m.records;
    this.#ack(conn, rx);
    this.#progress(false);
    return 'continue';
  }

  #onSnapEnd(conn: Connection, m: SnapEndMsg): Outcome {
    const rx = this.#rx;
    if (!rx || m.transferId !== rx.meta.transferId || rx.installed) return 'continue';
    if (m.chunks !== rx.nextChunk) throw new TransferProtocolError(`snapEnd after ${m.chunks} chunks, joiner has ${rx.nextChunk}`);
    const mine = rx.checksum.digest();
    if (mine !== m.checksum) {
      const err = new ChecksumMismatchError(`whole-state checksum ${mine} != server's ${m.checksum} (${m.chunks} chunks)`);
      this.#emit({ type: 'restart', reason: err.message });
      this.#emit({ type: 'error', error: err });
      return 'fresh';
    }
    const svc = this.#o.service;
    let state: State;
    if (rx.builder) {
      state = rx.builder.finish();
    } else {
      const blob = rx.blobParts.length === 1 ? rx.blobParts[0]! : Buffer.concat(rx.blobParts);
      rx.blobParts = [];
      state = svc.restore(migrateSnapshot(unpack(blob), rx.steps));
    }
    const aux = rx.auxParts.length === 0 ? undefined : unpack(rx.auxParts.length === 1 ? rx.auxParts[0]! : Buffer.concat(rx.auxParts));
    rx.auxParts = [];
    const version = serviceVersion(svc);
    this.#o.sink.install({ seq: rx.meta.seq, epoch: rx.meta.epoch, version, sourceVersion: rx.meta.version, state, aux });
    rx.installed = true;
    rx.builder = undefined;
    rx.appliedSeq = rx.meta.seq;
    this.#meter.phase = 'catch-up';
    this.#emit({ type: 'installed', seq: rx.meta.seq, version, sourceVersion: rx.meta.version });
    this.#ack(conn, rx);
    this.#progress(true);
    return 'continue';
  }

  #ack(conn: Connection, rx: Receiving<State>): void {
    void conn
      .send(
        encodeMessage({ t: 'ack', transferId: rx.meta.transferId, nextChunk: rx.nextChunk, appliedSeq: rx.installed ? rx.appliedSeq : 0 }),
      )
      .catch(() => {});
  }

  #progress(force: boolean): void {
    if (this.#listeners.size === 0 || !this.#meter.due(force)) return;
    this.#emit({ type: 'progress', progress: this.#meter.snapshot() });
  }

  #emit(e: StateTransferClientEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // a listener's error is not the transfer's
      }
    }
  }
}
