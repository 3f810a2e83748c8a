import { describe, expect, it } from 'vitest';
import {
  CausalBufferFullError,
  CausalClosedError,
  CausalGapError,
  CausalProtocolError,
  isCausalBufferFullError,
  isCausalError,
  isCausalGapError,
} from '../src/index.js';

describe('typed errors', () => {
  it('are flat classes with a static and an instance name, recognised by name', () => {
    const errors = [
      new CausalBufferFullError('held', 'a', 'messages', 5),
      new CausalGapError(
        'c',
        { from: 'b', kind: 'broadcast', seq: 3 },
        [{ from: 'a', kind: 'broadcast', after: 1, upTo: 4, held: false }],
        10,
        500,
      ),
      new CausalProtocolError('bad'),
      new CausalClosedError(),
    ];
    for (const err of errors) {
      expect(err).toBeInstanceOf(Error);
      expect(Object.getPrototypeOf(Object.getPrototypeOf(err))).toBe(Error.prototype);
      expect(err.name).toBe((err.constructor as { name: string }).name);
      expect(isCausalError(err)).toBe(true);
      expect(isCausalError(err, err.name as never)).toBe(true);
    }
    expect(CausalGapError.name).toBe('CausalGapError');
    expect(isCausalBufferFullError(errors[0])).toBe(true);
    expect(isCausalGapError(errors[0])).toBe(false);
    // a copy from another install: same name, different class
    expect(isCausalGapError(Object.assign(new Error('x'), { name: 'CausalGapError' }))).toBe(true);
    expect(isCausalError(new RangeError('x'))).toBe(false);
    expect(isCausalError(null)).toBe(false);
    expect(errors[1]!.message).toBe("c has held b's broadcast #3 for 500 ms, waiting for a's broadcasts #2–#4 (not received)");
    expect(errors[0]!.message).toBe('refused a message from a: the held-message buffer is full (messages limit 5)');
  });
});
