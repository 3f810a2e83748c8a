// The simulator's process-crash faults (docs/PROTOCOL.md, "Fast path for a dead process"): a dead process
// whose kernel resets every connection and refuses dials, a death whose resets are lost (silence), and a
// reset from the network while the primary lives. The correct protocol survives each; the fast path is
// what serves after a process crash (the gap stays far below the heartbeat timeout, in virtual time);
// the broken fast-path variants are found by kv-run.test.ts ("within 200 seeds").
import { resolveConfig } from '@tandem/core';
import { PROCESS_CRASH_FAULT_KINDS, runKvSimulation, VARIANTS, type KvSimulationResult } from '@tandem/testkit';
import { describe, expect, it } from 'vitest';

const describeFailure = (r: KvSimulationResult) => `seed ${r.seed} (${r.piggyback}): ${r.faults.join(' → ')}\n${r.failures.join('\n')}`;

describe('process crash vs silent death vs a reset while the primary lives', () => {
  it('the default generator draws them; the broken fast-path variants exist', () => {
    expect(PROCESS_CRASH_FAULT_KINDS).toEqual(['crash-primary-process', 'crash-primary-silent', 'reset-primary-connections']);
    for (const k of PROCESS_CRASH_FAULT_KINDS) expect(VARIANTS.correct!.faults).toContain(k);
    expect(VARIANTS['fast-takeover-no-grace']?.broken).toBe(true);
    expect(VARIANTS['fast-takeover-unconfirmed']?.broken).toBe(true);
  });

  it.each([
    ['crash-primary-process', /crash-primary-process \w+ \(right after a send to \w+, busy [\d.]+ms after it\)/],
    ['crash-primary-silent', /crash-primary-silent \w+ \(its resets lost\)/],
    ['reset-primary-connections', /reset-primary-connections \w+ \(\d+; it lives and listens\)/],
  ] as const)('%s: injected as described, and the pair survives it (20 seeds)', async (kind, described) => {
    let seen = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const r = await runKvSimulation({ seed, faultKinds: [kind], config: { fastFailover: true } });
      expect(r.ok, describeFailure(r)).toBe(true);
      if (r.faults.some((f) => described.test(f))) seen++;
    }
    expect(seen).toBeGreaterThan(10);
  });

  it('after a process crash the pair serves again well before a heartbeat timeout (the fast path, virtual time)', async () => {
    const { heartbeatTimeoutMs } = resolveConfig({});
    for (let seed = 1; seed <= 10; seed++) {
      const r = await runKvSimulation({
        seed,
        faultKinds: ['crash-primary-process'],
        load: false,
        maxFaults: 1,
        config: { fastFailover: true },
      });
      expect(r.ok, describeFailure(r)).toBe(true);
      expect(r.maxServiceGapMs, describeFailure(r)).toBeLessThan(heartbeatTimeoutMs);
    }
  });

  it('after a silent death the heartbeat path serves (the gap exceeds the heartbeat timeout)', async () => {
    const { heartbeatTimeoutMs } = resolveConfig({});
    let slow = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = await runKvSimulation({
        seed,
        faultKinds: ['crash-primary-silent'],
        load: false,
        maxFaults: 1,
        config: { fastFailover: true },
      });
      expect(r.ok, describeFailure(r)).toBe(true);
      if (r.maxServiceGapMs >= heartbeatTimeoutMs) slow++;
    }
    expect(slow).toBeGreaterThan(5);
  });
});
