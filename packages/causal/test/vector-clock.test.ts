import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VectorClock } from '../src/index.js';

describe('VectorClock', () => {
  it('ticks, merges and compares', () => {
    const a = new VectorClock(3);
    const b = new VectorClock(3);
    expect(a.compare(b)).toBe('equal');
    expect(a.tick(0)).toBe(1);
    expect(a.compare(b)).toBe('after');
    expect(b.compare(a)).toBe('before');
    b.tick(1);
    expect(a.compare(b)).toBe('concurrent');
    const grown: number[] = [];
    b.merge(a, (k) => grown.push(k));
    expect(grown).toEqual([0]);
    expect(b.toArray()).toEqual([1, 1, 0]);
    expect(a.leq(b)).toBe(true);
    expect(b.leq(a)).toBe(false);
    expect(b.toString()).toBe('[1,1,0]');
    expect(VectorClock.from([2, 0]).clone().get(0)).toBe(2);
  });

  it('merge is the least upper bound (commutative, idempotent, dominates both)', () => {
    const vec = fc.array(fc.nat(1000), { minLength: 4, maxLength: 4 });
    fc.assert(
      fc.property(vec, vec, (x, y) => {
        const xy = VectorClock.from(x);
        xy.merge(y);
        const yx = VectorClock.from(y);
        yx.merge(x);
        expect(xy.toArray()).toEqual(yx.toArray());
        expect(VectorClock.from(x).leq(xy)).toBe(true);
        expect(VectorClock.from(y).leq(xy)).toBe(true);
        const again = xy.clone();
        again.merge(y);
        expect(again.compare(xy)).toBe('equal');
      }),
    );
  });

  it('rejects bad sizes, indices and values', () => {
    expect(() => new VectorClock(0)).toThrow(RangeError);
    expect(() => new VectorClock(2).get(2)).toThrow(RangeError);
    expect(() => new VectorClock(2).set(0, -1)).toThrow(RangeError);
    expect(() => new VectorClock(2).merge([1])).toThrow(RangeError);
  });
});
