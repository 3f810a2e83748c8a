/**
 * The primary's side of the flush protocol, without I/O: the log of entries the backup has not
 * acknowledged, which entries the next flush carries, re-sends after ackTimeoutMs, the peer-faulty
 * decision after maxRetransmits re-sends, trimming on flushAck, and the lease the acks renew.
 */
import type { ReplicationConfig } from './api.js';
import { invariant } from './errors.js';
import type { Entry, FlushAck } from './messages.js';
import { UnackedLog } from './unacked-log.js';

export type FlushPlan =
  | { kind: 'flush'; flushId: number; entries: Entry[]; retransmit: boolean }
  /** maxRetransmits re-sends went unacknowledged: the backup is faulty. */
  | { kind: 'faulty' }
  /** A joiner sent no first ack (it installs the state copy first) within the join timeout. */
  | { kind: 'join-timeout' };

interface Outstanding {
  flushId: number;
  sentAt: number;
  /** Highest seq the backup holds once this flush and every earlier one arrived. */
  upToSeq: number;
}

export class FlushTracker {
  readonly log = new UnackedLog();
  /** Highest seq the backup acknowledged (applied). */
  ackedSeq = 0;
  /** Highest seq sent in a flush. */
  flushedSeq = 0;
  /** The primary may answer while now < leaseUntil (role 'primary' only). */
  leaseUntil = 0;
  /** Bumped whenever the log restarts (a join, a drop): per-connection piggyback marks older than it are void. */
  generation = 0;
  /** When the last acknowledged flush was sent (or the state copy, for a joiner): the drop deadline counts from it. */
  lastAckedSentAt = 0;
  /** When the backup's last acknowledgement (of anything) arrived: silence is counted from it. */
  lastAckAt = 0;
  /** A joiner installs the state copy before it can ack anything: its ack clock has not started yet. */
  #awaitingJoinAck = false;
  #joinStartedAt = 0;
  readonly #joinTimeoutMs: number;
  #outstanding: Outstanding[] = [];
  #nextFlushId = 1;
  /** The round trip of the flush the last ack acknowledged (ms), or -1 when it matched no flush sent. */
  lastAckRttMs = -1;
  #retransmits = 0;
  #lastRetransmitAt = 0;
  readonly #cfg: ReplicationConfig;
  readonly #leaseMs: number;
  readonly #maxOutstanding: number;
  readonly #faultyAfterMs: number;

  /** `faultyAfterMs`: silence (no acknowledgement at all) before the backup may be declared faulty
   * (peerFaultyMs); 0 = after maxRetransmits re-sends alone. */
  constructor(cfg: ReplicationConfig, leaseMs: number, joinTimeoutMs = Number.POSITIVE_INFINITY, faultyAfterMs = 0) {
    this.#cfg = cfg;
    this.#leaseMs = leaseMs;
    this.#joinTimeoutMs = joinTimeoutMs;
    this.#faultyAfterMs = faultyAfterMs;
    // flushes that can be unacknowledged at once before the peer is faulty, with room for count flushes
    this.#maxOutstanding = 4 * (cfg.maxRetransmits + 2) * Math.ceil(cfg.ackTimeoutMs / cfg.flushIntervalMs + 1);
  }

  get retransmits(): number {
    return this.#retransmits;
  }

  /**
   * A backup joins from a snapshot at `seq` sent now: keep every entry after it; the snapshot grants a
   * lease (the joiner's takeover clock starts no earlier than its arrival). With `joining`, the ack clock
   * starts only at the joiner's first ack (sent once it installed the copy): re-sends before it do not
   * count towards "faulty"; `joinTimeoutMs` without that ack gives a 'join-timeout' plan instead.
   */
  reset(seq: number, now: number, joining = false): void {
    this.clear();
    this.ackedSeq = seq;
    this.flushedSeq = seq;
    this.leaseUntil = now + this.#leaseMs;
    this.lastAckedSentAt = now;
    this.lastAckAt = now;
    this.#awaitingJoinAck = joining;
    this.#joinStartedAt = now;
  }

  /** True while a joiner has not acknowledged anything yet (it is still installing the state copy). */
  get awaitingJoinAck(): boolean {
    return this.#awaitingJoinAck;
  }

  clear(): void {
    this.generation++;
    this.log.clear();
    this.stopFlushing();
  }

  /** No more flushes (the backup was dropped): forget what is outstanding, keep the log and its marks
   * (a solo primary still piggybacks it for the dropped replica, docs/PROTOCOL.md "Follower"). */
  stopFlushing(): void {
    this.#outstanding = [];
    this.#retransmits = 0;
    this.#awaitingJoinAck = false;
  }

