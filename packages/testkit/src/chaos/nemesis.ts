/**
 * The chaos runner's nemesis (runner.ts): which replica is the primary, which may be faulted now (THE
 * RULE, see runner.ts), the schedule of SIGKILLs and SIGSTOPs, and the restarts after a kill.
 */
import type { FaultSpan } from './analysis.js';
import type { ChaosReplica } from './process.js';
import type { ActionRecord } from './report.js';
import type { ChaosRun } from './runner.js';

export function kindOf(run: ChaosRun, p: ChaosReplica): 'primary' | 'backup' {
  const q = run.other(p);
  if (!p.serving) return 'backup';
  if (q?.alive && q.serving && (q.epoch ?? 0) > (p.epoch ?? 0)) return 'backup';
  return 'primary';
}

/**
 * A resumed replica holds state again when it reports `backup` — or, once a takeover would have shown
 * (takeoverMs after SIGCONT), when nothing displaced it: still the serving primary with no newer epoch
 * beside it, or still backup without its primary having declared it faulty since the SIGSTOP.
 */
export function rearmResumed(run: ChaosRun): void {
  const now = run.now();
  for (const p of run.slots) {
    if (!p?.up || p.heldStateSince !== undefined || p.resumedAt === undefined || now - p.resumedAt < run.b.takeoverMs) continue;
    const q = run.other(p);
    const dropped = q?.events.some((e) => e.event === 'peer-faulty' && e.at >= (p.pausedAt ?? 0));
    const stillPrimary = p.serving && kindOf(run, p) === 'primary' && !(q?.alive && q.serving);
    const stillBackup = p.role === 'backup' && !dropped && q?.serving;
    if (stillPrimary || stillBackup) {
      p.heldStateSince = now;
      run.log(`${p.name} holds state again: still ${p.role} ${Math.round(now - p.resumedAt)} ms after SIGCONT (nothing displaced it)`);
    }
  }
}

/** May `p` be faulted now? Only when the other replica runs and holds state (THE RULE). */
function eligible(run: ChaosRun, p: ChaosReplica): boolean {
  const q = run.other(p);
  return p.up && q?.up === true && q.heldStateSince !== undefined && run.slots[p.launch.slot] === p;
}

function candidate(run: ChaosRun, kind: 'primary' | 'backup'): ChaosReplica | undefined {
  for (const p of run.slots) if (p && kindOf(run, p) === kind && eligible(run, p)) return p;
  return undefined;
}

/** The serving replica is up but the other runs without state: the rule holds the nemesis back. */
function blockedByRule(run: ChaosRun): boolean {
  for (const p of run.slots) {
    const q = p && run.other(p);
    if (p && q && p.up && kindOf(run, p) === 'primary' && q.up && q.heldStateSince === undefined) return true;
  }
  return false;
}

export async function runNemesis(run: ChaosRun): Promise<void> {
  let waitStart = run.now();
  let deferred = false;
  for (let i = 0; i < run.o.actions; ) {
    const kind: 'primary' | 'backup' = run.o.targets === 'both' ? (run.rnd.chance(0.5) ? 'primary' : 'backup') : run.o.targets;
    const fault: 'kill' | 'stop' = run.o.nemesis === 'mixed' ? (run.rnd.chance(0.5) ? 'kill' : 'stop') : run.o.nemesis;
    const delay = run.rnd.chance(run.o.longDelayChance) ? run.rnd.between(...run.o.longDelayMs) : run.rnd.between(...run.o.delayMs);
    let target: ChaosReplica | undefined;
    for (;;) {
      target = candidate(run, kind);
      if (target) break;
      if (kind === 'primary' && !deferred && blockedByRule(run)) {
        deferred = true;
        run.ruleDeferrals++;
      }
      // (No reply for a while either: that is an outage, which the watchdog reports.)
      if (run.now() - waitStart > run.o.redundancyTimeoutMs && run.now() - run.lastSuccessAt < run.stallBoundMs()) {
        run.redundancyLoss(`the nemesis waited ${run.o.redundancyTimeoutMs} ms for a ${kind} it may fault`);
        return;
      }
      await run.waitChange(50);
    }
    const waited = run.now() - waitStart;
    await run.sleep(delay);
    if (!eligible(run, target) || kindOf(run, target) !== kind) continue; // things moved: choose again
    i++;
    strike(run, target, kind, fault, i, waited, delay);
    waitStart = run.now();
    deferred = false;
  }
}

