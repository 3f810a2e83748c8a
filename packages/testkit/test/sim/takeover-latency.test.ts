// A call that waits through a heartbeat takeover is answered by the new primary at the takeover, not at the
// client's next retransmission: while the backup suspects its primary (forward window, probe) it holds the
// client requests that reach it and serves them right after taking over (backup.ts holdRequest). Virtual
// time, no CPU load, one fault per run.
import { computeTimingBounds, resolveConfig } from '@tandem/core';
import { runKvSimulation, type KvSimulationResult } from '@tandem/testkit';
import { describe, expect, it } from 'vitest';

const describeFailure = (r: KvSimulationResult) => `seed ${r.seed} (${r.piggyback}): ${r.faults.join(' → ')}\n${r.failures.join('\n')}`;

describe('requests held while the backup suspects its primary', () => {
  const b = computeTimingBounds({});
  const c = resolveConfig({});

  it('after a silent primary crash every call is answered within the takeover time (no retransmission wait)', async () => {
    // The dead primary's probe is refused at once: the takeover comes heartbeatTimeoutMs + forwardWindowMs
    // after the last flush. Answered only at the client's next retransmission, half the seeds took about
    // requestTimeoutMs longer (≈ 400 ms against ≈ 300 ms).
    for (let seed = 1; seed <= 20; seed++) {
      const r = await runKvSimulation({ seed, faultKinds: ['crash-primary-silent'], load: false, maxFaults: 1 });
      expect(r.ok, describeFailure(r)).toBe(true);
      expect(r.maxLatencyAfterFaultMs, describeFailure(r)).toBeLessThan(c.heartbeatTimeoutMs + b.forwardWindowMs + c.requestTimeoutMs / 2);
    }
  });

  it('after a primary pause the calls are answered within the takeover time plus a transit', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = await runKvSimulation({ seed, faultKinds: ['pause-primary'], load: false, maxFaults: 1 });
      expect(r.ok, describeFailure(r)).toBe(true);
      expect(r.maxLatencyAfterFaultMs, describeFailure(r)).toBeLessThan(b.takeoverMs + c.ackTimeoutMs / 2);
    }
  });
});
