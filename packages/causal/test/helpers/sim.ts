// A deterministic simulation of n members running CausalDelivery over a network with random delays,
// reordering, duplication and losses (with redelivery), on virtual time. The test keeps its own record of
// happens-before — the set of sends in each send's causal past, built from what actually happened, never
// from the library's clocks — and checks every delivery against it as it happens.
import {
  CausalDelivery,
  decodeStamp,
  encodeStamp,
  stampSeq,
  type CausalGapError,
  type CausalLimits,
  type CausalState,
  type ReceiveOutcome,
} from '../../src/index.js';
import { mulberry32, VirtualClock } from './virtual-clock.js';

export interface ScheduledSend {
  at: number;
  proc: number;
  /** A member index (direct; the sender itself is skipped to the next one) or 'all' (broadcast). */
  to: number | 'all';
}

export interface SimOptions extends CausalLimits {
  n: number;
  seed: number;
  sends: readonly ScheduledSend[];
  /** Probability that a member sends a message of its own right after a delivery (chains of causality). */
  reactProb?: number;
  /** Most messages in the run, reactions included. */
  maxMessages?: number;
  /** One-way delay per transmission, uniform in [min, max]. */
  delay?: readonly [number, number];
  /** Probability that one transmission is lost (the sender sends it again after retransmitMs); the 6th attempt always gets through. */
  lossRate?: number;
  /** Probability that a transmission arrives twice. */
  dupRate?: number;
  retransmitMs?: number;
  /**
   * A transmission lost for good: message number `message` (in send order) to its `to`-th destination
   * (modulo their number). Its sender then sends that destination one more direct message, which depends
   * on the lost one and so must be held and reported.
   */
  lostForGood?: { message: number; to: number };
  gapTimeoutMs?: number;
  /** At `at`, member `proc` is replaced by a new core restored from its snapshot (what it held is sent again). */
  restart?: { at: number; proc: number };
  /** Instead of reactProb: after member p delivers m, the message p sends in reaction (a member, 'all', or nothing). */
  react?: (p: number, m: SimMessage, rng: () => number) => number | 'all' | undefined;
  /** Check every delivery against happens-before (default true; off for long measurement runs). */
  check?: boolean;
  onSend?: (m: SimMessage) => void;
  onDeliver?: (p: number, m: SimMessage) => void;
  /** After each receive: called with the member and the outcome (e.g. to check bounds). */
  afterReceive?: (proc: number, core: CausalDelivery<number>, outcome: ReceiveOutcome) => void;
}

export interface SimMessage {
  id: number;
  sender: number;
  kind: 'direct' | 'broadcast';
  /** Members the message is addressed to. */
  dests: number[];
  /** Ids of every send in this send's causal past (happens-before, built by the test). */
  past: Set<number>;
  seq: number;
  sentAt: number;
  wire: Uint8Array;
}

export interface SimResult {
  messages: SimMessage[];
  /** The transmission lost for good, resolved: message id and destination member. */
  lost: { message: number; to: number } | undefined;
  /** Per member: message ids in delivery order. */
  deliveries: number[][];
  gaps: { proc: number; at: number; gap: CausalGapError }[];
  refusals: number;
  duplicatesDropped: number;
  violations: string[];
  cores: CausalDelivery<number>[];
  maxHeld: number[];
  /** Per member: env time at which each held message id arrived (first time it was held). */
  heldAt: Map<number, number>[];
  clock: VirtualClock;
}

