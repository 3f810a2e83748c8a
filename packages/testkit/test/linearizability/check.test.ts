import { describe, expect, it } from 'vitest';
import { checkKvHistory } from '../../src/linearizability/check.js';
import { HistoryFormatError, kvRegisterModel, parseKvHistory, type KvHistoryOp } from '../../src/linearizability/kv-history.js';
import { mulberry32 } from '@tandem/core/internal';

const op = (client: string, o: KvHistoryOp['op'], value: string | null, call: number, ret?: number, key = 'k'): KvHistoryOp => ({
  client,
  op: o,
  key,
  value,
  call,
  return: ret,
});

describe('checkKvHistory — known-good histories', () => {
  it('accepts a sequential history', () => {
    const r = checkKvHistory([op('a', 'put', 'x', 0, 1), op('a', 'append', 'y', 2, 3), op('b', 'get', 'xy', 4, 5)]);
    expect(r.verdict).toBe('linearizable');
    expect(r.operations).toBe(3);
  });

  it('accepts a read of an absent key as null', () => {
    expect(checkKvHistory([op('a', 'get', null, 0, 1), op('a', 'append', 'z', 2, 3), op('a', 'get', 'z', 4, 5)]).verdict).toBe(
      'linearizable',
    );
  });

  it('accepts concurrent overlap in either order', () => {
    // put x spans both reads: the first read may see the old value, the second the new.
    const h = [op('a', 'put', 'old', 0, 1), op('a', 'put', 'new', 2, 10), op('b', 'get', 'old', 3, 4), op('b', 'get', 'new', 5, 6)];
    expect(checkKvHistory(h).verdict).toBe('linearizable');
  });

  it('accepts two concurrent appends seen in either order', () => {
    const base = [op('a', 'append', 'x', 0, 5), op('b', 'append', 'y', 1, 4)];
    expect(checkKvHistory([...base, op('c', 'get', 'xy', 6, 7)]).verdict).toBe('linearizable');
    expect(checkKvHistory([...base, op('c', 'get', 'yx', 6, 7)]).verdict).toBe('linearizable');
  });

  it('treats an unknown-outcome write as possibly applied later', () => {
    const h = [op('a', 'put', 'x', 0), op('b', 'get', null, 5, 6), op('b', 'get', 'x', 7, 8)];
    expect(checkKvHistory(h).verdict).toBe('linearizable');
  });

  it('treats an unknown-outcome write as possibly never applied', () => {
    expect(checkKvHistory([op('a', 'append', 'x', 0), op('b', 'get', null, 50, 60)]).verdict).toBe('linearizable');
  });

  it('drops gets whose outcome is unknown', () => {
    const r = checkKvHistory([op('a', 'put', 'x', 0, 1), op('b', 'get', 'garbage', 2)]);
    expect(r.verdict).toBe('linearizable');
    expect(r.operations).toBe(1);
  });

  it('checks keys independently', () => {
    const h = [
      op('a', 'put', '1', 0, 10, 'k1'),
      op('b', 'put', '2', 0, 10, 'k2'),
      op('c', 'get', '1', 11, 12, 'k1'),
      op('c', 'get', '2', 13, 14, 'k2'),
    ];
    const r = checkKvHistory(h);
    expect(r.verdict).toBe('linearizable');
    expect(r.keys.map((k) => k.key)).toEqual(['k1', 'k2']);
  });
});

