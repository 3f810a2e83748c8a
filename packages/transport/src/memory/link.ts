/**
 * One direction of an in-memory connection: a FIFO of messages in flight, each released after the link's
 * delay, with the network's faults (drop, duplicate, reorder, partition) applied as messages enter it.
 * Backpressure: `transmit` returns a promise while the bytes in flight exceed the receiver's high-water
 * mark or the receiver has paused its source.
 */
import { cancellable } from './faults.js';
import type { MemoryConnection } from './connection.js';
import type { MemoryNetwork } from './network.js';

interface InFlight {
  kind: 'data' | 'end';
  message: Uint8Array;
  ready: boolean;
  reorder: boolean;
}

/** How long a reordered message waits for a successor before it is delivered anyway, in ms. */
export const REORDER_HOLD_MS = 5;

export class MemoryLink {
  readonly fromHost: string;
  readonly toHost: string;
  #net: MemoryNetwork;
  #target: MemoryConnection;
  #queue: InFlight[] = [];
  #held: InFlight | undefined;
  #inFlightBytes = 0;
  #receiverPaused = false;
  #waiters: (() => void)[] = [];
  #closed = false;
  /** The sender's sendHighWaterMark: at most this many bytes in flight (and the receiver's mark). */
  sendLimit = Number.POSITIVE_INFINITY;

  constructor(net: MemoryNetwork, fromHost: string, toHost: string, target: MemoryConnection) {
    this.#net = net;
    this.fromHost = fromHost;
    this.toHost = toHost;
    this.#target = target;
  }

  /** A timer on the network's scheduler. */
  startTimer(ms: number, fn: () => void): { cancel(): void } {
    return cancellable(this.#net.schedule, ms, fn);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  transmit(message: Uint8Array): void | Promise<void> {
    if (this.#closed) return;
    const net = this.#net;
    net.stats.sent++;
    if (net.isPartitioned(this.fromHost, this.toHost)) {
      net.stats.blocked++;
      return;
    }
    const f = net.faultsFor(this.fromHost, this.toHost);
    if (f.dropRate > 0 && net.random() < f.dropRate) {
      net.stats.dropped++;
      return;
    }
    const duplicate = f.duplicateRate > 0 && net.random() < f.duplicateRate;
    const reorder = f.reorderRate > 0 && net.random() < f.reorderRate;
    this.#enqueue({ kind: 'data', message, ready: false, reorder });
    if (duplicate) {
      net.stats.duplicated++;
      this.#enqueue({ kind: 'data', message, ready: false, reorder: false });
    }
    return this.#capacity();
  }

  /** Graceful end: delivered after every message already in flight. */
  transmitEnd(): void {
    if (this.#closed) return;
    this.#enqueue({ kind: 'end', message: new Uint8Array(0), ready: false, reorder: false });
  }

  /** Abrupt end: messages in flight are lost; the peer learns after the link delay. */
  transmitReset(reason: string): void {
    if (this.#closed) return;
    this.close();
    const target = this.#target;
    cancellable(this.#net.schedule, this.#net.faultsFor(this.fromHost, this.toHost).delayMs, () => target.endFromLink(reason));
  }

  /** Network severed the link: the receiver sees it closed at once. */
  sever(reason: string): void {
    this.close();
    this.#target.endFromLink(reason);
  }

  /** Stop delivering; release a waiting sender. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#held = undefined;
    this.#inFlightBytes = 0;
    this.#release();
  }

  setReceiverPaused(paused: boolean): void {
    this.#receiverPaused = paused;
    if (!paused) {
      this.#flush();
      this.#maybeRelease();
    }
  }

  #enqueue(entry: InFlight): void {
    const f = this.#net.faultsFor(this.fromHost, this.toHost);
    const delay = f.delayMs + (f.jitterMs > 0 ? this.#net.random() * f.jitterMs : 0);
    this.#inFlightBytes += entry.message.byteLength;
    this.#queue.push(entry);
    cancellable(this.#net.schedule, delay, () => {
      entry.ready = true;
      this.#flush();
    });
  }

  #flush(): void {
    // a paused receiver takes nothing more (like unread bytes staying in a kernel buffer), ends included
    while (!this.#closed && !this.#receiverPaused && this.#queue.length > 0 && this.#queue[0]!.ready) {
      const entry = this.#queue.shift()!;
      if (entry.kind === 'end') {
        this.#releaseHeld();
        if (this.#closed) return;
        this.close();
        this.#target.endFromLink('closed by peer');
        return;
      }
      if (entry.reorder && this.#held === undefined) {
        this.#held = entry;
        this.#net.stats.reordered++;
        cancellable(this.#net.schedule, REORDER_HOLD_MS, () => {
          if (this.#held === entry) this.#releaseHeld();
        });
        continue;
      }
      this.#deliver(entry);
      this.#releaseHeld();
    }
  }

  #releaseHeld(): void {
    const held = this.#held;
    if (held === undefined || this.#closed) return;
    this.#held = undefined;
    this.#deliver(held);
  }

  #deliver(entry: InFlight): void {
    this.#inFlightBytes -= entry.message.byteLength;
    this.#net.stats.delivered++;
    this.#target.receiveFromLink(entry.message);
    this.#maybeRelease();
  }

  #capacity(): void | Promise<void> {
    if (!this.#isFull()) return;
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #isFull(): boolean {
    return !this.#closed && (this.#receiverPaused || this.#inFlightBytes > Math.min(this.#target.receiveHighWaterMark, this.sendLimit));
  }

  #maybeRelease(): void {
    if (!this.#isFull()) this.#release();
  }

  #release(): void {
    for (const f of this.#waiters.splice(0)) f();
  }
}