export function runSim(o: SimOptions): SimResult {
  const clock = new VirtualClock();
  const rng = mulberry32(o.seed);
  const members = Array.from({ length: o.n }, (_, i) => `p${i}`);
  const delay = o.delay ?? [1, 50];
  const retransmitMs = o.retransmitMs ?? 40;
  const maxMessages = o.maxMessages ?? 120;
  const messages: SimMessage[] = [];
  const deliveries: number[][] = members.map(() => []);
  const deliveredSet: Set<number>[] = members.map(() => new Set());
  const pasts: Set<number>[] = members.map(() => new Set());
  const gaps: SimResult['gaps'] = [];
  const violations: string[] = [];
  const maxHeld = members.map(() => 0);
  const heldAt: Map<number, number>[] = members.map(() => new Map());
  let refusals = 0;
  let duplicatesDropped = 0;
  let lost: SimResult['lost'];

  const addressedTo = (m: SimMessage, p: number): boolean => m.dests.includes(p);

  const makeCore = (self: string, p: number, state?: CausalState): CausalDelivery<number> =>
    new CausalDelivery<number>({
      self,
      state,
      members,
      env: clock,
      gapTimeoutMs: o.gapTimeoutMs ?? 1_000_000,
      maxHeldMessages: o.maxHeldMessages,
      maxHeldBytes: o.maxHeldBytes,
      maxHeldPerSender: o.maxHeldPerSender,
      sizeOf: () => 100,
      onGap: (gap) => gaps.push({ proc: p, at: clock.now(), gap }),
      deliver: (d) => {
        const m = messages[d.payload]!;
        if (deliveredSet[p]!.has(m.id)) violations.push(`p${p} delivered message ${m.id} twice`);
        if (!addressedTo(m, p)) violations.push(`p${p} delivered message ${m.id}, not addressed to it`);
        if (d.from !== members[m.sender] || d.kind !== m.kind || d.id.seq !== m.seq)
          violations.push(`p${p}: delivery id ${JSON.stringify(d.id)} does not match message ${m.id}`);
        for (const before of o.check === false ? [] : m.past) {
          const b = messages[before]!;
          if (addressedTo(b, p) && !deliveredSet[p]!.has(before)) {
            violations.push(`p${p} delivered ${m.id} (from p${m.sender}) before its causal predecessor ${before} (from p${b.sender})`);
          }
        }
        deliveredSet[p]!.add(m.id);
        deliveries[p]!.push(m.id);
        if (o.check !== false) for (const x of m.past) pasts[p]!.add(x);
        pasts[p]!.add(m.id);
        o.onDeliver?.(p, m);
        if (o.react) {
          const to = o.react(p, m, rng);
          if (to !== undefined) send(p, to);
        } else if (rng() < (o.reactProb ?? 0)) {
          const choice = rng();
          // re-entrant send from inside the delivery callback, as an application would do
          send(p, choice < 0.2 ? 'all' : choice < 0.6 ? m.sender : Math.floor(rng() * o.n));
        }
      },
    });
  const cores: CausalDelivery<number>[] = members.map((self, p) => makeCore(self, p));
  if (o.restart) {
    const { at, proc } = o.restart;
    const p = proc % o.n;
    clock.setTimer(at, () => {
      // a replica takes over from a snapshot: held messages are gone and come again from their senders
      const old = cores[p]!;
      const state = JSON.parse(JSON.stringify(old.snapshot())) as CausalState;
      const held = old.heldMessages();
      old.close();
      cores[p] = makeCore(members[p]!, p, state);
      for (const h of held) {
        const m = messages.find((x) => `p${x.sender}` === h.id.from && x.kind === h.id.kind && x.seq === h.id.seq)!;
        clock.setTimer(retransmitMs, () => transmit(m, p, 1));
      }
    });
  }

  function send(p: number, to: number | 'all', force = false): void {
    if ((messages.length >= maxMessages && !force) || o.n < 2) return;
    let dest = to;
    if (dest !== 'all' && dest === p) dest = (p + 1) % o.n;
    const core = cores[p]!;
    const id = messages.length;
    const msg = dest === 'all' ? core.broadcast(id) : core.send(members[dest]!, id);
    const m: SimMessage = {
      id,
      sender: p,
      kind: msg.stamp.kind,
      dests: dest === 'all' ? members.map((_, i) => i).filter((i) => i !== p) : [dest],
      past: o.check === false ? new Set() : new Set(pasts[p]),
      seq: stampSeq(msg.stamp),
      sentAt: clock.now(),
      wire: encodeStamp(msg.stamp),
    };
    messages.push(m);
    pasts[p]!.add(id);
    o.onSend?.(m);
    if (o.lostForGood?.message === id) {
      lost = { message: id, to: m.dests[o.lostForGood.to % m.dests.length]! };
      const dest = lost.to;
      clock.setTimer(1, () => send(p, dest, true));
    }
    for (const d of m.dests) transmit(m, d, 1);
  }

  function transmit(m: SimMessage, to: number, attempt: number): void {
    if (lost && lost.message === m.id && lost.to === to) return;
    if (attempt < 6 && rng() < (o.lossRate ?? 0)) {
      clock.setTimer(retransmitMs, () => transmit(m, to, attempt + 1));
      return;
    }
    const arrive = (): void => {
      const core = cores[to]!;
      const outcome = core.receive({ stamp: decodeStamp(m.wire, o.n), payload: m.id });
      if (outcome.status === 'duplicate') duplicatesDropped++;
      if (outcome.status === 'held' && !heldAt[to]!.has(m.id)) heldAt[to]!.set(m.id, clock.now());
      if (outcome.status === 'refused') {
        refusals++;
        clock.setTimer(retransmitMs, () => transmit(m, to, attempt + 1));
      }
      maxHeld[to] = Math.max(maxHeld[to]!, core.held);
      o.afterReceive?.(to, core, outcome);
    };
    const d = delay[0] + Math.floor(rng() * (delay[1] - delay[0] + 1));
    clock.setTimer(d, arrive);
    if (rng() < (o.dupRate ?? 0)) clock.setTimer(d + Math.floor(rng() * 100), arrive);
  }

  for (const s of o.sends) clock.setTimer(s.at, () => send(s.proc % o.n, s.to === 'all' ? 'all' : s.to % o.n));
  clock.runAll();
  return { messages, lost, deliveries, gaps, refusals, duplicatesDropped, violations, cores, maxHeld, heldAt, clock };
}

/** Ids of the messages addressed to member p. */
export function addressedTo(result: SimResult, p: number): number[] {
  return result.messages.filter((m) => m.dests.includes(p)).map((m) => m.id);
}
