import { describe, expect, it } from 'vitest';
import { VARIANTS } from '../../src/sim/faults.js';
import { runKvSimulation, type KvSimulationResult } from '../../src/sim/kv-run.js';

/** Runs seeds from..from+count-1 until `stop` says so; returns what ran. */
async function runSeeds(variant: string, from: number, count: number, stop: (r: KvSimulationResult) => boolean = () => false) {
  const results: KvSimulationResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = await runKvSimulation({ seed, variant });
    results.push(r);
    if (stop(r)) break;
  }
  return results;
}

const describeFailure = (r: KvSimulationResult) => `seed ${r.seed} (${r.piggyback}): ${r.faults.join(' → ')}\n${r.failures.join('\n')}`;

describe('runKvSimulation — the real protocol under one fault at a time', () => {
  it('passes every invariant on 40 seeds of the classic generator, covering takeovers, rejoins, step-downs and both piggyback modes', async () => {
    const results = await runSeeds('classic', 1000, 40);
    for (const r of results) expect(r.ok, describeFailure(r)).toBe(true);
    const seen = (k: string) => results.filter((r) => (r.replicaEvents[k] ?? 0) > 0).length;
    expect(seen('takeover')).toBeGreaterThan(5);
    expect(seen('peer-joined')).toBe(40);
    expect(seen('step-down') + seen('role:joining')).toBeGreaterThan(0);
    expect(new Set(results.map((r) => r.piggyback))).toEqual(new Set(['entries', 'seq-digest']));
    for (const r of results) {
      expect(r.linearizability.verdict).toBe('linearizable');
      expect(r.history.filter((h) => h.return !== undefined).length).toBeGreaterThan(30);
      expect(r.maxLatencyAfterFaultMs).toBeLessThanOrEqual(r.livenessBoundMs);
    }
  });

  it('passes every invariant on 40 seeds of the default generator (faults during recovery, stalls, CPU load)', async () => {
    // Fails on the core of 78d7e4e at seed 1036 (the primary killed right after it dropped its backup: the
    // pair never serves again) until the core is fixed.
    const results = await runSeeds('correct', 1000, 40);
    for (const r of results) expect(r.ok, describeFailure(r)).toBe(true);
    const seen = (k: string) => results.filter((r) => (r.replicaEvents[k] ?? 0) > 0).length;
    expect(seen('takeover')).toBeGreaterThan(5);
    expect(seen('peer-faulty')).toBeGreaterThan(5);
    expect(results.filter((r) => r.load !== undefined).length).toBeGreaterThan(5);
  });

  it('replays a seed identically: same events, same history, same verdict', async () => {
    for (const [seed, variant] of [
      [7, 'correct'],
      [7, 'seq-digest-host-crash'],
    ] as const) {
      const a = await runKvSimulation({ seed, variant, recordTrace: true });
      const b = await runKvSimulation({ seed, variant, recordTrace: true });
      expect(a.trace.length).toBeGreaterThan(200);
      expect(b.trace).toEqual(a.trace);
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.history).toEqual(a.history);
      expect(b.failures).toEqual(a.failures);
      expect(b.faults).toEqual(a.faults);
      expect(b.ok).toBe(a.ok);
    }
    const other = await runKvSimulation({ seed: 8, recordTrace: true });
    const first = await runKvSimulation({ seed: 7, recordTrace: true });
    expect(other.traceHash).not.toBe(first.traceHash);
  });

  it('flags liveness when calls give up during a failover (callDeadlineMs shorter than the takeover)', async () => {
    // (Without the process-crash fast path: a process crash is taken over within ~45 ms, before 120 ms.)
    const r = await runKvSimulation({ seed: 3, faultKinds: ['crash-primary'], config: { callDeadlineMs: 120, fastFailover: false } });
    expect(r.ok).toBe(false);
    expect(r.failures.join('\n')).toMatch(/liveness: .* failed with ServiceUnavailableError/);
  });

  it('rejects an unknown variant name', async () => {
    await expect(runKvSimulation({ seed: 1, variant: 'nope' })).rejects.toThrow(/unknown variant "nope"/);
  });
});

describe("the broken variants' fault profiles are survivable", () => {
  it.each(['no-forward-wait', 'unordered-apply', 'skip-dedup'])('the correct protocol passes the %s profile on 25 seeds', async (name) => {
    for (let seed = 1; seed <= 25; seed++) {
      const r = await runKvSimulation({ seed, faultKinds: VARIANTS[name]!.faults });
      expect(r.ok, describeFailure(r)).toBe(true);
    }
  });

  it('entries piggyback survives the primary-host crashes that break seq-digest', async () => {
    for (let seed = 1; seed <= 25; seed++) {
      const r = await runKvSimulation({ seed, faultKinds: ['crash-primary-host'], config: { piggyback: 'entries' } });
      expect(r.ok, describeFailure(r)).toBe(true);
    }
  });
});

describe('the simulator finds broken protocols within 200 seeds', () => {
  // Each broken variant of VARIANTS must fail on some seed ≤ 200, with a failure of the kind the bug causes
  // (VariantSpec.expect); the same fault profile with the correct protocol is exercised by the 'correct'
  // runs (and by `npm run sim`). A variant added to VARIANTS is covered here without further code.
  const broken = Object.entries(VARIANTS).filter(([, v]) => v.broken);
  it('knows the broken variants', () => {
    expect(broken.map(([name]) => name)).toEqual(
      expect.arrayContaining(['seq-digest-host-crash', 'no-forward-wait', 'unordered-apply', 'skip-dedup']),
    );
    for (const [name, v] of broken) expect(v.expect, `${name} says what it must break`).toBeInstanceOf(RegExp);
  });
  it.each(broken.map(([name, v]) => [name, v.expect!] as const))('%s', async (variant, expected) => {
    const results = await runSeeds(variant, 1, 200, (r) => !r.ok);
    const failing = results.find((r) => !r.ok);
    expect(failing, `no failure in ${results.length} seeds of ${variant}`).toBeDefined();
    expect(failing!.failures.join('\n')).toMatch(expected);
    // and it replays: the same seed fails the same way
    const again = await runKvSimulation({ seed: failing!.seed, variant });
    expect(again.failures).toEqual(failing!.failures);
  });
});
