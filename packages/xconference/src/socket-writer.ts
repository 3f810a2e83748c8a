import type { Socket } from 'node:net';

/**
 * Batches writes to one socket per event-loop tick: the first write in a tick corks the socket and a
 * microtask uncorks it, so a burst of small X messages leaves as one writev.
 */
export class SocketWriter {
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(readonly socket: Socket) {}

  write(buf: Buffer): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(buf);
  }
}
