import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.js';

/** Bytes a socket may hold unsent before its writer reports a backlog (the reader feeding it should pause). */
export const DEFAULT_BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * Batches writes to one socket per event-loop tick: buffers written during one tick leave together at the
 * end of it — a single buffer as a plain write, several corked into one writev.
 *
 * Flow control: when the socket holds more than `backlogLimit` unsent bytes (its peer reads slower than we
 * write), `onBacklog(true)` is called once, and `onBacklog(false)` when the socket has drained. Whoever feeds
 * this writer pauses its own source in between, so memory stays bounded by the limit plus one read.
 */
export class SocketWriter {
  private pending: Buffer[] = [];
  private scheduled = false;
  /** Called with true when the socket's unsent bytes pass the limit, with false once they have drained. */
  onBacklog: ((backlogged: boolean) => void) | null = null;
  private backlog = false;
  private readonly onDrain = (): void => {
    if (!this.backlog) return;
    this.backlog = false;
    this.onBacklog?.(false);
  };
  private readonly flush = (): void => {
    this.scheduled = false;
    const bufs = this.pending;
    if (this.socket.destroyed) {
      bufs.length = 0;
      return;
    }
    if (bufs.length === 1) {
      this.socket.write(bufs[0]!);
    } else {
      this.socket.cork();
      for (let i = 0; i < bufs.length; i++) this.socket.write(bufs[i]!);
      this.socket.uncork();
    }
    bufs.length = 0;
    this.poll?.arm();
    if (!this.backlog && this.onBacklog !== null && this.socket.writableLength > this.backlogLimit) {
      this.backlog = true;
      this.socket.once('drain', this.onDrain);
      this.onBacklog(true);
    }
  };

  constructor(
    readonly socket: Socket,
    readonly backlogLimit = DEFAULT_BACKLOG_BYTES,
    /** Polls for the answer without sleeping for a while after each write (see BusyPoll). */
    private readonly poll?: BusyPoll,
  ) {}

  /** True while the socket holds more than the limit unsent (between onBacklog(true) and onBacklog(false)). */
  get backlogged(): boolean {
    return this.backlog;
  }

  write(buf: Buffer): void {
    this.pending.push(buf);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }
}
