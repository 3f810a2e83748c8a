/**
 * The pure causal-delivery core of one member: it stamps outgoing messages and takes incoming ones in,
 * delivering each as soon as its causal predecessors addressed to this member have been delivered.
 * No network, no I/O: time and timers come from the injected CausalEnv, deliveries and gap reports go to
 * callbacks. The group API (`createCausalGroup`) runs it over a transport; a replicated service can embed
 * it directly and carry the stamps on its own messages.
 *
 * Direct messages follow Schiper–Eggli–Sandoz (the stamp carries the in-transit set); broadcasts follow
 * CBCAST (deliver m from j when VT(m)[j] = VT(p)[j] + 1 and VT(m)[k] ≤ VT(p)[k] for k ≠ j). Both kinds
 * carry both vectors, so causal order holds across them too. See docs/CAUSAL.md.
 */
import { type CausalState, checkCausalState } from './delivery-state.js';
import {
  type CausalDeliveryOptions,
  type CausalDeliveryStats,
  DEFAULT_GAP_TIMEOUT_MS,
  DEFAULT_MAX_HELD_BYTES,
  DEFAULT_MAX_HELD_MESSAGES,
  type Delivery,
  type HeldReport,
  type ReceiveOutcome,
} from './delivery-types.js';
import type { CausalEnv } from './env.js';
import {
  CausalBufferFullError,
  CausalClosedError,
  CausalGapError,
  CausalProtocolError,
  type MessageId,
  type MissingPredecessor,
} from './errors.js';
import { GapDeadlines } from './gap-deadlines.js';
import { InTransitSet } from './in-transit.js';
import { MinHeap } from './min-heap.js';
import { BROADCAST, checkStamp, stampSeq, type CausalMessage, type CausalStamp } from './stamp.js';
import { VectorClock } from './vector-clock.js';

export {
  DEFAULT_GAP_TIMEOUT_MS,
  DEFAULT_MAX_HELD_BYTES,
  DEFAULT_MAX_HELD_MESSAGES,
  type CausalDeliveryOptions,
  type CausalDeliveryStats,
  type CausalLimits,
  type Delivery,
  type HeldReport,
  type ReceiveOutcome,
} from './delivery-types.js';
export type { CausalState } from './delivery-state.js';

const DIRECT = 0;
const BCAST = 1;

interface Held<P> {
  readonly message: CausalMessage<P>;
  readonly id: MessageId;
  readonly key: string;
  readonly bytes: number;
  readonly since: number;
  live: boolean;
  reported: boolean;
}

const keyOf = (kind: 'direct' | 'broadcast', from: number, seq: number): string => `${kind === 'direct' ? 'd' : 'b'}${from}:${seq}`;

function defaultSizeOf(payload: unknown): number {
  if (payload instanceof Uint8Array) return payload.byteLength;
  if (typeof payload === 'string') return payload.length * 2;
  return 0;
}

/**
 * The causal delivery core: stamps outgoing messages and delivers incoming ones only once their causal past has been delivered, holding
 * the rest (bounded).
 */
export class CausalDelivery<P = Uint8Array> {
  readonly self: string;
  readonly members: readonly string[];
  readonly #me: number;
  readonly #size: number;
  readonly #index = new Map<string, number>();
  readonly #env: CausalEnv;
  readonly #deliver: (delivery: Delivery<P>) => void;
  readonly #onGap: ((gap: CausalGapError) => void) | undefined;
  readonly #sizeOf: (payload: P) => number;
  readonly #maxHeld: number;
  readonly #maxHeldBytes: number;
  readonly #maxPerSender: number;

  /** Direct-send vector: entry k = direct messages of k in this member's causal past. */
  readonly #direct: VectorClock;
  /** CBCAST's VT: entry k = broadcasts of k delivered here (own: sent). */
  readonly #broadcast: VectorClock;
  readonly #inTransit: InTransitSet;
  /** For each member d: the largest direct vector seen on a message d sent (what d has provably delivered). */
  readonly #knownDelivered = new Map<number, number[]>();
  /** Highest direct seq delivered here from each member (for reports). */
  readonly #lastDirect: number[];

