/** A worker for the partition scenario (partition.ts): runs the seeds it is sent, answers with compact results. */
import { type FaultKind, runPartitionSimulation } from '@tandem/testkit';
import type { PartitionSeedRequest, PartitionSeedResult } from './partition-protocol.js';

let late: string[] | undefined;
process.on('unhandledRejection', (reason) => {
  const msg = `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`;
  if (late) late.push(msg);
  else process.stderr.write(msg + '\n');
});

process.on('message', (raw) => {
  const req = raw as PartitionSeedRequest;
  void (async () => {
    const started = performance.now();
    late = [];
    let result: PartitionSeedResult;
    try {
      const r = await runPartitionSimulation({
        seed: req.seed,
        witness: req.witness,
        ...(req.faults ? { faultKinds: req.faults as FaultKind[] } : {}),
      });
      await new Promise((resolve) => setImmediate(resolve));
      const failures = [...r.failures, ...late];
      result = {
        seed: req.seed,
        ok: failures.length === 0,
        failures,
        faults: r.faults,
        virtualMs: r.virtualMs,
        events: r.events,
        traceHash: r.traceHash,
        leaseMs: r.leaseMs,
        linearizable: r.linearizability.verdict === 'linearizable',
        lostWrites: r.lostWrites.length,
        overlaps: r.overlaps.length,
        takeovers: r.replicaEvents.takeover ?? 0,
        maxLatencyAfterFaultMs: r.maxLatencyAfterFaultMs,
        livenessBoundMs: r.livenessBoundMs,
        witnessStats: r.witnessStats,
        promotesRefused: r.promotesRefused,
        blockedInPartition: r.blockedInPartition,
        changesWhileWitnessCut: r.changesWhileWitnessCut,
        wallMs: performance.now() - started,
        ...(failures.length > 0 && req.verbose ? { logs: r.logs.slice(-40) } : {}),
      };
    } catch (err) {
      result = {
        seed: req.seed,
        ok: false,
        failures: [`runner error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`],
        faults: [],
        virtualMs: 0,
        events: 0,
        traceHash: '',
        leaseMs: undefined,
        linearizable: true,
        lostWrites: 0,
        overlaps: 0,
        takeovers: 0,
        maxLatencyAfterFaultMs: 0,
        livenessBoundMs: 0,
        witnessStats: undefined,
        promotesRefused: 0,
        blockedInPartition: 0,
        changesWhileWitnessCut: 0,
        wallMs: performance.now() - started,
      };
    }
    late = undefined;
    process.send!(result);
  })();
});
process.send!({ ready: true });
