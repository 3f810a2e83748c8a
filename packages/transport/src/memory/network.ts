/**
 * The in-memory transport (`mem://name`): a network of named listeners inside one process, with
 * deterministic fault injection for tests and simulators. Time and randomness come from the `schedule`
 * and `random` options, so a simulator on virtual time with a seeded PRNG replays the same run.
 *
 * Hosts: the host of `mem://a/primary` is `a`. A connection dialled through `network.host('c')` comes
 * from host `c` (local address `mem://c#N`); through the network itself, from host `client`. Faults,
 * partitions and severing are addressed by host.
 */
import { AcceptQueue } from '../accept-queue.js';
import { AbortError, AddressInUseError, ConnectionRefusedError, InvalidAddressError, TimeoutError } from '../errors.js';
import {
  checkConnectionOptions,
  DEFAULT_MAX_CONNECTIONS,
  type Connection,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from '../types.js';
import { MemoryConnection } from './connection.js';
import { cancellable, defaultSchedule, hostOf, NO_FAULTS, type LinkFaults, type RandomSource, type Schedule } from './faults.js';
import { MemoryLink } from './link.js';
import { MemoryStreamConnection, RawMemoryPeer } from './raw.js';

/** The URL scheme of the in-memory transport: `mem://name`. */
export const MEMORY_SCHEME = 'mem';

/** Default dial timeout, in ms (same as the contract's default). */
const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

/** Options of a MemoryNetwork: scheduler, random source, default faults and the host of its own dials. */
export interface MemoryNetworkOptions {
  /** Scheduler for deliveries and timeouts. Default: microtask for 0 ms, else setTimeout. */
  schedule?: Schedule;
  /** Random source for faults. Default Math.random. */
  random?: RandomSource;
  /** Faults applied to every link that has no more specific setting. Default none. */
  faults?: Partial<LinkFaults>;
  /** Host of dials made through the network object itself. Default "client". */
  defaultHost?: string;
}

/** Message counters of a MemoryNetwork, across all its links. */
export interface MemoryNetworkStats {
  /** Messages sent on every link. */
  sent: number;
  /** Messages delivered to a connection. */
  delivered: number;
  /** Messages lost to the links' `dropRate`. */
  dropped: number;
  /** Messages delivered twice by the links' `duplicateRate`. */
  duplicated: number;
  /** Messages that overtook earlier ones by the links' `reorderRate`. */
  reordered: number;
  /** Messages lost to a partition. */
  blocked: number;
}

/** Dial options of the in-memory transport: DialOptions plus the host the dial comes from. */
export interface MemoryDialOptions extends DialOptions {
  /** Host the dial comes from (overrides the host of the transport view). */
  fromHost?: string;
}

interface Pair {
  dialer: MemoryConnection;
  acceptor: MemoryConnection | MemoryStreamConnection;
}

class MemoryListener implements Listener {
  readonly address: string;
  readonly name: string;
  readonly options: ListenOptions;
  readonly queue = new AcceptQueue<Connection>();
  readonly maxConnections: number;
  /** Accepted connections not yet closed. */
  openConnections = 0;
  #onClose: () => void;

  constructor(name: string, options: ListenOptions, onClose: () => void) {
    this.name = name;
    this.address = `${MEMORY_SCHEME}://${name}`;
    this.options = options;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#onClose = onClose;
  }

  get isFull(): boolean {
    return this.openConnections >= this.maxConnections;
  }

  /** Count an accepted connection until it closes, and hand it to the application. */
  accept(conn: Connection): void {
    this.openConnections++;
    void conn.closed.then(() => this.openConnections--);
    this.queue.push(conn);
  }

  get isClosed(): boolean {
    return this.queue.ended;
  }

  close(): Promise<void> {
    if (!this.queue.ended) {
      this.queue.end();
      this.#onClose();
    }
    return Promise.resolve();
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return this.queue[Symbol.asyncIterator]();
  }
}

/** An in-process transport (`mem://`) with per-link faults and partitions, for tests and the simulator. */
export class MemoryNetwork implements Transport {
  readonly name = 'memory';
  readonly schemes: readonly string[] = [MEMORY_SCHEME];
  /** Message counters across every link. */
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0, blocked: 0 };
  /** The scheduler of deliveries and timeouts. */
  readonly schedule: Schedule;
  /** The random source the faults draw from. */
  readonly random: RandomSource;
  /** The host of dials made through this object itself (not a `host()` view). */
  readonly defaultHost: string;

  #listeners = new Map<string, MemoryListener>();
  #faults = new Map<string, LinkFaults>();
  #partition: Map<string, number> | undefined;
  #pairs = new Set<Pair>();
  #dialCount = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.schedule = options.schedule ?? defaultSchedule;
    this.random = options.random ?? Math.random;
    this.defaultHost = options.defaultHost ?? 'client';
    if (options.faults) this.setLinkFaults('*', '*', options.faults);
  }

  // ---- fault injection ------------------------------------------------------------------------------

  /**
   * Set the faults of messages from host `from` to host `to` ('*' matches any host). The most specific
   * setting wins: from>to, from>*, *>to, *>*. Missing fields are 0. Applies to messages sent from now on.
   */
  setLinkFaults(from: string, to: string, faults: Partial<LinkFaults>): void {
    this.#faults.set(`${from}>${to}`, { ...NO_FAULTS, ...faults });
  }

  /** Remove every fault setting (partitions are separate: see heal). */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** The faults in force from one host to another: the most specific of `from>to`, `from>*`, `*>to`, `*>*`. */
  faultsFor(fromHost: string, toHost: string): Readonly<LinkFaults> {
    return (
      this.#faults.get(`${fromHost}>${toHost}`) ??
      this.#faults.get(`${fromHost}>*`) ??
      this.#faults.get(`*>${toHost}`) ??
      this.#faults.get('*>*') ??
      NO_FAULTS
    );
  }

  /**
   * Split hosts into groups that cannot reach each other: messages between groups are silently lost and
   * dials between them time out. Hosts in no group are unaffected. Replaces any earlier partition.
   * Connection ends (close/reset) still cross, so that both sides' bookkeeping stays consistent.
   */
  partition(...groups: readonly (readonly string[])[]): void {
    const map = new Map<string, number>();
    groups.forEach((group, i) => {
      for (const host of group) map.set(host, i);
    });
    this.#partition = map;
  }

  /** End the partition. */
  heal(): void {
    this.#partition = undefined;
  }

  /** True when a partition puts the two hosts on different sides (hosts outside every side are never cut off). */
  isPartitioned(fromHost: string, toHost: string): boolean {
    if (!this.#partition) return false;
    const a = this.#partition.get(fromHost);
    const b = this.#partition.get(toHost);
    return a !== undefined && b !== undefined && a !== b;
  }

  /**
   * Close abruptly every open connection between hosts `a` and `b` (or every connection of `a` when `b`
   * is omitted). Both ends see `closed` with by 'remote' and reason 'severed'; messages in flight are lost.
   * Returns how many connections were severed.
   */
  sever(a: string, b?: string): number {
    let n = 0;
    for (const pair of [...this.#pairs]) {
      const h1 = pair.dialer.outgoing.fromHost;
      const h2 = pair.dialer.outgoing.toHost;
      const match = b === undefined ? h1 === a || h2 === a : (h1 === a && h2 === b) || (h1 === b && h2 === a);
      if (!match) continue;
      this.#pairs.delete(pair);
      pair.dialer.outgoing.sever('severed');
      pair.dialer.incoming.sever('severed');
      n++;
    }
    return n;
  }

  /** Open connections (pairs) on the network. */
  get connectionCount(): number {
    return this.#pairs.size;
  }

  // ---- Transport ------------------------------------------------------------------------------------

  /** A view of this network whose dials come from `host`. */
  host(host: string): Transport {
    if (!/^[^/#\s]+$/.test(host)) throw new InvalidAddressError(`invalid memory host name "${host}"`);
    return {
      name: this.name,
      schemes: this.schemes,
      listen: (address, options) => this.listen(address, options),
      dial: (address, options) => this.dial(address, { ...options, fromHost: host }),
    };
  }

  listen(address: string, options: ListenOptions = {}): Promise<Listener> {
    let name: string;
    try {
      checkConnectionOptions(options);
      name = parseMemoryAddress(address);
      if (name.includes('#')) throw new InvalidAddressError(`"#" is reserved for dialler addresses: ${address}`, { address });
    } catch (err) {
      return Promise.reject(err);
    }
    if (options.signal?.aborted) return Promise.reject(new AbortError('listen aborted', { address }));
    if (this.#listeners.has(name)) return Promise.reject(new AddressInUseError(`${address} is already listening`, { address }));
    const listener = new MemoryListener(name, options, () => {
      if (this.#listeners.get(name) === listener) this.#listeners.delete(name);
    });
    this.#listeners.set(name, listener);
    options.signal?.addEventListener('abort', () => void listener.close(), { once: true });
    return Promise.resolve(listener);
  }

  dial(address: string, options: MemoryDialOptions = {}): Promise<Connection> {
    let name: string;
    try {
      checkConnectionOptions(options);
      name = parseMemoryAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new AbortError('dial aborted', { address }));
    const fromHost = options.fromHost ?? this.defaultHost;
    const toHost = hostOf(name);
    return new Promise<Connection>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const onAbort = (): void => finish(() => reject(new AbortError('dial aborted', { address })));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
      const timer = cancellable(this.schedule, timeoutMs, () =>
        finish(() => reject(new TimeoutError(`dial ${address} timed out after ${timeoutMs} ms`, { address }))),
      );
      cancellable(this.schedule, this.faultsFor(fromHost, toHost).delayMs, () => {
        if (done || this.isPartitioned(fromHost, toHost)) return; // lost in a partition: the timeout decides
        const listener = this.#listeners.get(name);
        if (!listener || listener.isClosed) {
          finish(() => reject(new ConnectionRefusedError(`nothing listens at ${address}`, { address, nothingListens: true })));
          return;
        }
        if (listener.isFull) {
          finish(() =>
            reject(
              new ConnectionRefusedError(`${address} refused the connection: it has ${listener.maxConnections} open (maxConnections)`, {
                address,
              }),
            ),
          );
          return;
        }
        finish(() => resolve(this.#connect(listener, fromHost, options)));
      });
    });
  }

  /**
   * Open a raw byte pipe to a listener, as a non-Tandem or malicious peer would: the accepted connection
   * decodes the bytes with the stream framing (preamble + length-prefixed frames), so garbage ends it with
   * a ProtocolError. The compliance suite uses this where other transports open a raw socket.
   */
  dialRaw(address: string, fromHost = this.defaultHost): RawMemoryPeer {
    const name = parseMemoryAddress(address);
    const listener = this.#listeners.get(name);
    if (!listener || listener.isClosed)
      throw new ConnectionRefusedError(`nothing listens at ${address}`, { address, nothingListens: true });
    if (listener.isFull)
      throw new ConnectionRefusedError(`${address} refused the connection: it has ${listener.maxConnections} open (maxConnections)`, {
        address,
      });
    const localAddress = `${MEMORY_SCHEME}://${fromHost}#${++this.#dialCount}`;
    const peer = new RawMemoryPeer(this.schedule);
    const conn = new MemoryStreamConnection(peer, this.schedule, {
      localAddress: listener.address,
      remoteAddress: localAddress,
      ...connectionInit(listener.options),
    });
    listener.accept(conn);
    return peer;
  }

  #connect(listener: MemoryListener, fromHost: string, options: DialOptions): MemoryConnection {
    const localAddress = `${MEMORY_SCHEME}://${fromHost}#${++this.#dialCount}`;
    const toHost = hostOf(listener.name);
    const dialer = new MemoryConnection({ localAddress, remoteAddress: listener.address, ...connectionInit(options) });
    const acceptor = new MemoryConnection({
      localAddress: listener.address,
      remoteAddress: localAddress,
      ...connectionInit(listener.options),
    });
    const forward = new MemoryLink(this, fromHost, toHost, acceptor);
    const backward = new MemoryLink(this, toHost, fromHost, dialer);
    forward.sendLimit = dialer.sendHighWaterMark;
    backward.sendLimit = acceptor.sendHighWaterMark;
    dialer.outgoing = forward;
    dialer.incoming = backward;
    acceptor.outgoing = backward;
    acceptor.incoming = forward;
    const pair: Pair = { dialer, acceptor };
    this.#pairs.add(pair);
    void Promise.all([dialer.closed, acceptor.closed]).then(() => this.#pairs.delete(pair));
    listener.accept(acceptor);
    return dialer;
  }
}

/** The per-connection options of a listen or dial, as BaseConnection takes them. */
function connectionInit(options: ListenOptions | DialOptions) {
  return {
    maxMessageSize: options.maxMessageSize,
    receiveHighWaterMark: options.receiveHighWaterMark,
    sendHighWaterMark: options.sendHighWaterMark,
    maxSendQueueBytes: options.maxSendQueueBytes,
    partialFrameTimeoutMs: options.partialFrameTimeoutMs,
  };
}

/** `mem://name` → `name`; throws InvalidAddressError. */
export function parseMemoryAddress(address: string): string {
  const prefix = `${MEMORY_SCHEME}://`;
  if (!address.startsWith(prefix)) throw new InvalidAddressError(`not a memory address (expected mem://name): ${address}`, { address });
  const name = address.slice(prefix.length);
  if (name.length === 0 || /\s/.test(name)) throw new InvalidAddressError(`invalid memory address: ${address}`, { address });
  return name;
}

/** A fresh, isolated in-memory network. */
export function createMemoryNetwork(options: MemoryNetworkOptions = {}): MemoryNetwork {
  return new MemoryNetwork(options);
}

let processNetwork: MemoryNetwork | undefined;

/**
 * The process-wide in-memory network (like loopback: every `memory()` shares it). For isolation, fault
 * injection or a custom scheduler, use `createMemoryNetwork(options)` instead.
 */
export function memory(): MemoryNetwork {
  processNetwork ??= new MemoryNetwork();
  return processNetwork;
}