  /** Unacknowledged entries at which new requests wait for the backup (flow control, not eviction). */
  get flowControlled(): boolean {
    return this.log.size >= Math.max(this.#cfg.flushMaxEntries, Math.floor(this.#cfg.maxUnackedEntries / 2));
  }

  /**
   * The backup counts as faulty: more than maxRetransmits re-sends went unacknowledged AND nothing at all
   * was heard from it for faultyAfterMs. A busy backup that acknowledges late is slow, not faulty.
   */
  silentTooLong(now: number): boolean {
    return this.#retransmits > this.#cfg.maxRetransmits && now - this.lastAckAt >= this.#faultyAfterMs;
  }

  append(entry: Entry): void {
    const last = this.log.lastSeq ?? this.ackedSeq;
    invariant(entry.seq === last + 1, 'log-consecutive', () => `appending seq ${entry.seq} after ${last}`);
    this.log.push(entry);
  }

  /** True when `flushMaxEntries` entries are unflushed (claims 5/10). */
  get countFlushDue(): boolean {
    const last = this.log.lastSeq;
    return last !== undefined && last - this.flushedSeq >= this.#cfg.flushMaxEntries;
  }

  get overflowing(): boolean {
    return this.log.size > this.#cfg.maxUnackedEntries;
  }

  leaseValid(now: number): boolean {
    return now < this.leaseUntil;
  }

  /** A new connection to the backup: the next flush re-sends everything unacknowledged. */
  resendAll(): void {
    this.flushedSeq = this.ackedSeq;
  }

  /**
   * What the next flush carries: the unflushed entries (none = heartbeat), or — when the oldest flush
   * has waited ackTimeoutMs for its ack — every unacknowledged entry, counted as a re-send.
   */
  plan(now: number): FlushPlan {
    if (this.#awaitingJoinAck) {
      if (now - this.#joinStartedAt >= this.#joinTimeoutMs) return { kind: 'join-timeout' };
      // Keep flushing (the joiner reads them once installed) but count nothing against it yet.
      return { kind: 'flush', flushId: this.#nextFlushId++, entries: this.log.range(this.flushedSeq), retransmit: false };
    }
    const oldest = this.#outstanding[0];
    let from = this.flushedSeq;
    let retransmit = false;
    if (oldest !== undefined && now - oldest.sentAt >= this.#cfg.ackTimeoutMs && now - this.#lastRetransmitAt >= this.#cfg.ackTimeoutMs) {
      // Counting re-sends actually made (not elapsed time) keeps a primary that was paused from
      // declaring its backup faulty merely because it was stopped.
      this.#retransmits++;
      this.#lastRetransmitAt = now;
      if (this.silentTooLong(now)) return { kind: 'faulty' };
      from = this.ackedSeq;
      retransmit = true;
    }
    return { kind: 'flush', flushId: this.#nextFlushId++, entries: this.log.range(from), retransmit };
  }

  /** The planned flush was handed to the connection. */
  sent(flushId: number, now: number): void {
    const last = this.log.lastSeq;
    if (last !== undefined && last > this.flushedSeq) this.flushedSeq = last;
    if (this.#outstanding.length < this.#maxOutstanding) this.#outstanding.push({ flushId, sentAt: now, upToSeq: this.flushedSeq });
  }

  /** The backup acknowledged: trim, renew the lease from the acknowledged flush's send time. */
  acked(ack: FlushAck, now: number): void {
    const before = this.ackedSeq;
    this.#acked(ack, now);
    invariant(
      this.ackedSeq >= before && this.flushedSeq >= this.ackedSeq,
      'acked-forward',
      () => `ackedSeq ${before} → ${this.ackedSeq}, flushedSeq ${this.flushedSeq}`,
    );
  }

  #acked(ack: FlushAck, now: number): void {
    this.lastAckAt = Math.max(this.lastAckAt, now);
    this.lastAckRttMs = -1;
    if (this.#awaitingJoinAck) {
      // The joiner's first ack: it installed the copy. Its ack clock starts now; flushes it may have
      // discarded while installing are forgotten and everything unacknowledged goes out again.
      this.#awaitingJoinAck = false;
      this.#outstanding = [];
      this.#retransmits = 0;
      if (ack.upToSeq > this.ackedSeq) {
        this.ackedSeq = ack.upToSeq;
        this.log.trimTo(ack.upToSeq);
      }
      this.flushedSeq = this.ackedSeq;
      return;
    }
    let sentAt: number | undefined;
    let expected: number | undefined;
    while (this.#outstanding.length > 0 && this.#outstanding[0]!.flushId <= ack.flushId) {
      const o = this.#outstanding.shift()!;
      if (o.flushId === ack.flushId) {
        sentAt = o.sentAt;
        expected = o.upToSeq;
      }
    }
    if (ack.upToSeq > this.ackedSeq) {
      this.ackedSeq = ack.upToSeq;
      this.log.trimTo(ack.upToSeq);
      if (this.flushedSeq < this.ackedSeq) this.flushedSeq = this.ackedSeq;
    }
    // The backup acknowledged this flush but is behind what it carried: an earlier flush was lost.
    // Re-send everything unacknowledged with the next flush.
    if (expected !== undefined && ack.upToSeq < expected) this.flushedSeq = this.ackedSeq;
    this.#retransmits = 0;
    if (sentAt !== undefined) {
      this.lastAckRttMs = Math.max(0, now - sentAt);
      this.leaseUntil = Math.max(this.leaseUntil, sentAt + this.#leaseMs);
      this.lastAckedSentAt = Math.max(this.lastAckedSentAt, sentAt);
    }
  }
}
