/**
 * The end of a chaos run (runner.ts): stop the load, let the pair settle and pick the replica to read,
 * and sum the run up in its report.
 */
import type { ChaosReplica } from './process.js';
import { buildReport, type ChaosReport } from './report.js';
import type { ChaosRun } from './runner.js';
import type { WorkloadVerdict } from './types.js';

export async function stopLoad(run: ChaosRun): Promise<void> {
  if (run.ended === 'outage' || run.ended === 'redundancy') {
    // Each replica's last status and events, while the pair is still as it was.
    run.endSnapshot = await Promise.all(
      run.slots.map(async (p) => {
        if (!p) return { node: null };
        let status: unknown;
        try {
          status = await p.status(1000);
        } catch (err) {
          status = `no answer: ${(err as Error).message}`;
        }
        return { ...p.describe(20), status: status ?? null };
      }),
    );
  }
  if (!run.workload || !run.loadRunning) return;
  run.loadRunning = false;
  run.loadStoppedAt = run.now();
  if (run.ended === 'interrupted') {
    void run.workload.stop().catch(() => undefined);
    return;
  }
  // Resume anything still paused (an aborted run), so that calls in flight can finish.
  for (const p of run.slots)
    if (p?.paused) {
      p.signal('SIGCONT');
      p.paused = false;
    }
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    run.workload.stop().then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), run.o.stopTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (!stopped) run.log(`the workload did not stop within ${run.o.stopTimeoutMs} ms; reading anyway`);
}

export async function settle(run: ChaosRun): Promise<ChaosReplica | undefined> {
  const deadline = run.now() + (run.ended === 'completed' ? run.o.settleMs : Math.min(run.o.settleMs, 1000));
  while (!run.healthy() && run.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  let best: ChaosReplica | undefined;
  for (const p of run.slots) if (p?.up && p.serving && (!best || (p.epoch ?? 0) > (best.epoch ?? 0))) best = p;
  run.log(
    best
      ? `settled: reading ${best.name} (${best.role} @${best.epoch ?? '?'}); ${run.rolesLine()}`
      : `no replica is serving (${run.rolesLine()}); the state cannot be read`,
  );
  return best;
}

export function runReport(
  run: ChaosRun,
  verdict: WorkloadVerdict | undefined,
  verifyError: string | undefined,
  servingNode: string | undefined,
): ChaosReport {
  const hasBounds = run.bounds !== undefined;
  return buildReport({
    target: run.target.name,
    seed: run.o.seed,
    nemesis: run.o.nemesis,
    clients: run.o.clients,
    actionsPlanned: run.o.actions,
    verbose: run.o.verbose,
    ended: run.ended ?? 'error',
    error: run.error,
    bounds: hasBounds
      ? {
          worstCaseFailoverMs: run.b.worstCaseFailoverMs,
          rejoinBoundMs: run.rejoinBoundMs(),
          rejoinBoundFrom: run.rejoinFrom,
          stallBoundMs: run.stallBoundMs(),
          detectionWindowMs: run.detectionWindowMs(),
          pauseMs: run.pauseMs(),
        }
      : undefined,
    loadStartedAt: run.loadStartedAt,
    loadStoppedAt: run.loadStoppedAt ?? run.now(),
    successes: run.successes,
    okCount: run.okCount,
    failCount: run.failCount,
    events: run.processes
      .flatMap((p) => p.events)
      .filter((e) => run.shutdownAt === undefined || e.at < run.shutdownAt)
      .sort((x, y) => x.at - y.at),
    actions: run.actions,
    faults: run.faults,
    restarts: run.restartCount,
    ruleDeferrals: run.ruleDeferrals,
    redundancyRecords: run.redundancyRecords,
    unexpectedExits: run.unexpectedExits,
    abortedAt: run.abortedAt,
    endSnapshot: run.endSnapshot,
    verdict,
    verifyError,
    servingNode,
  });
}
