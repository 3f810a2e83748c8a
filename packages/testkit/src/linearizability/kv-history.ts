/**
 * Key-value histories: the JSON format recorded by simulations and by `tandem-kv demo --history FILE`,
 * its validation, and the sequential key-value specification (get / put / append on string values).
 *
 * Format: an array of `{client, op, key, value, call, return}`:
 * - `op`: "get" | "put" | "append";
 * - `value`: for put/append the value written; for get the value read (`null` = the key was absent);
 * - `call` / `return`: times (any monotonic unit, e.g. ms) at which the call started and the reply arrived;
 *   `return` absent (or null) = the outcome is unknown (the client crashed or gave up) — the operation may
 *   have taken effect at any point after its call, or never. A get without `return` carries no information.
 */
import type { Model } from './model.js';

/** The operations of a key-value history. */
export type KvOpName = 'get' | 'put' | 'append';

/** One operation of a key-value history file: client, operation, key, value, and call/return times. */
export interface KvHistoryOp {
  client: string | number;
  op: KvOpName;
  key: string;
  /** Written value (put/append) or value read (get; null = absent). */
  value: string | null;
  call: number;
  return?: number | undefined;
}

/** A history file does not follow the format; `path` says where (e.g. "[3].call"). */
export class HistoryFormatError extends Error {
  static override readonly name = 'HistoryFormatError';
  override readonly name = 'HistoryFormatError';
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

const OPS = new Set<string>(['get', 'put', 'append']);

/** Validate a parsed JSON value as a key-value history; throws HistoryFormatError on the first problem. */
export function parseKvHistory(json: unknown): KvHistoryOp[] {
  if (!Array.isArray(json)) throw new HistoryFormatError('(root)', 'a history is a JSON array of operations');
  return json.map((raw, i) => {
    const at = `[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HistoryFormatError(at, 'not an object');
    const o = raw as Record<string, unknown>;
    if (typeof o.client !== 'string' && typeof o.client !== 'number')
      throw new HistoryFormatError(`${at}.client`, 'must be a string or number');
    if (typeof o.op !== 'string' || !OPS.has(o.op)) throw new HistoryFormatError(`${at}.op`, 'must be "get", "put" or "append"');
    if (typeof o.key !== 'string') throw new HistoryFormatError(`${at}.key`, 'must be a string');
    const op = o.op as KvOpName;
    let value: string | null;
    if (op === 'get') {
      if (o.value !== undefined && o.value !== null && typeof o.value !== 'string')
        throw new HistoryFormatError(`${at}.value`, 'a get reads a string or null');
      value = (o.value as string | null | undefined) ?? null;
    } else {
      if (typeof o.value !== 'string') throw new HistoryFormatError(`${at}.value`, `a ${op} writes a string`);
      value = o.value;
    }
    if (typeof o.call !== 'number' || !Number.isFinite(o.call)) throw new HistoryFormatError(`${at}.call`, 'must be a finite number');
    let ret: number | undefined;
    if (o.return !== undefined && o.return !== null) {
      if (typeof o.return !== 'number' || !Number.isFinite(o.return))
        throw new HistoryFormatError(`${at}.return`, 'must be a finite number, or absent for an unknown outcome');
      if (o.return < o.call) throw new HistoryFormatError(`${at}.return`, `returns (${o.return}) before its call (${o.call})`);
      ret = o.return;
    }
    return { client: o.client, op, key: o.key, value, call: o.call, return: ret };
  });
}

/** The input of one key's register: the operation and its written or observed value. */
export interface KvInput {
  op: KvOpName;
  value: string | null;
}

/** A single key: a string register with append; absent = null, and append to absent starts from "". */
export const kvRegisterModel: Model<string | null, KvInput> = {
  init: () => null,
  step(state, input) {
    switch (input.op) {
      case 'get':
        return { ok: input.value === state, state };
      case 'put':
        return { ok: true, state: input.value };
      case 'append':
        return { ok: true, state: (state ?? '') + (input.value ?? '') };
    }
  },
  hash: (state) => (state === null ? '\u0000' : 's' + state),
  describe: (state) => (state === null ? '(absent)' : JSON.stringify(state)),
  describeInput: (input) =>
    input.op === 'get'
      ? `get → ${input.value === null ? '(absent)' : JSON.stringify(input.value)}`
      : `${input.op} ${JSON.stringify(input.value)}`,
};
