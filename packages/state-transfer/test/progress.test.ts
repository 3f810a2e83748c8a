import { describe, expect, it } from 'vitest';
import { formatProgress, ProgressMeter, progressBar, type TransferProgress } from '../src/index.js';

function at(t: { now: number }) {
  return () => t.now;
}

describe('progress', () => {
  it('computes percent and rate from counters and rate-limits events', () => {
    const clock = { now: 0 };
    const m = new ProgressMeter(at(clock), 100);
    m.restart('t1', 1000);
    expect(m.due()).toBe(true);
    expect(m.due()).toBe(false); // within the interval
    clock.now = 2000;
    m.records = 250;
    m.bytes = 4_000_000;
    const p = m.snapshot();
    expect(p.percent).toBe(25);
    expect(p.bytesPerSecond).toBe(2_000_000);
    expect(m.due()).toBe(true);
    m.phase = 'catch-up';
    expect(m.snapshot().percent).toBe(100);
  });

  it('formats a bar and redraws one line on a TTY', () => {
    const p: TransferProgress = {
      phase: 'snapshot',
      transferId: 'x',
      bytes: 54_100_000,
      records: 450_000,
      totalRecords: 1_000_000,
      entries: 0,
      percent: 45,
      bytesPerSecond: 120_300_000,
      elapsedMs: 450,
      resumes: 1,
      restarts: 0,
    };
    const line = formatProgress(p, 20);
    expect(line).toContain('[#########-----------]');
    expect(line).toContain('45.0%');
    expect(line).toContain('54.1 MB');
    expect(line).toContain('120.3 MB/s');
    expect(line).toContain('450000/1000000 records');
    expect(line).toContain('1 resumed');
    const out: string[] = [];
    const bar = progressBar({ write: (s: string) => out.push(s), isTTY: true });
    bar.update(p);
    bar.update({ ...p, percent: 50 });
    bar.done();
    expect(out[0]!.startsWith('\r')).toBe(true);
    expect(out.at(-1)).toBe('\n');
  });
});
