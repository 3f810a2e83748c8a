/**
 * Wing–Gong linearizability search with Lowe's memoisation (as in Porcupine / Knossos' "linear"
 * checker): walk the call/return events in time order, linearize a pending call when the model allows it,
 * backtrack at a return whose operation is not yet linearized, and never revisit a (linearized-set,
 * state) pair. Operations without a return (outcome unknown) may be linearized anywhere after their call
 * — or never: the search succeeds once every completed operation is linearized.
 */
import type { Model, Operation } from './model.js';

/** The search's answer; `unknown` when it gave up after `maxSteps`. */
export type SearchVerdict = 'linearizable' | 'not-linearizable' | 'unknown';

/** The verdict, the steps taken, the longest linearizable prefix found and the operations it got stuck on. */
export interface SearchResult<Input> {
  verdict: SearchVerdict;
  /** Search steps taken. */
  steps: number;
  /** The longest sequence of operations the search managed to linearize (diagnostics). */
  longestPrefix: Operation<Input>[];
  /** When not linearizable: completed operations never linearized in the longest attempt. */
  stuck: Operation<Input>[];
}

interface Event {
  kind: 'call' | 'return';
  op: number;
  time: number;
  prev: Event | null;
  next: Event | null;
  /** For a call: its return event (null when the outcome is unknown). */
  match: Event | null;
}

/** Options of searchLinearization. */
export interface SearchOptions {
  /** Give up (verdict 'unknown') after this many steps. Default 2,000,000. */
  maxSteps?: number;
}

/** Search for a linearization of a concurrent history against a sequential model (Wing–Gong with memoisation). */
export function searchLinearization<State, Input>(
  model: Model<State, Input>,
  ops: readonly Operation<Input>[],
  options: SearchOptions = {},
): SearchResult<Input> {
  const maxSteps = options.maxSteps ?? 2_000_000;
  const n = ops.length;
  const events: Event[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const call: Event = { kind: 'call', op: i, time: op.call, prev: null, next: null, match: null };
    events.push(call);
    if (op.return !== undefined) {
      if (op.return < op.call) throw new RangeError(`operation ${op.index} returns (${op.return}) before its call (${op.call})`);
      const ret: Event = { kind: 'return', op: i, time: op.return, prev: null, next: null, match: null };
      call.match = ret;
      events.push(ret);
    }
  }
  // Time order; at equal times calls first (such operations count as concurrent — the permissive choice
  // for clocks of limited resolution), then by operation index for determinism.
  events.sort((a, b) => a.time - b.time || (a.kind === b.kind ? a.op - b.op : a.kind === 'call' ? -1 : 1));
  const head: Event = { kind: 'call', op: -1, time: -Infinity, prev: null, next: null, match: null };
  let last = head;
  for (const e of events) {
    e.prev = last;
    last.next = e;
    last = e;
  }

  const lift = (call: Event): void => {
    call.prev!.next = call.next;
    if (call.next) call.next.prev = call.prev;
    const ret = call.match;
    if (ret) {
      ret.prev!.next = ret.next;
      if (ret.next) ret.next.prev = ret.prev;
    }
  };
  const unlift = (call: Event): void => {
    const ret = call.match;
    if (ret) {
      ret.prev!.next = ret;
      if (ret.next) ret.next.prev = ret;
    }
    call.prev!.next = call;
    if (call.next) call.next.prev = call;
  };

  const words = new Uint32Array(Math.max(1, Math.ceil(n / 32)));
  const setBit = (i: number) => (words[i >>> 5]! |= 1 << (i & 31));
  const clearBit = (i: number) => (words[i >>> 5]! &= ~(1 << (i & 31)));
  const bitsKey = (): string => {
    let s = '';
    for (let i = 0; i < words.length; i++) s += words[i]!.toString(36) + ',';
    return s;
  };

  let remaining = 0;
  for (const op of ops) if (op.return !== undefined) remaining++;

  const cache = new Set<string>();
  const stack: { call: Event; state: State }[] = [];
  let state = model.init();
  let entry: Event | null = head.next;
  let steps = 0;
  let longest: number[] = [];

  const result = (verdict: SearchVerdict): SearchResult<Input> => {
    const longestPrefix = longest.map((i) => ops[i]!);
    const inPrefix = new Set(longest);
    const stuck = verdict === 'not-linearizable' ? ops.filter((o, i) => o.return !== undefined && !inPrefix.has(i)) : [];
    return { verdict, steps, longestPrefix, stuck };
  };

  while (remaining > 0) {
    if (++steps > maxSteps) return result('unknown');
    if (entry === null) {
      // Only calls with unknown outcomes lie ahead and none fits here: backtrack.
      if (stack.length === 0) return result('not-linearizable');
      const top = stack.pop()!;
      state = top.state;
      clearBit(top.call.op);
      unlift(top.call);
      if (ops[top.call.op]!.return !== undefined) remaining++;
      entry = top.call.next;
      continue;
    }
    if (entry.kind === 'call') {
      const op = ops[entry.op]!;
      const r = model.step(state, op.input);
      if (r.ok) {
        setBit(entry.op);
        const key = bitsKey() + '|' + model.hash(r.state);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: entry, state });
          if (stack.length > longest.length) longest = stack.map((s) => s.call.op);
          state = r.state;
          lift(entry);
          if (op.return !== undefined) remaining--;
          entry = head.next;
          continue;
        }
        clearBit(entry.op);
      }
      entry = entry.next;
    } else {
      // A return whose operation is not linearized yet: undo the last choice.
      if (stack.length === 0) return result('not-linearizable');
      const top = stack.pop()!;
      state = top.state;
      clearBit(top.call.op);
      unlift(top.call);
      if (ops[top.call.op]!.return !== undefined) remaining++;
      entry = top.call.next;
    }
  }
  if (stack.length > longest.length) longest = stack.map((s) => s.call.op);
  return result('linearizable');
}
