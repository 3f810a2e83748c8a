import type { Writable } from 'zeromq';

type Frames = Array<Buffer | Uint8Array>;

/**
 * zeromq.js allows one pending send per socket (a second one while the first waits fails with EBUSY):
 * this queues sends and hands them to the socket one at a time, in order. Each send's promise settles
 * with the socket's answer (e.g. EHOSTUNREACH from a ROUTER for a peer that is gone).
 */
export class SocketSender {
  readonly #socket: Writable<Frames>;
  #queue: Array<{ frames: Frames; resolve: () => void; reject: (err: Error) => void }> = [];
  #busy = false;
  #closed = false;

  constructor(socket: Writable<Frames>) {
    this.#socket = socket;
  }

  send(frames: Frames): Promise<void> {
    if (this.#closed) return Promise.reject(Object.assign(new Error('socket closed'), { code: 'ENOTSOCK' }));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frames, resolve, reject });
      if (!this.#busy) void this.#pump();
    });
  }

  /** Fail everything queued; later sends fail at once. */
  close(): void {
    this.#closed = true;
    const err = Object.assign(new Error('socket closed'), { code: 'ENOTSOCK' });
    for (const item of this.#queue.splice(0)) item.reject(err);
  }

  async #pump(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0 && !this.#closed) {
      const item = this.#queue.shift()!;
      try {
        await this.#socket.send(item.frames);
        item.resolve();
      } catch (err) {
        item.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.#busy = false;
  }
}