describe('checkKvHistory — known-bad histories', () => {
  it('rejects a stale read', () => {
    const r = checkKvHistory([op('a', 'put', 'x', 0, 1), op('a', 'put', 'y', 2, 3), op('b', 'get', 'x', 4, 5)]);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failure?.key).toBe('k');
    expect(r.failure?.explanation).toContain('get → "x"');
  });

  it('rejects a lost acknowledged write', () => {
    expect(checkKvHistory([op('a', 'append', 'x', 0, 1), op('b', 'get', null, 2, 3)]).verdict).toBe('not-linearizable');
  });

  it('rejects a duplicated append', () => {
    expect(checkKvHistory([op('a', 'append', 'x', 0, 1), op('b', 'get', 'xx', 2, 3)]).verdict).toBe('not-linearizable');
  });

  it('rejects a duplicated unknown-outcome append (applied at most once)', () => {
    expect(checkKvHistory([op('a', 'append', 'x', 0), op('b', 'get', 'xx', 2, 3)]).verdict).toBe('not-linearizable');
  });

  it('rejects a read going back in time after an unknown write became visible', () => {
    const h = [op('a', 'put', 'x', 0), op('b', 'get', 'x', 5, 6), op('b', 'get', null, 7, 8)];
    expect(checkKvHistory(h).verdict).toBe('not-linearizable');
  });

  it('rejects non-monotonic reads of concurrent writes', () => {
    const h = [op('a', 'put', 'old', 0, 1), op('a', 'put', 'new', 2, 10), op('b', 'get', 'new', 3, 4), op('b', 'get', 'old', 5, 6)];
    expect(checkKvHistory(h).verdict).toBe('not-linearizable');
  });

  it('rejects a read of a value never written', () => {
    expect(checkKvHistory([op('a', 'get', 'ghost', 0, 1)]).verdict).toBe('not-linearizable');
  });

  it('reports the failing key among good ones', () => {
    const h = [
      op('a', 'put', '1', 0, 1, 'good'),
      op('a', 'get', '1', 2, 3, 'good'),
      op('b', 'put', '2', 0, 1, 'bad'),
      op('b', 'get', null, 2, 3, 'bad'),
    ];
    const r = checkKvHistory(h);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failure?.key).toBe('bad');
    expect(r.keys.find((k) => k.key === 'good')?.verdict).toBe('linearizable');
  });

  it('says "unknown" rather than guessing when the step budget runs out', () => {
    const h: KvHistoryOp[] = [];
    for (let i = 0; i < 12; i++) h.push(op(`c${i}`, 'append', String.fromCharCode(97 + i), 0, 100));
    h.push(op('r', 'get', 'impossible', 101, 102));
    expect(checkKvHistory(h, { maxSteps: 50 }).verdict).toBe('unknown');
  });
});

describe('checkKvHistory agrees with brute force on random small histories', () => {
  // Brute force: try every order of the operations that respects real time, each unknown-outcome write
  // included or not.
  function bruteForce(h: KvHistoryOp[]): boolean {
    const ops = h.filter((o) => !(o.op === 'get' && o.return === undefined));
    const used = new Array<boolean>(ops.length).fill(false);
    const precedes = (a: KvHistoryOp, b: KvHistoryOp) => a.return !== undefined && a.return < b.call;
    const go = (state: string | null, placed: number, lastOrder: KvHistoryOp[]): boolean => {
      if (ops.every((o, i) => used[i] || o.return === undefined)) return true;
      for (let i = 0; i < ops.length; i++) {
        if (used[i]) continue;
        const o = ops[i]!;
        // o can go next only if no unplaced completed op must precede it
        if (ops.some((p, j) => !used[j] && j !== i && precedes(p, o))) continue;
        const r = kvRegisterModel.step(state, { op: o.op, value: o.value });
        if (!r.ok) continue;
        used[i] = true;
        const ok = go(r.state, placed + 1, [...lastOrder, o]);
        used[i] = false;
        if (ok) return true;
      }
      return false;
    };
    return go(null, 0, []);
  }

  const rng = mulberry32;

  it('on 400 random histories of up to 6 operations', () => {
    let good = 0;
    let bad = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const r = rng(seed);
      const n = 1 + Math.floor(r() * 6);
      const h: KvHistoryOp[] = [];
      for (let i = 0; i < n; i++) {
        const kind = r() < 0.4 ? 'get' : r() < 0.5 ? 'put' : 'append';
        const call = Math.floor(r() * 10);
        const ret = r() < 0.15 ? undefined : call + Math.floor(r() * 6);
        const vals = [null, 'a', 'b', 'ab', 'ba', 'aa'];
        const value = kind === 'get' ? vals[Math.floor(r() * vals.length)]! : r() < 0.5 ? 'a' : 'b';
        h.push(op(`c${i}`, kind, value, call, ret));
      }
      const expected = bruteForce(h);
      expected ? good++ : bad++;
      expect(checkKvHistory(h).verdict, JSON.stringify(h)).toBe(expected ? 'linearizable' : 'not-linearizable');
    }
    // the generator produces both kinds, so the comparison means something
    expect(good).toBeGreaterThan(40);
    expect(bad).toBeGreaterThan(40);
  });
});

