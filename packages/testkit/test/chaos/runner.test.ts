// The chaos runner on real processes of a service of one's own (a replicated counter, counter-serve.ts):
// it must see a stall, a false alarm, and a pair that stops serving for good — and end every run, with
// every process it started gone.
import { describe, expect, it } from 'vitest';
import type { ReplicationConfig } from '@tandem/core';
import { runChaos, type ChaosControl, type ChaosReplica, type ChaosReport } from '@tandem/testkit/chaos';
import { counterTarget } from './counter-target.js';

/** Small timeouts: worst-case failover 182 ms, join timeout 2 000 ms → stall bound 2 182 ms. */
const FAST: Partial<ReplicationConfig> = {
  flushIntervalMs: 10,
  heartbeatTimeoutMs: 60,
  ackTimeoutMs: 20,
  maxRetransmits: 2,
  requestTimeoutMs: 40,
  forwardDelayMs: 2,
  callDeadlineMs: 3000,
};
const quiet = (): void => undefined;

function isRunning(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalAll(ctl: ChaosControl, sig: NodeJS.Signals): number[] {
  const pids: number[] = [];
  for (const r of ctl.replicas())
    if (r?.pid !== undefined) {
      process.kill(r.pid, sig);
      pids.push(r.pid);
    }
  return pids;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('runChaos on a service of your own', () => {
  it('counts a stall when both replicas are paused longer than the bound behind the nemesis back', async () => {
    let pausedAt = 0;
    let resumedAt = 0;
    const report = await runChaos(counterTarget(FAST), {
      actions: 0,
      clients: 2,
      nemesis: 'kill',
      seed: 1,
      minDurationMs: 5000,
      log: quiet,
      onStarted: (ctl) =>
        void (async () => {
          await sleep(800);
          pausedAt = ctl.now();
          const pids = signalAll(ctl, 'SIGSTOP');
          await sleep(3000);
          resumedAt = ctl.now();
          for (const pid of pids) process.kill(pid, 'SIGCONT');
        })(),
    });
    expect(report.bounds.stallBoundMs).toBe(182 + 2000);
    expect(resumedAt - pausedAt).toBeGreaterThanOrEqual(2900);
    expect(report.stalls, JSON.stringify(report.stallRecords)).toBeGreaterThanOrEqual(1);
    const stall = report.stallRecords.find((s) => s.from <= pausedAt + 50 && s.to >= resumedAt - 50);
    expect(stall, JSON.stringify(report.stallRecords)).toBeDefined();
    expect(report.longestOutageMs).toBeGreaterThanOrEqual(2900);
    expect(report.ok).toBe(false);
    expect(report.failures.join('\n')).toMatch(/stalls/);
    // Nothing was lost meanwhile: the verdict still comes in.
    expect({ lost: report.lost, duplicated: report.duplicated, linearizable: report.linearizable }).toEqual({
      lost: 0,
      duplicated: 0,
      linearizable: true,
    });
  }, 60_000);

  it('counts a peer-faulty without a nemesis action as a false alarm, and not the one its own pause explains', async () => {
    let ownPause: { from: number; to: number } | undefined;
    const report = await runChaos(counterTarget({}), {
      actions: 1,
      clients: 2,
      nemesis: 'stop',
      targets: 'backup',
      longDelayChance: 0,
      verbose: true,
      warmupMs: 300,
      minDurationMs: 4000,
      seed: 2,
      log: quiet,
      onStarted: (ctl) =>
        void (async () => {
          // Once the nemesis' pause of the backup is over and the pair is whole again, pause the backup
          // ourselves (the runner does not know): its primary declaring it faulty is a false alarm.
          const healthyBackup = (): ChaosReplica | undefined => {
            const [a, b] = ctl.replicas();
            if (!a || !b) return undefined;
            const backup = a.role === 'backup' ? a : b.role === 'backup' ? b : undefined;
            const primary = backup === a ? b : a;
            return backup && primary.role === 'primary' && backup.heldStateSince !== undefined ? backup : undefined;
          };
          for (;;) {
            const done = ctl.actions()[0]?.endedAt !== undefined;
            if (done && healthyBackup()) break;
            await sleep(20);
          }
          await sleep(200);
          const b = healthyBackup();
          if (!b?.pid) return;
          const from = ctl.now();
          process.kill(b.pid, 'SIGSTOP');
          await sleep(ctl.bounds.worstCaseFailoverMs + 300);
          process.kill(b.pid, 'SIGCONT');
          ownPause = { from, to: ctl.now() };
        })(),
    });
    expect(report.stops).toBe(1);
    expect(ownPause, 'the pair never became whole again after the nemesis pause').toBeDefined();
    // At least two peer-faulty events: one the nemesis' SIGSTOP explains (not a false alarm), one ours.
    const why = JSON.stringify({ ownPause, actions: report.actions, falseAlarms: report.falseAlarmRecords, durationMs: report.durationMs });
    expect(report.peerFaultyEvents, why).toBeGreaterThanOrEqual(2);
    const nemesis = report.actions![0]!;
    const explained = report.falseAlarmRecords.filter(
      (f) => f.at >= nemesis.at && f.at <= nemesis.endedAt! + report.bounds.detectionWindowMs,
    );
    expect(explained, 'the nemesis pause was counted as a false alarm').toEqual([]);
    expect(
      report.peerFaultyEvents - report.falseAlarms,
      `no peer-faulty was explained by the nemesis pause: ${why}`,
    ).toBeGreaterThanOrEqual(1);
    const ours = report.falseAlarmRecords.filter((f) => f.at >= ownPause!.from && f.at <= ownPause!.to + report.bounds.detectionWindowMs);
    expect(ours.length, JSON.stringify(report.falseAlarmRecords)).toBeGreaterThanOrEqual(1);
    expect(ours[0]!.reason).toBeTruthy();
    expect(report.falseAlarms).toBe(report.falseAlarmRecords.length);
    expect(report.ok).toBe(false);
    expect(report.failures.join('\n')).toMatch(/false alarm/);
  }, 60_000);

  it('ends a run whose pair stops serving for good, with each replica’s last status and events, and leaves no process behind', async () => {
    let pids: number[] = [];
    const started = Date.now();
    const report: ChaosReport = await runChaos(counterTarget(FAST), {
      actions: 3,
      clients: 2,
      nemesis: 'kill',
      seed: 3,
      warmupMs: 60_000, // the nemesis never gets to act: the outage ends the run first
      outageAbortMs: 2500,
      stopTimeoutMs: 10_000,
      log: quiet,
      onStarted: (ctl) =>
        void sleep(500).then(() => {
          pids = signalAll(ctl, 'SIGSTOP');
        }),
    });
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(report.ended).toBe('outage');
    expect(report.ok).toBe(false);
    expect(report.stalls).toBeGreaterThanOrEqual(1);
    const last = report.stallRecords.find((s) => s.aborted);
    expect(last, JSON.stringify(report.stallRecords)).toBeDefined();
    expect(last!.replicas).toHaveLength(2);
    for (const r of last!.replicas!) {
      expect(String(r.status)).toMatch(/no answer/);
      expect((r.lastEvents as unknown[]).length).toBeGreaterThan(0);
    }
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(isRunning(pid), `pid ${pid} still running`).toBe(false);
  }, 60_000);
});
