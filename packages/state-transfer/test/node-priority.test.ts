import { readdirSync, readFileSync } from 'node:fs';
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
    expect(restore()).toBe(restore()); // idempotent
  });

  it('lowers every thread of the process (GC, compiler and pool threads too), not only the main one', (ctx) => {
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      console.log('[skip] no /proc/self/task here (not Linux): per-thread nice values cannot be read');
      ctx.skip();
      return;
    }
    // Field 19 of /proc/<pid>/task/<tid>/stat is the nice value (after the parenthesised name).
    const niceOf = (tid: string): number | undefined => {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      } catch {
        return undefined; // the thread ended
      }
    };
    expect(tids.length).toBeGreaterThan(1);
    const before = new Map(tids.map((t) => [t, niceOf(t)]));
    const restore = lowerJoinerPriority(2);
    try {
      let checked = 0;
      for (const [tid, was] of before) {
        const now = niceOf(tid);
        if (was === undefined || now === undefined) continue;
        expect(now, `thread ${tid}`).toBe(Math.min(19, was + 2));
        checked++;
      }
      expect(checked).toBeGreaterThan(1);
    } finally {
      restore();
    }
  });

  it('changes nothing for a delta of 0', () => {
    const before = getPriority();
    const restore = lowerJoinerPriority(0);
    expect(getPriority()).toBe(before);
    expect(restore()).toBe(true);
    expect(getPriority()).toBe(before);
  });
});
