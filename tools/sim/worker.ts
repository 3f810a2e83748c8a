/**
 * A simulation worker process: receives seeds from the runner (main.ts) over IPC, runs each, and sends
 * back a compact result. Unhandled promise rejections during a seed count as that seed's failure.
 */
import { runKvSimulation, type FaultKind, type KvSimulationResult } from '@tandem/testkit';
import type { SeedRequest, SeedResult } from './protocol.js';

let current: string[] | undefined;
process.on('unhandledRejection', (reason) => {
  const msg = `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`;
  if (current) current.push(msg);
  else process.stderr.write(msg + '\n');
});

function describeLoad(load: KvSimulationResult['load']): string {
  if (!load) return '';
  return load.replicas
    .map(
      (l, i) =>
        `${i === 0 ? 'ra' : 'rb'} ${l.perMessageMs.toFixed(2)}ms/msg+${l.perKiBMs.toFixed(2)}ms/KiB${l.gcEveryMs > 0 ? `, GC ≤${l.gcMaxMs.toFixed(0)}ms every ~${l.gcEveryMs.toFixed(0)}ms` : ''}`,
    )
    .join('; ');
}

process.on('message', (raw) => {
  const req = raw as SeedRequest;
  void (async () => {
    const started = performance.now();
    const late: string[] = [];
    current = late;
    let result: SeedResult;
    try {
      const r = await runKvSimulation({
        seed: req.seed,
        variant: req.variant,
        opsPerClient: req.opsPerClient,
        recordTrace: req.trace,
        ...(req.faults ? { faultKinds: req.faults as FaultKind[] } : {}),
        ...(req.noLoad ? { load: false as const } : {}),
      });
      // Let rejections of this seed surface before it is reported.
      await new Promise((resolve) => setImmediate(resolve));
      const failures = [...r.failures, ...late];
      result = {
        seed: req.seed,
        ok: failures.length === 0,
        failures,
        faults: r.faults,
        piggyback: r.piggyback,
        events: r.events,
        virtualMs: r.virtualMs,
        traceHash: r.traceHash,
        historyLength: r.history.length,
        maxLatencyAfterFaultMs: r.maxLatencyAfterFaultMs,
        livenessBoundMs: r.livenessBoundMs,
        maxServiceGapMs: r.maxServiceGapMs,
        serveBoundMs: r.serveBoundMs,
        alarms: r.alarms,
        blocked: r.blocked,
        operatorActions: r.operatorActions.map(({ data: _data, served: _served, ...o }) => o),
        load: describeLoad(r.load),
        replicaEvents: r.replicaEvents,
        wallMs: performance.now() - started,
        ...(failures.length > 0 || req.verbose ? { errorLogs: r.errorLogs.slice(0, 20), logs: r.logs.slice(-40) } : {}),
        ...(req.trace ? { trace: [...r.trace] } : {}),
      };
    } catch (err) {
      result = {
        seed: req.seed,
        ok: false,
        failures: [`runner error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`],
        faults: [],
        piggyback: '?',
        events: 0,
        virtualMs: 0,
        traceHash: '',
        historyLength: 0,
        maxLatencyAfterFaultMs: 0,
        livenessBoundMs: 0,
        maxServiceGapMs: 0,
        serveBoundMs: 0,
        alarms: { total: 0, justified: 0, falseAlarms: [] },
        blocked: [],
        operatorActions: [],
        load: '',
        replicaEvents: {},
        wallMs: performance.now() - started,
      };
    }
    current = undefined;
    process.send!(result);
  })();
});
process.send!({ ready: true });