function strike(
  run: ChaosRun,
  p: ChaosReplica,
  kind: 'primary' | 'backup',
  fault: 'kill' | 'stop',
  n: number,
  waitedMs: number,
  delayMs: number,
): void {
  const q = run.other(p)!;
  const at = run.now();
  const rec: ActionRecord = {
    n,
    at: Math.round(at),
    fault,
    node: p.name,
    pid: p.pid,
    generation: p.launch.generation,
    target: kind,
    role: p.role ?? null,
    epoch: p.epoch ?? null,
    peer: {
      node: q.name,
      role: q.role ?? null,
      heldStateForMs: q.heldStateSince !== undefined ? Math.round(at - q.heldStateSince) : null,
    },
    waitedMs: Math.round(waitedMs),
    delayMs: Math.round(delayMs),
  };
  run.actions.push(rec);
  const span: FaultSpan = { node: p.name, kind: fault, start: at, end: Infinity };
  run.faults.push(span);
  const what = `${kind} ${p.name} (${p.role ?? 'starting'}${p.epoch !== undefined ? ` @${p.epoch}` : ''}, pid ${p.pid}); ${q.name} is ${q.role ?? 'starting'}, holds state since ${rec.peer.heldStateForMs} ms`;
  if (fault === 'kill') {
    p.killedByNemesis = true;
    p.signal('SIGKILL');
    run.log(`#${n}/${run.o.actions} SIGKILL ${what}`);
    run.track(restartLater(run, p, span, rec));
  } else {
    p.signal('SIGSTOP');
    p.paused = true;
    p.pausedAt = at;
    const pauseMs = run.pauseMs();
    run.log(`#${n}/${run.o.actions} SIGSTOP ${what}; SIGCONT in ${pauseMs} ms`);
    run.track(
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          run.timers.delete(t);
          if (p.alive) {
            p.signal('SIGCONT');
            p.paused = false;
            p.heldStateSince = undefined; // it must report `backup` again before the other may be faulted
            p.resumedAt = run.now();
          }
          span.end = run.now();
          rec.endedAt = Math.round(span.end);
          run.log(`SIGCONT ${p.name} (pid ${p.pid})`);
          run.changed();
          resolve();
        }, pauseMs);
        run.timers.add(t);
      }),
    );
  }
  run.changed();
}

export async function restartLater(run: ChaosRun, p: ChaosReplica, span: FaultSpan, rec: ActionRecord | undefined): Promise<void> {
  await p.exited;
  const delay = run.rnd.between(...run.o.restartDelayMs);
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      run.timers.delete(t);
      resolve();
    }, delay);
    run.timers.add(t);
  });
  if (run.ended !== undefined && run.ended !== 'completed') return;
  const how = restartHow(run);
  const slot = p.launch.slot;
  run.restartCount[how]++;
  const np = run.spawnSlot(slot, 'backup', how);
  span.end = run.now();
  if (rec) {
    rec.endedAt = Math.round(span.end);
    rec.restart = how;
  }
  run.log(
    `restarted ${np.name} with ${how === 'rejoin' ? 'rejoin' : 'serve --role backup'} (pid ${np.pid}, ${Math.round(delay)} ms after the exit)`,
  );
  run.changed();
}

function restartHow(run: ChaosRun): 'serve' | 'rejoin' {
  switch (run.o.restart) {
    case 'serve':
    case 'rejoin':
      return run.o.restart;
    case 'random':
      return run.rnd.chance(0.5) ? 'serve' : 'rejoin';
    default:
      return run.restartToggle++ % 2 === 0 ? 'serve' : 'rejoin';
  }
}
