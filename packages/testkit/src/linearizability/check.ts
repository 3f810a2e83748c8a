/**
 * Linearizability of key-value histories: decompose per key (operations on different keys commute, and a
 * history is linearizable iff each key's sub-history is — linearizability is local), then search each.
 */
import { kvRegisterModel, type KvHistoryOp, type KvInput } from './kv-history.js';
import type { Model, Operation } from './model.js';
import { searchLinearization, type SearchOptions, type SearchVerdict } from './search.js';

/** The verdict for one key's sub-history (the key-value history is checked key by key). */
export interface KeyVerdict {
  key: string;
  verdict: SearchVerdict;
  operations: number;
  steps: number;
  /** Human-readable explanation when the key is not linearizable (or the search gave up). */
  explanation?: string;
}

/** The verdict for a whole key-value history, with the per-key verdicts and the first failing key. */
export interface LinearizabilityReport {
  verdict: SearchVerdict;
  /** Operations checked (gets with unknown outcome are dropped: they carry no information). */
  operations: number;
  keys: KeyVerdict[];
  /** The first key that failed (or was undecided), if any. */
  failure?: KeyVerdict;
}

/** Check any model's history (one object). */
export function checkOperations<State, Input>(
  model: Model<State, Input>,
  ops: readonly Operation<Input>[],
  options: SearchOptions = {},
): { verdict: SearchVerdict; steps: number; explanation?: string } {
  const r = searchLinearization(model, ops, options);
  if (r.verdict === 'linearizable') return { verdict: r.verdict, steps: r.steps };
  const describeInput = model.describeInput ?? ((i: Input) => JSON.stringify(i));
  const describe = model.describe ?? ((s: State) => JSON.stringify(s));
  const t = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(3));
  const fmt = (o: Operation<Input>) =>
    `#${o.index} client ${o.client} ${describeInput(o.input)} [${t(o.call)}, ${o.return === undefined ? 'unknown' : t(o.return)}]`;
  let s = model.init();
  const prefix = r.longestPrefix.map((o) => {
    s = model.step(s, o.input).state;
    return `  ${fmt(o)}  ⇒ ${describe(s)}`;
  });
  const lines =
    r.verdict === 'unknown'
      ? [`search gave up after ${r.steps} steps`]
      : [
          `no linearization exists. Longest linearizable prefix found (${prefix.length} operations):`,
          ...prefix,
          `completed operations that could not be placed after it:`,
          ...r.stuck.map((o) => `  ${fmt(o)}`),
        ];
  return { verdict: r.verdict, steps: r.steps, explanation: lines.join('\n') };
}

/** Check a key-value history (per-key decomposition). */
export function checkKvHistory(history: readonly KvHistoryOp[], options: SearchOptions = {}): LinearizabilityReport {
  const byKey = new Map<string, Operation<KvInput>[]>();
  history.forEach((h, index) => {
    if (h.op === 'get' && h.return === undefined) return;
    let list = byKey.get(h.key);
    if (!list) byKey.set(h.key, (list = []));
    list.push({ index, client: String(h.client), input: { op: h.op, value: h.value }, call: h.call, return: h.return });
  });
  const keys: KeyVerdict[] = [];
  let operations = 0;
  let failure: KeyVerdict | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key)!;
    operations += ops.length;
    const r = checkOperations(kvRegisterModel, ops, options);
    const kv: KeyVerdict = { key, verdict: r.verdict, operations: ops.length, steps: r.steps };
    if (r.explanation !== undefined) kv.explanation = `key ${JSON.stringify(key)}: ${r.explanation}`;
    keys.push(kv);
    if (r.verdict === 'not-linearizable' && (failure === undefined || failure.verdict === 'unknown')) failure = kv;
    else if (r.verdict === 'unknown' && failure === undefined) failure = kv;
  }
  const verdict: SearchVerdict = failure === undefined ? 'linearizable' : failure.verdict;
  const report: LinearizabilityReport = { verdict, operations, keys };
  if (failure) report.failure = failure;
  return report;
}
