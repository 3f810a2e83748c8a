/**
 * One joiner's transfer as the server keeps it: the state captured at S, the chunks produced and not
 * yet acknowledged, where sending and acknowledging stand, and the phase. What the server agrees to
 * when a joiner opens (format, window, slice encodings), when a joiner may resume a session, and the
 * bookkeeping of an acknowledgement are here; the StateTransferServer (server.ts) drives sessions.
 */
import type { Connection } from '@tandem/transport';
import type { BacklogView } from '../backlog.js';
import { PACKED_RECORDS, TEXT_SLICES } from '../maps/record-codec.js';
import type { TransferFormat } from '../migrations.js';
import type { CapturedState, TransferSource } from '../source.js';
import type { ChunkProducer } from './chunk-producer.js';
import { encodeMessage, type ChunkMsg, type OpenMsg } from './messages.js';
import type { ProgressMeter } from './progress.js';
import { WakeSignal } from './wake.js';

export type SessionPhase = 'snapshot' | 'log' | 'verifying' | 'following' | 'done';

/** What the joiner can decode beyond legacy msgpack slices (from its open.encodings). */
export interface SliceEncodings {
  framedSlices: boolean;
  packedSlices: boolean;
}

export interface Session {
  transferId: string;
  nodeId: string;
  format: TransferFormat;
  window: number;
  captured: CapturedState;
  encodings: SliceEncodings;
  producer: ChunkProducer;
  /** Chunks produced but not yet acknowledged (index ≥ ackedNext). */
  retained: Map<number, ChunkMsg>;
  sentNext: number;
  ackedNext: number;
  phase: SessionPhase;
  logNext: number;
  appliedSeq: number;
  /** The digest sent with caughtUp. */
  sentDigest: string;
  restarts: number;
  conn: Connection | undefined;
  wake: WakeSignal;
  expiry: { cancel(): void } | undefined;
  meter: ProgressMeter;
  /** env.now() when the snapshot started being sent (for pacing). */
  sendStartedAt: number;
  sentBytes: number;
}

/** The terms of a transfer the server offers a joiner's `open`, or why it refuses (never retried). */
export type OpenTerms =
  | { format: TransferFormat; window: number; encodings: SliceEncodings }
  | { refused: { code: string; message: string } };

export function negotiate(m: OpenMsg, src: TransferSource, maxWindow: number): OpenTerms {
  const refused = (code: string, message: string): OpenTerms => ({ refused: { code, message } });
  if (m.service !== src.serviceName) return refused('ERR_SERVICE_MISMATCH', `this replica serves "${src.serviceName}", not "${m.service}"`);
  if (m.version < src.version)
    return refused('ERR_VERSION_MISMATCH', `state version ${src.version} is newer than the joiner's ${m.version}; upgrade the joiner`);
  const usable = m.formats.filter((f) => f.minVersion <= src.version);
  if (usable.length === 0)
    return refused(
      'ERR_VERSION_MISMATCH',
      `state version ${src.version} is older than the joiner can migrate from (${Math.min(...m.formats.map((f) => f.minVersion))})`,
    );
  const format = usable.map((f) => f.format).find((f) => f === 'blob' || src.canStreamRecords);
  if (!format) return refused('ERR_FORMAT', `no common transfer format (joiner: ${m.formats.map((f) => f.format).join(',')})`);
  const framed = m.encodings?.includes(TEXT_SLICES) === true;
  return {
    format,
    window: Math.min(m.window, maxWindow),
    encodings: { framedSlices: framed, packedSlices: framed && m.encodings?.includes(PACKED_RECORDS) === true },
  };
}

export function createSession(init: {
  transferId: string;
  nodeId: string;
  format: TransferFormat;
  window: number;
  captured: CapturedState;
  encodings: SliceEncodings;
  producer: ChunkProducer;
  meter: ProgressMeter;
  restarts: number;
  now: number;
}): Session {
  return {
    transferId: init.transferId,
    nodeId: init.nodeId,
    format: init.format,
    window: init.window,
    captured: init.captured,
    encodings: init.encodings,
    producer: init.producer,
    retained: new Map(),
    sentNext: 0,
    ackedNext: 0,
    phase: 'snapshot',
    logNext: init.captured.seq + 1,
    appliedSeq: 0,
    sentDigest: '',
    restarts: init.restarts,
    conn: undefined,
    wake: new WakeSignal(),
    expiry: undefined,
    meter: init.meter,
    sendStartedAt: init.now,
    sentBytes: 0,
  };
}

/** Whether a joiner that resumes at (nextChunk, appliedSeq) can continue this session. */
export function canResume(s: Session, nextChunk: number, appliedSeq: number, backlog: BacklogView): boolean {
  if (s.phase === 'done') return false;
  if (appliedSeq >= s.captured.seq && appliedSeq > 0) {
    // Installed: continue the log if the backlog still has it.
    return nextChunk === s.producer.produced && s.producer.exhausted && backlog.covers(appliedSeq + 1);
  }
  return nextChunk >= s.ackedNext && nextChunk <= s.producer.produced;
}

/** Send from where a resuming joiner stands (after its acknowledgement was taken). */
export function resumePosition(s: Session, nextChunk: number, appliedSeq: number): void {
  s.sentNext = nextChunk;
  if (appliedSeq >= s.captured.seq && appliedSeq > 0) {
    s.phase = s.phase === 'following' ? 'following' : 'log';
    s.logNext = appliedSeq + 1;
  } else {
    s.phase = 'snapshot';
  }
}

/** The joiner holds the chunks before `nextChunk` and applied the log up to `appliedSeq`: release them, count. */
export function acknowledge(s: Session, nextChunk: number, appliedSeq: number): void {
  if (nextChunk > s.ackedNext) {
    for (let i = s.ackedNext; i < nextChunk; i++) {
      const c = s.retained.get(i);
      if (!c) continue;
      s.retained.delete(i);
      s.producer.release(c);
    }
    s.ackedNext = nextChunk;
    if (s.sentNext < nextChunk) s.sentNext = nextChunk;
  }
  if (appliedSeq > s.appliedSeq) {
    s.meter.entries += appliedSeq - Math.max(s.appliedSeq, s.captured.seq);
    s.appliedSeq = appliedSeq;
  }
  s.meter.bytes = 0;
  // bytes acknowledged = sum of produced bytes minus what is still retained
  let pending = 0;
  for (const c of s.retained.values()) pending += c.data.length;
  s.meter.bytes = s.producer.bytes - pending;
  s.meter.records = s.producer.records;
}

/** The `meta` message that starts (or resumes) a session on a connection. */
export function metaMessage(s: Session, resumed: boolean): Uint8Array {
  return encodeMessage({
    t: 'meta',
    transferId: s.transferId,
    resumed,
    seq: s.captured.seq,
    epoch: s.captured.epoch,
    version: s.captured.version,
    format: s.format,
    ...(s.producer.totalRecords !== undefined ? { totalRecords: s.producer.totalRecords } : {}),
    startChunk: s.sentNext,
  });
}
