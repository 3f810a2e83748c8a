/**
 * One end of an in-memory connection. Messages travel to the peer through a `MemoryLink` (one per
 * direction), which applies the network's delay and faults and carries the backpressure signal back.
 */
import { BaseConnection, type BaseConnectionInit } from '../base-connection.js';
import { MessageTooLargeError } from '../errors.js';
import type { MemoryLink } from './link.js';

export class MemoryConnection extends BaseConnection {
  /** Link carrying this end's messages to the peer. */
  outgoing!: MemoryLink;
  /** Link carrying the peer's messages to this end. */
  incoming!: MemoryLink;

  constructor(init: BaseConnectionInit) {
    super({ idPrefix: 'mem', ...init });
    void this.closed.then(() => this.incoming?.close());
  }

  protected writeMessage(message: Uint8Array): void | Promise<void> {
    return this.outgoing.transmit(message.slice()); // the caller may reuse its buffer after send
  }

  protected override startTimer(
    ms: number,
    fn: () => void,
  ): {
    /** Stop the timer if it has not fired. */
    cancel(): void;
  } {
    return this.outgoing.startTimer(ms, fn);
  }

  /** Virtual time: timers are never late. */
  protected override wallClock(): undefined {
    return undefined;
  }

  protected endTransport(): void {
    this.outgoing.transmitEnd();
  }

  protected destroyTransport(): void {
    this.outgoing.transmitReset('reset by peer');
  }

  protected override pauseSource(): void {
    this.incoming.setReceiverPaused(true);
  }

  protected override resumeSource(): void {
    this.incoming.setReceiverPaused(false);
  }

  /** Called by the incoming link. */
  receiveFromLink(message: Uint8Array): void {
    if (message.byteLength > this.maxMessageSize) {
      this.fail(new MessageTooLargeError(message.byteLength, this.maxMessageSize, { address: this.remoteAddress }));
      return;
    }
    this.deliver(message);
  }

  /** Called by the incoming link when the peer ended, reset, or the network severed the link. */
  endFromLink(reason: string): void {
    this.terminate({ by: 'remote', reason });
  }
}
