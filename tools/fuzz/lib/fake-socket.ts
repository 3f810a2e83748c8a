/**
 * An in-process stand-in for a connected `net.Socket` pair — the part of the Socket API the X conference
 * code uses ('data'/'end'/'close'/'error' events, write, cork/uncork, end, destroy, pause/resume,
 * writableLength, destroyed) — so that thousands of X sessions per second can be fuzzed without real
 * sockets. Writes are delivered asynchronously (one macrotask later, like a real socket), in order;
 * `pending` counts deliveries in flight so a harness can wait until everything has settled.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

export class FakeSocketNet {
  /** Deliveries (data, end, close) scheduled but not yet done. */
  pending = 0;
  /** Exceptions thrown by 'data'/'end'/'close' listeners (each would be an uncaught exception). */
  readonly listenerErrors: unknown[] = [];

  /** A connected pair: what one end writes, the other receives. */
  pair(): [FakeSocket, FakeSocket] {
    const a = new FakeSocket(this);
    const b = new FakeSocket(this);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  /** @internal `to`: the socket whose listeners run (errors of a harness-side socket are the harness's). */
  schedule(fn: () => void, to: FakeSocket | undefined): void {
    this.pending++;
    setImmediate(() => {
      this.pending--;
      try {
        fn();
      } catch (err) {
        if (to?.harness) this.harnessErrors.push(err);
        else this.listenerErrors.push(err);
      }
    });
  }

  /** Exceptions in listeners of harness-side sockets (a test helper choking on what it was sent). */
  readonly harnessErrors: unknown[] = [];
}

export class FakeSocket extends EventEmitter {
  peer: FakeSocket | undefined;
  destroyed = false;
  readonly writableLength = 0;
  readonly _handle = null;
  /** Everything this end received (for checks), when set. */
  received: Buffer[] | undefined;
  /** This end belongs to the harness (a fake server, the application driver), not to the code under test. */
  harness = false;
  #paused = false;
  #held: Buffer[] = [];
  #ended = false;
  #closeEmitted = false;
  readonly #net: FakeSocketNet;

  constructor(net: FakeSocketNet) {
    super();
    this.#net = net;
  }

  /** This object, typed as the Socket the code under test expects. */
  get socket(): Socket {
    return this as unknown as Socket;
  }

  setNoDelay(): this {
    return this;
  }
  setEncoding(): this {
    return this;
  }
  cork(): void {}
  uncork(): void {}

  write(data: Uint8Array | string, cb?: () => void): boolean {
    if (this.destroyed || this.#ended) return false;
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    const peer = this.peer;
    this.#net.schedule(() => {
      peer?.receive(buf);
      cb?.();
    }, peer);
    return true;
  }

  /** Half-close: the peer sees 'end' then 'close' (this fake does not keep half-open connections). */
  end(data?: Uint8Array | string): this {
    if (data !== undefined) this.write(data);
    if (this.destroyed || this.#ended) return this;
    this.#ended = true;
    const peer = this.peer;
    this.#net.schedule(() => peer?.remoteEnded(), peer);
    this.#net.schedule(() => this.#close(), this);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#held = [];
    const peer = this.peer;
    this.#net.schedule(() => this.#close(), this);
    this.#net.schedule(() => peer?.remoteEnded(), peer);
    return this;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const b of held) this.#deliver(b);
    return this;
  }

  /** @internal */
  receive(buf: Buffer): void {
    if (this.destroyed) return;
    if (this.#paused) this.#held.push(buf);
    else this.#deliver(buf);
  }

  /** @internal the other end ended or was destroyed */
  remoteEnded(): void {
    if (this.#closeEmitted) return;
    if (!this.destroyed) this.emit('end');
    this.destroyed = true;
    this.#close();
  }

  #deliver(buf: Buffer): void {
    this.received?.push(buf);
    this.emit('data', buf);
  }

  #close(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.destroyed = true;
    this.emit('close', false);
  }
}
