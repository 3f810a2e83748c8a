import type { Socket } from 'node:net';

/**
 * Batches writes to one socket per event-loop tick: buffers written during one tick leave together at the
 * end of it — a single buffer as a plain write, several corked into one writev.
 */
export class SocketWriter {
  private pending: Buffer[] = [];
  private scheduled = false;
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
  };

  constructor(readonly socket: Socket) {}

  write(buf: Buffer): void {
    this.pending.push(buf);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }
}
