/**
 * Structure-aware inputs from zod schemas: `zodArbitrary(schema, hints)` generates values of the shape a
 * schema describes — every member of a discriminated union, every optional field present or not —
 * with hostile values at the edges (limits, limit + 1, huge integers, empty and maximal strings), and
 * per-field overrides (`hints`, by field name) for values that must relate to the system under test
 * (an epoch just above the current one, the right service name…). New message types added to a schema
 * are fuzzed without touching the fuzzer. `mutateValue` then breaks a value's shape on purpose.
 */
import fc from 'fast-check';

type AnyZod = { _zod: { def: Record<string, unknown> & { type: string } } };
export type Hints = Record<string, fc.Arbitrary<unknown>>;

function checksOf(s: AnyZod): Record<string, unknown>[] {
  const checks = (s._zod.def['checks'] as { _zod: { def: Record<string, unknown> } }[] | undefined) ?? [];
  return checks.map((c) => c._zod.def);
}

function numberBounds(s: AnyZod): { min: number; max: number; int: boolean } {
  let min = -Number.MAX_SAFE_INTEGER;
  let max = Number.MAX_SAFE_INTEGER;
  let int = false;
  for (const c of checksOf(s)) {
    if (c['check'] === 'number_format' && (c['format'] === 'safeint' || c['format'] === 'int32' || c['format'] === 'uint32')) int = true;
    if (c['check'] === 'greater_than') min = Math.max(min, (c['value'] as number) + (c['inclusive'] ? 0 : 1));
    if (c['check'] === 'less_than') max = Math.min(max, (c['value'] as number) - (c['inclusive'] ? 0 : 1));
  }
  return { min, max, int };
}

function lengthBounds(s: AnyZod, cap: number): { min: number; max: number; declaredMax: number } {
  let min = 0;
  let max = Number.MAX_SAFE_INTEGER;
  for (const c of checksOf(s)) {
    if (c['check'] === 'min_length') min = c['minimum'] as number;
    if (c['check'] === 'max_length') max = c['maximum'] as number;
    if (c['check'] === 'length_equals') min = max = c['length'] as number;
  }
  return { min, max: Math.max(min, Math.min(max, cap)), declaredMax: max };
}

/** Small values of any msgpack-encodable kind. */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.constantFrom(0, -1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.5, Infinity, -Infinity, NaN),
    fc.string({ maxLength: 12 }),
    fc.uint8Array({ maxLength: 16 }),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 3 }),
  ),
})).v;

