/**
 * The client's queue of state information for the backup (claims 1/6: "sending the primary server state
 * information to the backup server"). Entries are batched for forwardDelayMs — always after the reply
 * was handed to the application — sent as one fwd, and re-sent until the backup's fwdAck or until
 * maxRetransmits re-sends (then dropped: the primary's own flush still covers them). The number of
 * entries not yet acknowledged is bounded; `whenSpace()` lets new calls wait.
 */
import type { ReplicationConfig } from './api.js';
import { codec } from './codec.js';
import type { Env, TimerHandle } from './env.js';
import type { Entry } from './messages.js';

export interface ForwardSink {
  /** Send bytes to server `index`; false when they could not be handed on. */
  send(index: 0 | 1, bytes: Uint8Array): boolean;
  /** A forward was given up (no fwdAck after maxRetransmits re-sends). */
  dropped?(target: 0 | 1, entries: number): void;
}

interface InFlight {
  fwdId: number;
  target: 0 | 1;
  count: number;
  bytes: Uint8Array;
  attempts: number;
  timer: TimerHandle;
}

export class ForwardQueue {
  readonly #env: Env;
  readonly #cfg: ReplicationConfig;
  readonly #sink: ForwardSink;
  #batch = new Map<number, Entry>();
  /** 'entries' mode: the packed entry lists of the replies since the last fwd. Each reply carries only
   * the entries not yet sent on its connection, so every list is kept (the backup skips applied ones). */
  #batchPacked: { upToSeq: number; bytes: Uint8Array; mac?: Uint8Array }[] = [];
  #batchTarget: 0 | 1 = 1;
  #batchTimer: TimerHandle | undefined;
  readonly #inFlight = new Map<number, InFlight>();
  #inFlightEntries = 0;
  #nextFwdId = 1;
  /** Highest (epoch, seq) already queued per target, to skip the overlap between successive replies. */
  readonly #queuedUpTo: [{ epoch: number; seq: number }, { epoch: number; seq: number }] = [
    { epoch: -1, seq: 0 },
    { epoch: -1, seq: 0 },
  ];
  #spaceWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #dropped = 0;

  constructor(env: Env, cfg: ReplicationConfig, sink: ForwardSink) {
    this.#env = env;
    this.#cfg = cfg;
    this.#sink = sink;
  }

  /** Forward items (entries, or packed entry lists) not yet acknowledged. */
  get pending(): number {
    return this.#batchSize() + this.#inFlightEntries;
  }

  #batchSize(): number {
    return this.#batch.size + this.#batchPacked.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get isFull(): boolean {
    return this.pending >= this.#cfg.maxPendingForwards;
  }

  whenSpace(): Promise<void> {
    if (!this.isFull) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  whenDrained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Queue a reply's packed entry list ('entries' mode) for server `target`, with the primary's MAC
   * over it when the replicas have a cluster key (relayed as is: the backup verifies it). */
  enqueuePacked(target: 0 | 1, seq: number, bytes: Uint8Array, mac?: Uint8Array): void {
    if (bytes.length <= 1) return; // an empty list (0x90): everything was sent with earlier replies
    if (this.#batchSize() > 0 && target !== this.#batchTarget) this.#sendBatch();
    this.#batchTarget = target;
    this.#batchPacked.push(mac === undefined ? { upToSeq: seq, bytes } : { upToSeq: seq, bytes, mac });
    this.#armBatch();
  }

  #armBatch(): void {
    if (this.#batchSize() >= this.#cfg.flushMaxEntries) {
      this.#sendBatch();
    } else if (this.#batchTimer === undefined) {
      this.#batchTimer = this.#env.setTimer(this.#cfg.forwardDelayMs, () => {
        this.#batchTimer = undefined;
        this.#sendBatch();
      });
    }
  }

  /** Queue entries for server `target`; sent after forwardDelayMs or when the batch is full. */
  enqueue(target: 0 | 1, entries: readonly Entry[]): void {
    if (this.#batchSize() > 0 && target !== this.#batchTarget) this.#sendBatch();
    this.#batchTarget = target;
    const upTo = this.#queuedUpTo[target];
    for (const e of entries) {
      if (e.epoch === upTo.epoch && e.seq <= upTo.seq && !this.#batch.has(e.seq)) continue;
      this.#batch.set(e.seq, e);
      if (e.epoch > upTo.epoch || (e.epoch === upTo.epoch && e.seq > upTo.seq)) {
        upTo.epoch = e.epoch;
        upTo.seq = e.seq;
      }
    }
    if (this.#batch.size === 0) return;
    this.#armBatch();
  }

  /**
   * The primary's connection was reset or closed (its process may be dead, and the backup may take over
   * after a short grace): send the batch now rather than after forwardDelayMs, and send every forward
   * not yet acknowledged once more (its re-send timer keeps running).
   */
  pushNow(): void {
    for (const f of this.#inFlight.values()) this.#sink.send(f.target, f.bytes);
    this.#sendBatch();
  }

  onAck(fwdId: number): void {
    const f = this.#inFlight.get(fwdId);
    if (f === undefined) return;
    f.timer.cancel();
    this.#inFlight.delete(fwdId);
    this.#inFlightEntries -= f.count;
    this.#notify();
  }

  close(): void {
    this.#batchTimer?.cancel();
    this.#batchTimer = undefined;
    this.#batch.clear();
    this.#batchPacked = [];
    for (const f of this.#inFlight.values()) f.timer.cancel();
    this.#inFlight.clear();
    this.#inFlightEntries = 0;
    this.#notify();
  }

  #sendBatch(): void {
    this.#batchTimer?.cancel();
    this.#batchTimer = undefined;
    const count = this.#batchSize();
    if (count === 0) return;
    const entries = [...this.#batch.values()];
    this.#batch = new Map();
    const packed = this.#batchPacked;
    if (packed.length > 0) this.#batchPacked = [];
    const fwdId = this.#nextFwdId++;
    const bytes = codec.encode(packed.length === 0 ? { t: 'fwd', fwdId, entries } : { t: 'fwd', fwdId, entries, packed });
    const f: InFlight = { fwdId, target: this.#batchTarget, count, bytes, attempts: 0, timer: undefined as unknown as TimerHandle };
    this.#inFlight.set(fwdId, f);
    this.#inFlightEntries += f.count;
    this.#transmit(f);
  }

  #transmit(f: InFlight): void {
    this.#sink.send(f.target, f.bytes);
    f.timer = this.#env.setTimer(this.#cfg.ackTimeoutMs, () => this.#onTimeout(f));
  }

  #onTimeout(f: InFlight): void {
    if (!this.#inFlight.has(f.fwdId)) return;
    f.attempts++;
    if (f.attempts > this.#cfg.maxRetransmits) {
      // The backup is considered faulty for this forward; the primary's flush still covers it.
      this.#inFlight.delete(f.fwdId);
      this.#inFlightEntries -= f.count;
      this.#dropped += f.count;
      this.#env.logger.log('warn', 'forward-dropped', { fwdId: f.fwdId, entries: f.count, target: f.target });
      this.#sink.dropped?.(f.target, f.count);
      this.#notify();
      return;
    }
    this.#transmit(f);
  }

  #notify(): void {
    if (this.#spaceWaiters.length > 0 && !this.isFull) {
      const w = this.#spaceWaiters;
      this.#spaceWaiters = [];
      for (const r of w) r();
    }
    if (this.#drainWaiters.length > 0 && this.pending === 0) {
      const w = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const r of w) r();
    }
  }
}