  readonly #held = new Map<string, Held<P>>();
  readonly #heldPerSender: number[];
  #heldBytes = 0;
  /** Waiters per (kind, member): held messages keyed by the entry value they wait for. */
  readonly #waiters: MinHeap<Held<P>>[];
  /** Held messages in arrival order, for gap deadlines (lazy: delivered/reported ones are skipped). */
  readonly #gaps: GapDeadlines<Held<P>>;
  #draining = false;
  #closed = false;
  readonly #stats: CausalDeliveryStats = { delivered: 0, held: 0, heldBytes: 0, duplicates: 0, refused: 0, gaps: 0, maxHeldSeen: 0 };

  constructor(options: CausalDeliveryOptions<P>) {
    const { members, self } = options;
    if (members.length < 1) throw new RangeError('a causal group needs at least one member');
    members.forEach((m, i) => {
      if (typeof m !== 'string' || m.length === 0) throw new RangeError(`member ${i} has no id`);
      if (this.#index.has(m)) throw new RangeError(`member "${m}" is listed twice`);
      this.#index.set(m, i);
    });
    const me = this.#index.get(self);
    if (me === undefined) throw new RangeError(`self "${self}" is not one of the members`);
    const positive = (name: string, v: number | undefined, def: number): number => {
      if (v === undefined) return def;
      if (!(typeof v === 'number' && v >= 0)) throw new RangeError(`${name} must be a non-negative number, got ${String(v)}`);
      return v;
    };
    this.self = self;
    this.members = [...members];
    this.#me = me;
    this.#size = members.length;
    this.#env = options.env;
    this.#deliver = options.deliver;
    this.#onGap = options.onGap;
    const gapTimeoutMs = positive('gapTimeoutMs', options.gapTimeoutMs, DEFAULT_GAP_TIMEOUT_MS);
    this.#gaps = new GapDeadlines(this.#env, gapTimeoutMs, () => this.#reportGaps());
    this.#sizeOf = options.sizeOf ?? defaultSizeOf;
    this.#maxHeld = positive('maxHeldMessages', options.maxHeldMessages, DEFAULT_MAX_HELD_MESSAGES);
    this.#maxHeldBytes = positive('maxHeldBytes', options.maxHeldBytes, DEFAULT_MAX_HELD_BYTES);
    this.#maxPerSender = positive('maxHeldPerSender', options.maxHeldPerSender, this.#maxHeld);
    this.#direct = new VectorClock(this.#size);
    this.#broadcast = new VectorClock(this.#size);
    this.#inTransit = new InTransitSet(this.#size);
    this.#lastDirect = new Array<number>(this.#size).fill(0);
    this.#heldPerSender = new Array<number>(this.#size).fill(0);
    this.#waiters = Array.from({ length: 2 * this.#size }, () => new MinHeap<Held<P>>());
    if (options.state) this.#restore(options.state);
  }

  // ---- state --------------------------------------------------------------------------------------------

  /**
   * The delivery state (clocks, in-transit set, what is known delivered), as plain JSON-safe data. Held
   * messages are not part of it: they were not delivered, and their senders retransmit them. A replica that
   * takes over (or a restarted one after a state transfer) passes it as `state` to continue exactly where
   * this one stood: same stamps for the next sends, same duplicates recognised.
   */
  snapshot(): CausalState {
    return {
      members: [...this.members],
      self: this.self,
      direct: this.#direct.toArray(),
      broadcast: this.#broadcast.toArray(),
      inTransit: this.#inTransit.entries(),
      knownDelivered: [...this.#knownDelivered.entries()]
        .sort(([a], [b]) => a - b)
        .map(([member, direct]) => ({ member, direct: [...direct] })),
      lastDirect: [...this.#lastDirect],
    };
  }

  #restore(state: CausalState): void {
    checkCausalState(state, this.self, this.members, this.#me);
    const n = this.#size;
    for (const e of state.inTransit) for (let k = 0; k < n; k++) this.#inTransit.record(e.to, k, e.latest[k]!);
    for (const d of state.knownDelivered) this.#knownDelivered.set(d.member, [...d.direct]);
    this.#direct.merge(state.direct);
    this.#broadcast.merge(state.broadcast);
    for (let k = 0; k < n; k++) this.#lastDirect[k] = state.lastDirect[k]!;
  }

  // ---- sending ------------------------------------------------------------------------------------------

  /**
   * Records the send of a direct message to `to` and returns it stamped; transmit it yourself (any number
   * of times: the receiver drops duplicates). Messages are stamped in call order, which is the causal order.
   */
  send(to: string, payload: P): CausalMessage<P> {
    this.#open();
    const dest = this.indexOf(to);
    if (dest === this.#me) throw new RangeError(`${this.self} cannot send a direct message to itself`);
    const seq = this.#direct.tick(this.#me);
    const stamp: CausalStamp = {
      kind: 'direct',
      from: this.#me,
      to: dest,
      direct: this.#direct.toArray(),
      broadcast: this.#broadcast.toArray(),
      inTransit: this.#inTransit.entries(),
    };
    this.#inTransit.record(dest, this.#me, seq);
    return { stamp, payload };
  }

  /** Records a broadcast to every other member and returns it stamped (the sender does not deliver its own broadcast). */
  broadcast(payload: P): CausalMessage<P> {
    this.#open();
    this.#broadcast.tick(this.#me);
    const stamp: CausalStamp = {
      kind: 'broadcast',
      from: this.#me,
      to: BROADCAST,
      direct: this.#direct.toArray(),
      broadcast: this.#broadcast.toArray(),
      inTransit: this.#inTransit.entries(),
    };
    return { stamp, payload };
  }

  // ---- receiving ----------------------------------------------------------------------------------------

  /**
   * Takes in a message addressed to this member (a direct message to it, or another member's broadcast).
   * Delivers it and every held message it releases (through `deliver`), holds it, drops it as a duplicate,
   * or refuses it when the held buffer is full. Throws CausalProtocolError for a malformed stamp, a message
   * addressed to another member or stamped as this member's own. Must not be called from inside `deliver`.
   * If `deliver` throws, the remaining deliveries still happen and the first error is rethrown afterwards.
   */
  receive(message: CausalMessage<P>): ReceiveOutcome {
    this.#open();
    if (this.#draining) throw new Error('CausalDelivery.receive() called from inside a delivery callback');
    const stamp = message.stamp;
    checkStamp(stamp, this.#size);
    const from = stamp.from;
    if (from === this.#me) throw new CausalProtocolError(`${this.self} received a message stamped as its own`);
    if (stamp.kind === 'direct' && stamp.to !== this.#me) {
      throw new CausalProtocolError(`${this.self} received a direct message addressed to ${this.members[stamp.to]}`);
    }
    const seq = stampSeq(stamp);
    const id: MessageId = { from: this.members[from]!, kind: stamp.kind, seq };
    const key = keyOf(stamp.kind, from, seq);
    const delivered = stamp.kind === 'direct' ? this.#direct.get(from) >= seq : this.#broadcast.get(from) >= seq;
    if (delivered || this.#held.has(key)) {
      this.#stats.duplicates++;
      return { status: 'duplicate', id, delivered: 0 };
    }
    const wait = this.#firstUnmet(stamp);
    if (wait === undefined) {
      const before = this.#stats.delivered;
      this.#drain(message, id);
      return { status: 'delivered', id, delivered: this.#stats.delivered - before };
    }
    const bytes = this.#sizeOf(message.payload) + 8 * this.#size * (2 + stamp.inTransit.length) + 64;
    const limit =
      this.#held.size >= this.#maxHeld
        ? (['messages', this.#maxHeld] as const)
        : this.#heldBytes + bytes > this.#maxHeldBytes
          ? (['bytes', this.#maxHeldBytes] as const)
          : this.#heldPerSender[from]! >= this.#maxPerSender
            ? (['perSender', this.#maxPerSender] as const)
            : undefined;
    if (limit) {
      this.#stats.refused++;
      return { status: 'refused', id, delivered: 0, error: new CausalBufferFullError('held', id.from, limit[0], limit[1]) };
    }
    const held: Held<P> = { message, id, key, bytes, since: this.#env.now(), live: true, reported: false };
    this.#held.set(key, held);
    this.#heldPerSender[from]!++;
    this.#heldBytes += bytes;
    this.#stats.maxHeldSeen = Math.max(this.#stats.maxHeldSeen, this.#held.size);
    this.#waiters[wait.kind * this.#size + wait.member]!.push(wait.value, held);
    this.#gaps.add(held, this.#held.size);
    this.#gaps.arm();
    return { status: 'held', id, delivered: 0 };
  }

  /** The first predecessor condition `stamp` does not meet here: wait until entry `member` of the (kind) vector reaches `value`. */
  #firstUnmet(stamp: CausalStamp): { kind: number; member: number; value: number } | undefined {
    const vt = this.#broadcast.entries;
    for (let k = 0; k < this.#size; k++) {
      const need = stamp.kind === 'broadcast' && k === stamp.from ? stamp.broadcast[k]! - 1 : stamp.broadcast[k]!;
      if (vt[k]! < need) return { kind: BCAST, member: k, value: need };
    }
    const mine = stamp.inTransit.find((e) => e.to === this.#me);
    if (mine) {
      const dv = this.#direct.entries;
      for (let k = 0; k < this.#size; k++) {
        if (mine.latest[k]! > dv[k]!) return { kind: DIRECT, member: k, value: mine.latest[k]! };
      }
    }
    return undefined;
  }

  /** Delivers `first`, then every held message that becomes deliverable, in order. */
  #drain(first: CausalMessage<P>, firstId: MessageId): void {
    // delivered entries are cleared as the loop goes, so a long drain does not keep their payloads alive
    const ready: ({ message: CausalMessage<P>; id: MessageId } | undefined)[] = [{ message: first, id: firstId }];
    let failure: { error: unknown } | undefined;
    this.#draining = true;
    try {
      for (let i = 0; i < ready.length && !this.#closed; i++) {
        const { message, id } = ready[i]!;
        ready[i] = undefined;
        const changed = this.#apply(message.stamp);
        try {
          this.#deliver({ id, from: id.from, kind: id.kind, payload: message.payload, stamp: message.stamp });
        } catch (error) {
          failure ??= { error };
        }
        for (const w of changed) {
          const heap = this.#waiters[w]!;
          const current = (w < this.#size ? this.#direct : this.#broadcast).get(w % this.#size);
          while (heap.size > 0 && heap.peekKey()! <= current) {
            const held = heap.pop()!;
            if (!held.live) continue;
            const next = this.#firstUnmet(held.message.stamp);
            if (next) {
              this.#waiters[next.kind * this.#size + next.member]!.push(next.value, held);
            } else {
              this.#unhold(held);
              ready.push({ message: held.message, id: held.id });
            }
          }
        }
      }
    } finally {
      this.#draining = false;
    }
    if (failure) throw failure.error;
  }

  /** Updates the delivery state for a delivered stamp; returns the waiter slots whose entries grew. */
  #apply(stamp: CausalStamp): number[] {
    const changed: number[] = [];
    const j = stamp.from;
    this.#broadcast.merge(stamp.broadcast, (k) => changed.push(BCAST * this.#size + k));
    this.#direct.merge(stamp.direct, (k) => changed.push(DIRECT * this.#size + k));
    if (stamp.kind === 'direct') this.#lastDirect[j] = stamp.direct[j]!;
    let known = this.#knownDelivered.get(j);
    if (!known) this.#knownDelivered.set(j, (known = [...stamp.direct]));
    else for (let k = 0; k < this.#size; k++) known[k] = Math.max(known[k]!, stamp.direct[k]!);
    this.#inTransit.purgeImplied(stamp.direct, stamp.inTransit);
    for (const entry of stamp.inTransit) {
      if (entry.to !== this.#me) this.#inTransit.merge(entry, this.#knownDelivered.get(entry.to));
    }
    this.#inTransit.purge(j, known);
    this.#stats.delivered++;
    return changed;
  }

  #unhold(held: Held<P>): void {
    held.live = false;
    this.#held.delete(held.key);
    this.#heldPerSender[this.#index.get(held.id.from)!]!--;
    this.#heldBytes -= held.bytes;
  }

  // ---- gap deadlines ------------------------------------------------------------------------------------

  #reportGaps(): void {
    if (this.#closed) return;
    const now = this.#env.now();
    const reports: CausalGapError[] = [];
    for (const held of this.#gaps.takeDue(now)) {
      this.#stats.gaps++;
      reports.push(new CausalGapError(this.self, held.id, this.#missing(held.message.stamp), held.since, now - held.since));
    }
    this.#gaps.arm();
    for (const gap of reports) this.#onGap?.(gap);
  }

  #missing(stamp: CausalStamp): MissingPredecessor[] {
    const out: MissingPredecessor[] = [];
    const vt = this.#broadcast.entries;
    for (let k = 0; k < this.#size; k++) {
      const need = stamp.kind === 'broadcast' && k === stamp.from ? stamp.broadcast[k]! - 1 : stamp.broadcast[k]!;
      if (vt[k]! < need) {
        out.push({
          from: this.members[k]!,
          kind: 'broadcast',
          after: vt[k]!,
          upTo: need,
          held: this.#held.has(keyOf('broadcast', k, vt[k]! + 1)),
        });
      }
    }
    const mine = stamp.inTransit.find((e) => e.to === this.#me);
    if (mine) {
      const dv = this.#direct.entries;
      for (let k = 0; k < this.#size; k++) {
        const upTo = mine.latest[k]!;
        if (upTo > dv[k]!)
          out.push({
            from: this.members[k]!,
            kind: 'direct',
            after: this.#lastDirect[k]!,
            upTo,
            held: this.#held.has(keyOf('direct', k, upTo)),
          });
      }
    }
    return out;
  }

  // ---- inspection and control ---------------------------------------------------------------------------

  /** Index of a member id; throws RangeError for a stranger. */
  indexOf(member: string): number {
    const i = this.#index.get(member);
    if (i === undefined) throw new RangeError(`"${member}" is not a member of the group`);
    return i;
  }

  /** Messages held now. */
  get held(): number {
    return this.#held.size;
  }

  /** Bytes held now (payload sizes plus stamps), counted against `maxHeldBytes`. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Every held message with what it waits for, in arrival order. */
  heldMessages(): HeldReport[] {
    return [...this.#held.values()]
      .sort((a, b) => a.since - b.since)
      .map((h) => ({ id: h.id, heldSince: h.since, missing: this.#missing(h.message.stamp) }));
  }

  /** Copy of the direct-send vector. */
  directClock(): VectorClock {
    return this.#direct.clone();
  }

  /** Copy of the CBCAST vector (VT). */
  broadcastClock(): VectorClock {
    return this.#broadcast.clone();
  }

  /** A snapshot of the counters, with the current held messages and bytes. */
  stats(): CausalDeliveryStats {
    return { ...this.#stats, held: this.#held.size, heldBytes: this.#heldBytes };
  }

  /**
   * Drops every message held from `member` (e.g. after a gap report, when the application gives up on it);
   * returns how many. They are never delivered unless offered again.
   */
  discard(member: string): number {
    const from = this.indexOf(member);
    let n = 0;
    for (const held of [...this.#held.values()]) {
      if (this.#index.get(held.id.from) !== from) continue;
      this.#unhold(held);
      n++;
    }
    if (n > 0) {
      // rebuild the waiter heaps without the discarded messages (they would never be popped otherwise)
      for (const heap of this.#waiters) heap.clear();
      for (const held of this.#held.values()) {
        const wait = this.#firstUnmet(held.message.stamp)!;
        this.#waiters[wait.kind * this.#size + wait.member]!.push(wait.value, held);
      }
      this.#gaps.compact();
    }
    this.#gaps.arm();
    return n;
  }

  /** Stops the gap timer and drops held messages; later calls throw CausalClosedError. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gaps.clear();
    for (const held of [...this.#held.values()]) this.#unhold(held);
    for (const heap of this.#waiters) heap.clear();
  }

  /** True once `close` was called; offering or sending then throws CausalClosedError. */
  get closed(): boolean {
    return this.#closed;
  }

  #open(): void {
    if (this.#closed) throw new CausalClosedError('the causal delivery core is closed');
  }
}
