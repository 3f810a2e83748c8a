import { describe, expect, it } from 'vitest';
import { VARIANTS } from './faults.js';
import { runKvSimulation, type KvSimulationResult } from './kv-run.js';

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
  it('passes every invariant on 40 seeds, covering takeovers, rejoins, step-downs and both piggyback modes', async () => {
    const results = await runSeeds('correct', 1000, 40);
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
    const r = await runKvSimulation({ seed: 3, faultKinds: ['crash-primary'], config: { callDeadlineMs: 120 } });
    expect(r.ok).toBe(false);
    expect(r.failures.join('\n')).toMatch(/liveness: .* failed with ServiceUnavailableError/);
  });

  it('rejects an unknown variant name', async () => {
    await expect(runKvSimulation({ seed: 1, variant: 'nope' })).rejects.toThrow(/unknown variant "nope"/);
  });
});

describe('the broken variants\' fault profiles are survivable', () => {
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
  // Each broken variant must fail on some seed ≤ 200, with a failure of the kind the bug causes; the same
  // fault profile with the correct protocol is exercised by the 'correct' runs above (and by `npm run sim`).
  it.each([
    ['seq-digest-host-crash', /linearizability|lost entries/],
    ['no-forward-wait', /linearizability|lost entries|convergence/],
    ['unordered-apply', /linearizability|convergence|divergence/],
    ['skip-dedup', /exactly-once|linearizability/],
  ])('%s', async (variant, expected) => {
    const results = await runSeeds(variant, 1, 200, (r) => !r.ok);
    const failing = results.find((r) => !r.ok);
    expect(failing, `no failure in ${results.length} seeds of ${variant}`).toBeDefined();
    expect(failing!.failures.join('\n')).toMatch(expected);
    // and it replays: the same seed fails the same way
    const again = await runKvSimulation({ seed: failing!.seed, variant });
    expect(again.failures).toEqual(failing!.failures);
  });
});
