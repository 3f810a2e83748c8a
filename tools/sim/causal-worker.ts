/** A worker for the causal scenario (causal.ts): runs the seeds it is sent, answers with the results. */
import { runCausalSimulation, type CausalVariant } from '@tandem/testkit';

process.on('message', (raw) => {
  const req = raw as { seed: number; variant: CausalVariant };
  void runCausalSimulation({ seed: req.seed, variant: req.variant }).then(
    (r) => process.send!(r),
    (err: unknown) =>
      process.send!({
        seed: req.seed,
        variant: req.variant,
        ok: false,
        failures: [`runner error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`],
        faults: [],
        events: 0,
        virtualMs: 0,
        traceHash: '',
        flows: { acknowledged: 0, failed: 0 },
        held: 0,
        reissued: 0,
        duplicates: 0,
      }),
  );
});
process.send!({ ready: true });