describe('checkKvHistory scales to simulation-sized histories', () => {
  it('accepts 600 operations by 6 clients on 3 keys from a simulated linearizable execution', () => {
    // A register executed atomically at a random point inside each operation's interval.
    let seed = 7;
    const r = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const state = new Map<string, string | null>();
    const events: { at: number; apply: () => void }[] = [];
    const h: KvHistoryOp[] = [];
    const clientFree = new Array<number>(6).fill(0);
    for (let i = 0; i < 600; i++) {
      const c = i % 6;
      const call = clientFree[c]! + Math.floor(r() * 3);
      const ret = call + 1 + Math.floor(r() * 20);
      clientFree[c] = ret + 1;
      const key = `k${Math.floor(r() * 3)}`;
      const kind = r() < 0.4 ? 'get' : r() < 0.3 ? 'put' : 'append';
      const entry: KvHistoryOp = { client: c, op: kind, key, value: kind === 'get' ? null : `${i};`, call, return: ret };
      h.push(entry);
      events.push({
        at: call + r() * (ret - call),
        apply: () => {
          const cur = state.get(key) ?? null;
          if (kind === 'get') entry.value = cur;
          else state.set(key, kind === 'put' ? entry.value : (cur ?? '') + entry.value);
        },
      });
    }
    for (const e of events.sort((a, b) => a.at - b.at)) e.apply();
    const report = checkKvHistory(h);
    expect(report.verdict).toBe('linearizable');
    expect(report.operations).toBe(600);
    // …and corrupting one read makes it fail.
    const get = h.findLast((o) => o.op === 'get' && o.value !== null)!;
    get.value = get.value + 'corrupt';
    expect(checkKvHistory(h).verdict).toBe('not-linearizable');
  });
});

describe('parseKvHistory', () => {
  it('parses the documented format, return absent = unknown', () => {
    const h = parseKvHistory([
      { client: 'a', op: 'put', key: 'k', value: 'v', call: 1, return: 2 },
      { client: 2, op: 'get', key: 'k', value: null, call: 3 },
      { client: 'b', op: 'append', key: 'k', value: 'w', call: 3, return: null },
    ]);
    expect(h).toEqual([
      { client: 'a', op: 'put', key: 'k', value: 'v', call: 1, return: 2 },
      { client: 2, op: 'get', key: 'k', value: null, call: 3, return: undefined },
      { client: 'b', op: 'append', key: 'k', value: 'w', call: 3, return: undefined },
    ]);
  });

  it.each([
    [{}, '(root)'],
    [[1], '[0]'],
    [[{ client: 'a', op: 'delete', key: 'k', value: 'v', call: 1 }], '[0].op'],
    [[{ client: 'a', op: 'put', key: 1, value: 'v', call: 1 }], '[0].key'],
    [[{ client: 'a', op: 'put', key: 'k', value: null, call: 1 }], '[0].value'],
    [[{ client: 'a', op: 'put', key: 'k', value: 'v', call: 'x' }], '[0].call'],
    [[{ client: 'a', op: 'put', key: 'k', value: 'v', call: 5, return: 4 }], '[0].return'],
    [[{ op: 'put', key: 'k', value: 'v', call: 5 }], '[0].client'],
  ])('rejects %j at %s with HistoryFormatError', (json, path) => {
    try {
      parseKvHistory(json);
      expect.unreachable('should have thrown');
    } catch (err) {
      expect((err as Error).name).toBe('HistoryFormatError');
      expect(err).toBeInstanceOf(HistoryFormatError);
      expect((err as HistoryFormatError).path).toBe(path);
    }
  });
});
