/**
 * Fault injection for in-process tests: every replica and client runs on a named node with its own Env.
 * A node can crash (connections reset, listener gone, timers dead — like SIGKILL), pause (timers and
 * message delivery to and from it held — like SIGSTOP) and resume. A drop rule loses chosen messages.
 * Every message sent is decoded and kept in `trace` so tests can assert orderings.
 */
import { randomBytes } from 'node:crypto';
import {
  ConnectionClosedError,
  ConnectionRefusedError,
  type CloseInfo,
  type Connection,
  type Listener,
  type Transport,
} from '@tandem/transport';
import { codec } from '../../src/codec.js';
import type { Env, TimerHandle } from '../../src/env.js';
import type { Message } from '../../src/messages.js';
import { silentLogger } from '../../src/env.js';
import { stderrLogger } from '../../src/node-env.js';
import { createMemoryNetwork } from '@tandem/transport';

export interface TraceRecord {
  no: number;
  from: string;
  to: string;
  msg: Message;
  dropped: boolean;
}

export type DropRule = (r: { from: string; to: string; msg: Message }) => boolean;

export class TestNode {
  readonly name: string;
  readonly env: Env;
  crashed = false;
  paused = false;
  readonly #cluster: TestCluster;
  readonly #conns = new Set<Connection>();
  readonly #listeners = new Set<Listener>();
  #deferredTimers: (() => void)[] = [];
  #heldSends: (() => void)[] = [];
  #resumeWaiters: (() => void)[] = [];

  constructor(name: string, cluster: TestCluster) {
    this.name = name;
    this.#cluster = cluster;
    const node = this;
    const logLevel = process.env['TANDEM_TEST_LOG'] as 'debug' | 'info' | 'warn' | 'error' | undefined;
    this.env = {
      now: () => performance.now(),
      wallClock: () => Date.now(),
      setTimer(ms: number, fn: () => void): TimerHandle {
        let cancelled = false;
        const t = setTimeout(
          () => {
            if (cancelled || node.crashed) return;
            if (node.paused) node.#deferredTimers.push(() => !cancelled && !node.crashed && fn());
            else fn();
          },
          Math.max(0, ms),
        );
        return {
          cancel: () => {
            cancelled = true;
            clearTimeout(t);
          },
        };
      },
      random: () => Math.random(),
      randomBytes: (n: number) => new Uint8Array(randomBytes(n)),
      network: this.#network(),
      logger: logLevel ? stderrLogger(logLevel, { node: name }) : silentLogger,
    };
  }

  /** Like SIGKILL: every connection reset, the listener gone, timers never fire. */
  crash(): void {
    this.crashed = true;
    for (const l of this.#listeners) void l.close();
    for (const c of this.#conns) c.abort();
    this.#deferredTimers = [];
    this.#heldSends = [];
  }

  /** A reset from the network while this node's process lives (a middlebox RST): its connections are
   * aborted, its listener and timers stay. */
  resetConnections(): void {
    for (const c of this.#conns) c.abort();
  }

  /** Like SIGSTOP: nothing runs, nothing is delivered to or from this node (the clock keeps going). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const timers = this.#deferredTimers;
    this.#deferredTimers = [];
    const sends = this.#heldSends;
    this.#heldSends = [];
    const waiters = this.#resumeWaiters;
    this.#resumeWaiters = [];
    for (const w of waiters) w();
    for (const s of sends) s();
    for (const t of timers) t();
  }

  #whenRunning(): Promise<void> {
    if (!this.paused) return Promise.resolve();
    return new Promise((r) => this.#resumeWaiters.push(r));
  }

  #wrap(inner: Connection, to: string): Connection {
    const node = this;
    const cluster = this.#cluster;
    this.#conns.add(inner);
    void inner.closed.then(() => this.#conns.delete(inner));
    const iterate = async function* (): AsyncGenerator<Uint8Array> {
      for await (const m of inner) {
        if (node.paused) await node.#whenRunning();
        if (node.crashed) return;
        yield m;
      }
    };
    const wrapped: Connection = {
      id: inner.id,
      localAddress: inner.localAddress,
      remoteAddress: inner.remoteAddress,
      maxMessageSize: inner.maxMessageSize,
      get isClosed() {
        return inner.isClosed;
      },
      closed: inner.closed as Promise<CloseInfo>,
      send(bytes: Uint8Array): Promise<void> {
        if (node.crashed) return Promise.reject(new ConnectionClosedError());
        let msg: Message | undefined;
        try {
          msg = codec.decode(bytes);
        } catch {
          msg = undefined;
        }
        const dropped = (msg && cluster.dropRule?.({ from: node.name, to, msg })) === true;
        if (msg !== undefined) cluster.trace.push({ no: cluster.trace.length, from: node.name, to, msg, dropped });
        if (dropped) return Promise.resolve();
        const twice = msg && cluster.duplicateRule?.({ from: node.name, to, msg });
        if (node.paused) {
          node.#heldSends.push(() => void inner.send(bytes).catch(() => undefined));
          return Promise.resolve();
        }
        if (twice) void inner.send(bytes).catch(() => undefined);
        return inner.send(bytes);
      },
      close: (reason?: string) => inner.close(reason),
      abort: (error?: Error) => inner.abort(error),
      [Symbol.asyncIterator]: () => iterate(),
    };
    return wrapped;
  }

  #network(): Transport {
    const node = this;
    const inner = this.#cluster.transport;
    return {
      name: 'fault-net',
      schemes: inner.schemes,
      async listen(address, options) {
        const l = await inner.listen(address, options);
        node.#listeners.add(l);
        const accepted = async function* (): AsyncGenerator<Connection> {
          for await (const c of l) {
            if (node.crashed) {
              c.abort();
              continue;
            }
            yield node.#wrap(c, node.name);
          }
        };
        return { address: l.address, close: () => l.close(), [Symbol.asyncIterator]: () => accepted() };
      },
      async dial(address, options) {
        if (node.crashed) throw new ConnectionRefusedError('node crashed');
        const c = await inner.dial(address, options);
        return node.#wrap(c, node.#cluster.nameOf(address));
      },
    };
  }
}

export class TestCluster {
  readonly transport: Transport;
  readonly trace: TraceRecord[] = [];
  dropRule: DropRule | undefined;
  /** Messages matching this rule are delivered twice. */
  duplicateRule: DropRule | undefined;
  readonly #nodes = new Map<string, TestNode>();
  readonly #addressNames = new Map<string, string>();

  constructor(transport: Transport = createMemoryNetwork()) {
    this.transport = transport;
  }

  node(name: string): TestNode {
    let n = this.#nodes.get(name);
    if (!n) {
      n = new TestNode(name, this);
      this.#nodes.set(name, n);
    }
    return n;
  }

  /** Give an address a readable name in traces. */
  nameAddress(address: string, name: string): void {
    this.#addressNames.set(address, name);
  }

  nameOf(address: string): string {
    return this.#addressNames.get(address) ?? address;
  }

  /** Trace records matching a predicate. */
  find(pred: (r: TraceRecord) => boolean): TraceRecord[] {
    return this.trace.filter(pred);
  }
}

/** Poll until `cond()` is truthy (tests only; never asserts elapsed time). */
export async function until(cond: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
