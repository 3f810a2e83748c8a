/**
 * A tiny in-process Transport (scheme `loop://`) for the core's tests: message-framed, ordered,
 * reliable while open. Faults are injected by fault-net.ts around it.
 */
import {
  ConnectionClosedError,
  ConnectionRefusedError,
  AddressInUseError,
  type CloseInfo,
  type Connection,
  type Listener,
  type Transport,
  DEFAULT_MAX_MESSAGE_SIZE,
  MessageTooLargeError,
} from '@tandem/transport';

let nextId = 1;

class Queue<T> {
  items: T[] = [];
  waiters: ((r: IteratorResult<T>) => void)[] = [];
  ended = false;
  push(v: T): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w({ value: v, done: false });
    else this.items.push(v);
  }
  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined as T, done: true });
  }
  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined as T, done: true });
    return new Promise((r) => this.waiters.push(r));
  }
}

class LoopConnection implements Connection {
  readonly id = `loop-${nextId++}`;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly maxMessageSize: number;
  peer!: LoopConnection;
  readonly inbox = new Queue<Uint8Array>();
  #closed = false;
  #resolveClosed!: (i: CloseInfo) => void;
  readonly closed = new Promise<CloseInfo>((r) => (this.#resolveClosed = r));
  constructor(local: string, remote: string, max: number) {
    this.localAddress = local;
    this.remoteAddress = remote;
    this.maxMessageSize = max;
  }
  get isClosed(): boolean {
    return this.#closed;
  }
  send(message: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError());
    if (message.length > this.maxMessageSize) return Promise.reject(new MessageTooLargeError(message.length, this.maxMessageSize));
    this.peer.inbox.push(message.slice());
    return Promise.resolve();
  }
  end(by: 'local' | 'remote', reason: string, error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inbox.end();
    this.#resolveClosed(error ? { by, reason, error } : { by, reason });
  }
  close(reason = 'closed'): Promise<void> {
    this.end('local', reason);
    this.peer.end('remote', 'closed by peer');
    return Promise.resolve();
  }
  abort(error?: Error): void {
    this.end('local', 'aborted', error);
    this.peer.end('remote', 'reset');
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => this.inbox.next() };
  }
}

class LoopListener implements Listener {
  readonly address: string;
  readonly accepted = new Queue<Connection>();
  readonly #net: LoopbackTransport;
  constructor(address: string, net: LoopbackTransport) {
    this.address = address;
    this.#net = net;
  }
  close(): Promise<void> {
    this.#net.listeners.delete(this.address);
    this.accepted.end();
    return Promise.resolve();
  }
  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return { next: () => this.accepted.next() };
  }
}

export class LoopbackTransport implements Transport {
  readonly name = 'loopback';
  readonly schemes = ['loop'];
  readonly listeners = new Map<string, LoopListener>();
  listen(address: string): Promise<Listener> {
    if (this.listeners.has(address)) return Promise.reject(new AddressInUseError(undefined, { address }));
    const l = new LoopListener(address, this);
    this.listeners.set(address, l);
    return Promise.resolve(l);
  }
  dial(address: string, options?: { maxMessageSize?: number }): Promise<Connection> {
    const l = this.listeners.get(address);
    if (!l) return Promise.reject(new ConnectionRefusedError(`nothing listens at ${address}`, { address }));
    const max = options?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const local = `loop://client-${nextId++}`;
    const a = new LoopConnection(local, address, max);
    const b = new LoopConnection(address, local, max);
    a.peer = b;
    b.peer = a;
    l.accepted.push(b);
    return Promise.resolve(a);
  }
}
