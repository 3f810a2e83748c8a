import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { lowerJoinerPriority } from '../src/node-priority.js';

describe('lowerJoinerPriority', () => {
  it('lowers the priority by the given nice levels and restores it once', () => {
    const before = getPriority();
    const restore = lowerJoinerPriority(3);
    try {
      expect(getPriority()).toBe(Math.min(19, before + 3));
    } finally {
      const ok = restore();
      // Raising the priority back needs privileges; when refused, restore() says so.
      if (ok) expect(getPriority()).toBe(before);
      else expect(getPriority()).toBe(Math.min(19, before + 3));
    }
    expect(restore()).toBe(true); // idempotent
  });

  it('changes nothing for a delta of 0', () => {
    const before = getPriority();
    const restore = lowerJoinerPriority(0);
    expect(getPriority()).toBe(before);
    expect(restore()).toBe(true);
    expect(getPriority()).toBe(before);
  });
});
