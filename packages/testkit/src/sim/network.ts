/**
 * The simulated network: an implementation of the @tandem/transport contract (`sim://name` addresses)
 * whose every delivery is a scheduler event with a delay drawn from the run's PRNG. Connections are
 * TCP-like by default (ordered, reliable while open); the fault knobs add what real networks and
 * retransmitting peers produce — delay spikes, loss, duplication and reordering of messages, severed
 * connections, partitions — all decided by the seed.
 *
 * Process crash: the host's kernel resets the process's connections (peers see "reset"), dials to its
 * address are refused. Host crash: silence — peers see nothing, dials time out, and data sent to a rebooted
 * host is answered by a reset.
 */
import {
  AbortError,
  AddressInUseError,
  checkConnectionOptions,
  ConnectionClosedError,
  ConnectionRefusedError,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_SIZE,
  InvalidAddressError,
  MessageTooLargeError,
  TimeoutError,
  type CloseInfo,
  type Connection,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from '@tandem/transport';
import type { SimHost, SimNode } from './node.js';
import type { SeededRandom } from './random.js';
import type { Scheduler } from './scheduler.js';

/** The simulated network's faults: delay range and spikes, loss, duplication and reordering rates. */
export interface NetworkFaults {
  /** One-way delay of a message: uniform in [minDelayMs, maxDelayMs]. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability that a message is delayed by an extra spike in [0, spikeMs]. */
  spikeRate: number;
  spikeMs: number;
  /** Probability that a message is silently lost. (The first message of each direction — the hello — is
   * never lost, duplicated or overtaken: no retransmitting peer would do that.) */
  lossRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** Probability that a message ignores FIFO order (may overtake earlier ones). */
  reorderRate: number;
}

/** The default network faults: a 0.2–2 ms delay and nothing else. */
export const DEFAULT_NETWORK_FAULTS: Readonly<NetworkFaults> = Object.freeze({
  minDelayMs: 0.2,
  maxDelayMs: 2,
  spikeRate: 0,
  spikeMs: 0,
  lossRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
});

/** Message counters of the simulated network. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  severed: number;
}

const SCHEME = 'sim';

function checkAddress(address: string): void {
  if (!/^sim:\/\/[^\s/]+$/.test(address)) throw new InvalidAddressError(`"${address}" is not a sim address (sim://name)`, { address });
}

/** One direction's ordering state. */
interface Direction {
  lastAt: number;
  sent: number;
  /** Delivery time of the first message (the hello): nothing overtakes it. */
  firstAt: number;
}

class Pipe {
  severed = false;
  readonly a: SimConnection;
  readonly b: SimConnection;
  constructor(a: SimConnection, b: SimConnection) {
    this.a = a;
    this.b = b;
  }
}

class SimConnection implements Connection {
  readonly id: string;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly maxMessageSize: number;
  readonly closed: Promise<CloseInfo>;
  peer!: SimConnection;
  pipe!: Pipe;
  readonly node: SimNode;
  readonly inc: number;
  readonly out: Direction = { lastAt: 0, sent: 0, firstAt: 0 };
  #resolveClosed!: (info: CloseInfo) => void;
  #closeInfo: CloseInfo | undefined;
  #inbox: Uint8Array[] = [];
  #waiter: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  #iterating = false;
  readonly #net: SimNetwork;

  constructor(net: SimNetwork, id: string, node: SimNode, inc: number, local: string, remote: string, maxMessageSize: number) {
    this.#net = net;
    this.node = node;
    this.inc = inc;
    this.id = id;
    this.localAddress = local;
    this.remoteAddress = remote;
    this.maxMessageSize = maxMessageSize;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  get isClosed(): boolean {
    return this.#closeInfo !== undefined;
  }

  /** True while this end's process incarnation is the one that owns it. */
  get alive(): boolean {
    return this.node.incarnation === this.inc && this.node.state !== 'down';
  }

  send(message: Uint8Array): Promise<void> {
    if (!this.alive) return new Promise(() => {}); // a dead process's call never returns
    if (this.#closeInfo) return Promise.reject(new ConnectionClosedError(`connection ${this.id} is closed (${this.#closeInfo.reason})`));
    if (message.length > this.maxMessageSize) return Promise.reject(new MessageTooLargeError(message.length, this.maxMessageSize));
    this.#net.transmit(this, message.slice());
    return Promise.resolve();
  }

  close(reason = 'closed'): Promise<void> {
    if (!this.alive) return new Promise(() => {});
    if (this.#closeInfo) return Promise.resolve();
    this.#end({ by: 'local', reason }, false);
    this.#net.transmitClose(this, 'fin');
    return Promise.resolve();
  }

  abort(error?: Error): void {
    if (!this.alive || this.#closeInfo) return;
    this.#end(error ? { by: 'local', reason: error.message, error } : { by: 'local', reason: 'aborted' }, true);
    this.#net.transmitClose(this, 'rst');
  }

  /** A message arrived (already gated on this node). */
  receive(bytes: Uint8Array): void {
    if (this.#closeInfo) return;
    if (bytes.length > this.maxMessageSize) {
      // Each end enforces its own limit: the peer broke it, so this end drops the connection (the peer sees a reset).
      this.#end(
        {
          by: 'remote',
          reason: 'message too large',
          error: new MessageTooLargeError(bytes.length, this.maxMessageSize, { address: this.remoteAddress }),
        },
        true,
      );
      this.#net.transmitClose(this, 'rst');
      return;
    }
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: bytes, done: false });
    } else this.#inbox.push(bytes);
  }

  /** The peer or the network ended the connection (already gated on this node). */
  remoteEnd(kind: 'fin' | 'rst'): void {
    if (this.#closeInfo) return;
    this.#end(
      kind === 'fin'
        ? { by: 'remote', reason: 'closed by peer' }
        : { by: 'remote', reason: 'reset', error: new ConnectionClosedError('connection reset') },
      kind === 'rst',
    );
  }

  #end(info: CloseInfo, discard: boolean): void {
    this.#closeInfo = info;
    if (discard) this.#inbox = [];
    if (this.#waiter && this.#inbox.length === 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: undefined, done: true });
    }
    this.#resolveClosed(info);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#iterating) throw new Error(`connection ${this.id} already has an active iterator`);
    this.#iterating = true;
    return {
      next: (): Promise<IteratorResult<Uint8Array>> => {
        const m = this.#inbox.shift();
        if (m !== undefined) return Promise.resolve({ value: m, done: false });
        if (this.#closeInfo) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.#waiter = r));
      },
      return: (): Promise<IteratorResult<Uint8Array>> => {
        this.#waiter = undefined;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

class SimListener implements Listener {
  readonly address: string;
  readonly node: SimNode;
  readonly inc: number;
  readonly options: ListenOptions;
  closedFlag = false;
  /** Connections accepted and not yet closed (taken or not), bounded by options.maxConnections. */
  open = 0;
  #queue: Connection[] = [];
  #waiter: ((r: IteratorResult<Connection>) => void) | undefined;
  readonly #net: SimNetwork;

  constructor(net: SimNetwork, node: SimNode, inc: number, address: string, options: ListenOptions) {
    this.#net = net;
    this.node = node;
    this.inc = inc;
    this.address = address;
    this.options = options;
  }

  accept(conn: Connection): void {
    if (this.closedFlag) {
      conn.abort();
      return;
    }
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: conn, done: false });
    } else this.#queue.push(conn);
  }

  close(): Promise<void> {
    if (this.node.incarnation !== this.inc) return new Promise(() => {});
    this.#shut();
    this.#net.unlisten(this);
    return Promise.resolve();
  }

  #shut(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    return {
      next: (): Promise<IteratorResult<Connection>> => {
        const c = this.#queue.shift();
        if (c !== undefined) return Promise.resolve({ value: c, done: false });
        if (this.closedFlag) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.#waiter = r));
      },
      return: (): Promise<IteratorResult<Connection>> => {
        this.#shut();
        this.#net.unlisten(this);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * The simulated network between SimNodes: connections with delay, loss, duplication, reordering, partitions and severing, on virtual
 * time.
 */
export class SimNetwork {
  readonly faults: NetworkFaults = { ...DEFAULT_NETWORK_FAULTS };
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, severed: 0 };
  /** Observes every message as it is handed to the network (after its delivery is scheduled); a fault
   * driver may crash the sender right there ("after the reply, before anything else"). */
  onTransmit: ((from: SimNode, to: SimNode, bytes: Uint8Array) => void) | undefined;
  /** Targeted faults: decides per message to drop it or to add an extra delay (ms), before the random
   * faults are drawn. Undefined = no opinion. */
  interceptor: ((from: SimNode, to: SimNode, bytes: Uint8Array) => 'drop' | number | undefined) | undefined;
  readonly #sched: Scheduler;
  readonly #rng: SeededRandom;
  readonly #listeners = new Map<string, SimListener>();
  /** The host behind each address ever listened on (to tell "refused" from "silent"). */
  readonly #addressHost = new Map<string, SimHost>();
  readonly #pipes = new Set<Pipe>();
  readonly #blocked = new Set<string>();
  /** Messages between partitioned nodes, delivered in order when the partition heals (TCP retransmits). */
  #held: { from: SimConnection; bytes: Uint8Array | 'fin' | 'rst' }[] = [];
  /** Per network, so that ids and addresses replay identically in one process. */
  #connectionIds = 0;

  constructor(sched: Scheduler, rng: SeededRandom) {
    this.#sched = sched;
    this.#rng = rng;
  }

  /** A Transport for one incarnation of a node (see SimNode.env()). */
  transportFor(node: SimNode, inc: number): Transport {
    return {
      name: 'sim',
      schemes: [SCHEME],
      listen: (address, options) => this.#listen(node, inc, address, options ?? {}),
      dial: (address, options) => this.#dial(node, inc, address, options ?? {}),
    };
  }

  // ---- faults -------------------------------------------------------------------------------------

  /** Reset (both ends see "reset") every open connection matching `filter` (default: all). */
  sever(filter: (a: SimNode, b: SimNode) => boolean = () => true): number {
    let n = 0;
    for (const pipe of [...this.#pipes]) {
      if (!filter(pipe.a.node, pipe.b.node)) continue;
      pipe.severed = true;
      this.#pipes.delete(pipe);
      this.stats.severed++;
      n++;
      for (const end of [pipe.a, pipe.b]) {
        const inc = end.inc;
        this.#sched.after(this.#delay(), `sever ${end.node.name}`, () => end.node.gate(inc, 'sever', () => end.remoteEnd('rst')));
      }
    }
    if (n > 0) this.#sched.note(`sever ${n}`);
    return n;
  }

  /** Nodes on different sides cannot reach each other until heal(): messages wait, dials time out. */
  partition(side1: readonly SimNode[], side2: readonly SimNode[]): void {
    for (const a of side1) for (const b of side2) this.#blocked.add(pairKey(a, b));
    this.#sched.note(`partition ${side1.map((n) => n.name).join(',')} | ${side2.map((n) => n.name).join(',')}`);
  }

  /** End every partition: held messages are delivered. */
  heal(): void {
    this.#blocked.clear();
    this.#sched.note('heal');
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      if (h.bytes === 'fin' || h.bytes === 'rst') this.transmitClose(h.from, h.bytes);
      else this.transmit(h.from, h.bytes);
    }
  }

  /** True when a partition separates the two nodes. */
  isBlocked(a: SimNode, b: SimNode): boolean {
    return this.#blocked.size > 0 && this.#blocked.has(pairKey(a, b));
  }

  /** Called by SimNode.crash(). A process crash resets every connection of the process (each peer sees
   * "reset" after the data already sent) and dials to its address are refused; `resets: false` loses those
   * resets on the way; a host crash resets nothing (and dials time out). */
  nodeCrashed(node: SimNode, hostCrash: boolean, resets = !hostCrash): void {
    for (const [addr, l] of this.#listeners) if (l.node === node) this.#listeners.delete(addr);
    for (const pipe of [...this.#pipes]) {
      const mine = pipe.a.node === node ? pipe.a : pipe.b.node === node ? pipe.b : undefined;
      if (!mine || mine.inc !== node.incarnation) continue;
      this.#pipes.delete(pipe);
      if (!hostCrash && resets) this.transmitClose(mine, 'rst', true);
    }
    if (!hostCrash && !resets) this.#resetsLost.add(node);
  }

  /** Processes that died with their resets lost: data sent to them later gets no reset either (until
   * they listen again). */
  readonly #resetsLost = new Set<SimNode>();

  // ---- internals ----------------------------------------------------------------------------------

  #delay(): number {
    const f = this.faults;
    let d = this.#rng.between(f.minDelayMs, f.maxDelayMs);
    if (f.spikeRate > 0 && this.#rng.chance(f.spikeRate)) d += this.#rng.between(0, f.spikeMs);
    return d;
  }

  /** Carry bytes from one end of a connection to the other, applying the faults (held while the ends are partitioned). */
  transmit(from: SimConnection, bytes: Uint8Array): void {
    const to = from.peer;
    const pipe = from.pipe;
    if (pipe.severed) return;
    if (this.isBlocked(from.node, to.node)) {
      this.#held.push({ from, bytes });
      return;
    }
    this.stats.sent++;
    const f = this.faults;
    const first = from.out.sent++ === 0;
    const verdict = this.interceptor?.(from.node, to.node, bytes);
    if (verdict === 'drop') {
      this.stats.lost++;
      this.#sched.note(`dropped ${from.node.name}->${to.node.name}`);
      this.onTransmit?.(from.node, to.node, bytes);
      return;
    }
    const extra = typeof verdict === 'number' ? verdict : 0;
    if (!first && f.lossRate > 0 && this.#rng.chance(f.lossRate)) {
      this.stats.lost++;
      this.#sched.note(`lost ${from.node.name}->${to.node.name}`);
      return;
    }
    const copies = !first && f.duplicateRate > 0 && this.#rng.chance(f.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let at = this.#sched.now + this.#delay() + extra;
      if (!first && f.reorderRate > 0 && this.#rng.chance(f.reorderRate)) {
        this.stats.reordered++;
        at = Math.max(at, from.out.firstAt);
      } else at = Math.max(at, from.out.lastAt);
      if (first) from.out.firstAt = at;
      from.out.lastAt = Math.max(from.out.lastAt, at);
      const label = `msg ${from.node.name}->${to.node.name} ${bytes.length}`;
      this.#sched.at(at, label, () => {
        if (pipe.severed) return;
        this.#deliver(
          from,
          to,
          label,
          () => {
            this.stats.delivered++;
            to.receive(bytes);
          },
          false,
          bytes.length,
        );
      });
    }
    this.onTransmit?.(from.node, to.node, bytes);
  }

  /** Send a FIN (graceful close, after the data) or RST (reset) to the peer of `from`. */
  transmitClose(from: SimConnection, kind: 'fin' | 'rst', fromDeadProcess = false): void {
    const to = from.peer;
    const pipe = from.pipe;
    if (pipe.severed) return;
    if (this.isBlocked(from.node, to.node)) {
      this.#held.push({ from, bytes: kind });
      return;
    }
    this.#pipes.delete(pipe);
    const at = Math.max(this.#sched.now + this.#delay(), from.out.lastAt);
    from.out.lastAt = at;
    const label = `${kind} ${from.node.name}->${to.node.name}`;
    this.#sched.at(at, label, () => {
      if (kind === 'rst') pipe.severed = true;
      this.#deliver(from, to, label, () => to.remoteEnd(kind), fromDeadProcess);
    });
  }

  #deliver(from: SimConnection, to: SimConnection, label: string, fn: () => void, quiet = false, bytes?: number): void {
    const delivered = to.node.gate(to.inc, label, fn, bytes);
    // Data reaching a dead process on a live host (crashed, or rebooted since): the kernel answers with a reset.
    if (!delivered && !quiet && to.node.host.up && from.alive && !from.isClosed && !this.#resetsLost.has(to.node)) {
      const inc = from.inc;
      this.#sched.after(this.#delay(), `rst ${to.node.name}->${from.node.name}`, () =>
        from.node.gate(inc, 'rst', () => from.remoteEnd('rst')),
      );
    }
  }

  #listen(node: SimNode, inc: number, address: string, options: ListenOptions): Promise<Listener> {
    if (node.incarnation !== inc || node.state === 'down') return new Promise(() => {});
    try {
      checkConnectionOptions(options);
      checkAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    const existing = this.#listeners.get(address);
    if (existing && !existing.closedFlag) return Promise.reject(new AddressInUseError(`${address} is in use`, { address }));
    this.#resetsLost.delete(node);
    const l = new SimListener(this, node, inc, address, options);
    this.#listeners.set(address, l);
    this.#addressHost.set(address, node.host);
    return Promise.resolve(l);
  }

  /** Remove a listener from its address. */
  unlisten(l: SimListener): void {
    if (this.#listeners.get(l.address) === l) this.#listeners.delete(l.address);
  }

  #dial(node: SimNode, inc: number, address: string, options: DialOptions): Promise<Connection> {
    if (node.incarnation !== inc || node.state === 'down') return new Promise(() => {});
    try {
      checkConnectionOptions(options);
      checkAddress(address);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        fn();
      };
      const timeoutMs = options.timeoutMs ?? 10_000;
      const timer = this.#sched.after(timeoutMs, `dial-timeout ${node.name}`, () =>
        node.gate(inc, 'dial-timeout', () =>
          settle(() => reject(new TimeoutError(`dial ${address} timed out after ${timeoutMs} ms`, { address }))),
        ),
      );
      if (options.signal) {
        const signal = options.signal;
        const aborted = (): AbortError => new AbortError(`dial ${address} aborted`, { address, cause: signal.reason });
        if (signal.aborted) {
          settle(() => reject(aborted()));
          return;
        }
        signal.addEventListener('abort', () => settle(() => reject(aborted())), { once: true });
      }
      const n = ++this.#connectionIds;
      const local = `sim://${node.name}#${n}`;
      this.#sched.after(this.#delay(), `syn ${node.name}->${address}`, () => {
        const l = this.#listeners.get(address);
        const host = this.#addressHost.get(address);
        if (l && this.isBlocked(node, l.node)) return; // lost in the partition: the dial times out
        if (!l || l.closedFlag) {
          if (host && !host.up) return; // a dead machine answers nothing
          this.#sched.after(this.#delay(), `refused ${address}->${node.name}`, () =>
            node.gate(inc, 'refused', () =>
              settle(() => reject(new ConnectionRefusedError(`nothing listens at ${address}`, { address, nothingListens: true }))),
            ),
          );
          return;
        }
        const limit = l.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
        if (l.open >= limit) {
          // A live listener at its limit: refused at once, and the refusal proves nothing about the process.
          this.#sched.after(this.#delay(), `refused ${address}->${node.name}`, () =>
            node.gate(inc, 'refused', () =>
              settle(() =>
                reject(
                  new ConnectionRefusedError(`${address} refused the connection: ${limit} open (maxConnections)`, {
                    address,
                    nothingListens: false,
                  }),
                ),
              ),
            ),
          );
          return;
        }
        // Each end has its own limit (a send above the sender's fails there; above the receiver's, the receiver drops the connection).
        const client = new SimConnection(this, `sim-${n}c`, node, inc, local, address, options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE);
        const server = new SimConnection(
          this,
          `sim-${n}s`,
          l.node,
          l.inc,
          address,
          local,
          l.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
        );
        l.open++;
        void server.closed.then(() => l.open--);
        client.peer = server;
        server.peer = client;
        const pipe = new Pipe(client, server);
        client.pipe = pipe;
        server.pipe = pipe;
        this.#pipes.add(pipe);
        l.node.gate(l.inc, `accept ${address}`, () => l.accept(server));
        client.out.lastAt = this.#sched.now;
        server.out.lastAt = this.#sched.now;
        this.#sched.after(this.#delay(), `synack ${address}->${node.name}`, () => {
          node.gate(inc, 'synack', () => {
            if (settled)
              client.abort(); // the dial timed out or was aborted meanwhile: nobody wants it
            else settle(() => resolve(client));
          });
        });
      });
    });
  }
}

function pairKey(a: SimNode, b: SimNode): string {
  return a.name < b.name ? `${a.name}|${b.name}` : `${b.name}|${a.name}`;
}