export function zodArbitrary(schema: unknown, hints: Hints = {}, field?: string): fc.Arbitrary<unknown> {
  if (field !== undefined && hints[field] !== undefined) return hints[field]!;
  const s = schema as AnyZod;
  const def = s._zod.def;
  switch (def.type) {
    case 'object': {
      const shape = def['shape'] as Record<string, AnyZod>;
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const [k, v] of Object.entries(shape)) {
        const optional = v._zod.def.type === 'optional';
        // The discriminator stays what the schema says (a union member is picked by it).
        model[k] = k === 't' ? zodArbitrary(v) : zodArbitrary(v, hints, k);
        if (!optional) required.push(k);
      }
      return fc.record(model, { requiredKeys: required });
    }
    case 'optional':
    case 'nonoptional':
    case 'default':
    case 'readonly':
    case 'catch':
    case 'prefault':
      return zodArbitrary(def['innerType'], hints, field);
    case 'nullable':
      return fc.oneof(fc.constant(null), zodArbitrary(def['innerType'], hints, field));
    case 'literal':
      return fc.constantFrom(...(def['values'] as unknown[]));
    case 'enum':
      return fc.constantFrom(...Object.values(def['entries'] as Record<string, unknown>));
    case 'boolean':
      return fc.boolean();
    case 'string': {
      const { min, max, declaredMax } = lengthBounds(s, 24);
      const edges: fc.Arbitrary<string>[] = [fc.string({ minLength: min, maxLength: max })];
      if (declaredMax < 100_000) edges.push(fc.constant('z'.repeat(declaredMax)), fc.constant('z'.repeat(declaredMax + 1)));
      if (min > 0) edges.push(fc.constant(''));
      return fc.oneof({ weight: 6, arbitrary: edges[0]! }, ...edges.slice(1).map((arbitrary) => ({ weight: 1, arbitrary })));
    }
    case 'number': {
      const { min, max, int } = numberBounds(s);
      const lo = Math.max(min, -1_000_000);
      const hi = Math.min(max, 1_000_000);
      const edge = fc.constantFrom(
        ...new Set([min, max, min - 1, max + 1, 0, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER].filter((x) => Number.isFinite(x))),
      );
      const body = int ? fc.integer({ min: Math.min(lo, hi), max: Math.max(lo, hi) }) : fc.double({ min: lo, max: hi, noNaN: true });
      return fc.oneof(
        { weight: 5, arbitrary: body },
        { weight: 1, arbitrary: edge },
        { weight: int ? 0 : 1, arbitrary: fc.constantFrom(NaN, Infinity, 0.5) },
      );
    }
    case 'bigint':
      return fc.bigInt();
    case 'array': {
      const { min, max } = lengthBounds(s, 3);
      return fc.array(zodArbitrary(def['element'], hints), { minLength: min, maxLength: Math.max(min, max) });
    }
    case 'tuple':
      return fc.tuple(...(def['items'] as unknown[]).map((i) => zodArbitrary(i, hints)));
    case 'union':
      return fc.oneof(...(def['options'] as unknown[]).map((o) => zodArbitrary(o, hints, field)));
    case 'custom':
      // Binary fields: lengths around the usual limits (16-byte MACs, 16–64-byte nonces).
      return fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 80 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })) },
        { weight: 2, arbitrary: fc.constantFrom(0, 1, 15, 16, 17, 32, 64, 65).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })) },
      );
    case 'record':
      return fc.dictionary(fc.string({ maxLength: 8 }), zodArbitrary(def['valueType'], hints), { maxKeys: 3 });
    case 'pipe':
      return zodArbitrary(def['in'], hints, field);
    case 'lazy':
      return anyValue;
    default:
      return anyValue;
  }
}

/** A shape-breaking change at one place of a value. */
export type ValueMutation =
  | { op: 'delete'; at: number }
  | { op: 'replace'; at: number; value: unknown }
  | { op: 'add'; key: string; value: unknown };

export const valueMutation: fc.Arbitrary<ValueMutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: anyValue }),
  fc.record({
    op: fc.constant('add' as const),
    key: fc.constantFrom('t', 'epoch', 'extra', '__proto__', 'constructor', 'seq'),
    value: anyValue,
  }),
);

/** Every (container, key) pair inside a value, depth first. */
function places(
  v: unknown,
  out: [Record<string | number, unknown>, string | number][] = [],
  depth = 0,
): [Record<string | number, unknown>, string | number][] {
  if (depth > 6 || v === null || typeof v !== 'object' || v instanceof Uint8Array) return out;
  const o = v as Record<string | number, unknown>;
  for (const k of Array.isArray(v) ? v.keys() : Object.keys(o)) {
    out.push([o, k]);
    places(o[k], out, depth + 1);
  }
  return out;
}

/** Apply mutations to a (deep-copied) value. Inserted values are copies too: the generated input is
 * never changed (a value inserted twice, then written into, would otherwise become cyclic). */
export function mutateValue(value: unknown, mutations: readonly ValueMutation[]): unknown {
  const copy = structuredClone(value);
  for (const m of mutations) {
    if (m.op === 'add') {
      if (copy !== null && typeof copy === 'object' && !Array.isArray(copy))
        Object.defineProperty(copy, m.key, { value: structuredClone(m.value), enumerable: true, writable: true, configurable: true });
      continue;
    }
    const all = places(copy);
    if (all.length === 0) continue;
    const [container, key] = all[m.at % all.length]!;
    if (m.op === 'delete') {
      if (Array.isArray(container)) container.splice(Number(key), 1);
      else delete container[key];
    } else container[key] = structuredClone(m.value);
  }
  return copy;
}
