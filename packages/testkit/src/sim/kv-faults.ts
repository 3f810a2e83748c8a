/**
 * Injecting one fault of the key-value simulation into a running cluster, followed by its recovery
 * actions (a crashed server restarts and rejoins as backup; a crashed client restarts as a new client).
 * Every choice — which fault, when, how long — is drawn from the run's PRNG.
 *
 * The classic kinds (the patent's fault model) draw exactly as the first version did, so their seeds keep
 * their meaning. The recovery kinds hit the pair while it is still repairing the previous fault; each one
 * waits for a protocol moment (a join admitted, a copy installed, a takeover, a peer declared faulty) and
 * strikes right after it. None of them kills the primary while the other replica holds no state (that
 * loses acknowledged data in any primary/backup system): 'crash-primary-while-joining' does, on purpose,
 * and only in its own variant.
 */
import { codec } from '@tandem/core/internal';
import type { FaultKind } from './faults.js';
import type { KvCluster } from './kv-cluster.js';
import type { ReplicaSlot } from './kv-cluster-types.js';
import type { SimNode } from './node.js';
import { injectPartition } from './partition-faults.js';

/** True when the bytes are a client's forward (state information for the backup). */
function isForward(bytes: Uint8Array): boolean {
  try {
    return codec.decode(bytes).t === 'fwd';
  } catch {
    return false;
  }
}

const isRole = (node: string, role: string) => (e: { node: string; event: { type: string; role?: string } }) =>
  e.node === node && e.event.type === 'role' && e.event.role === role;

export async function injectFault(cluster: KvCluster, kind: FaultKind): Promise<void> {
  const sim = cluster.sim;
  const rng = sim.random;
  const sched = sim.scheduler;
  const p = cluster.primary();
  const b = cluster.backup();
  switch (kind) {
    case 'crash-primary': {
      if (!p) return;
      cluster.crash(p.node);
      cluster.noteFault(`crash-primary ${p.name}`);
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(p);
      return;
    }
    case 'crash-primary-after-reply': {
      if (!p) return;
      let crashed = false;
      sim.network.onTransmit = (from, to) => {
        if (from === p.node && cluster.clientNodes.has(to) && !crashed) {
          crashed = true;
          sim.network.onTransmit = undefined;
          cluster.crash(p.node);
          cluster.noteFault(`crash-primary-after-reply ${p.name} (right after a send to ${to.name})`);
        }
      };
      await cluster.waitUntil(() => crashed, 500);
      sim.network.onTransmit = undefined;
      if (!crashed) {
        cluster.crash(p.node);
        cluster.noteFault(`crash-primary ${p.name} (no reply seen)`);
      }
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(p);
      return;
    }
    case 'crash-primary-slow-forward': {
      if (!p || !b) return;
      let victim: SimNode | undefined;
      sim.network.onTransmit = (from, to) => {
        if (from === p.node && cluster.clientNodes.has(to) && victim === undefined) {
          victim = to;
          sim.network.onTransmit = undefined;
          cluster.crash(p.node, false); // its resets lost: forwards lost on an open connection are the silence path's case
          cluster.noteFault(
            `crash-primary-slow-forward ${p.name} (right after a send to ${to.name}; its next ${cluster.cfg.maxRetransmits} forwards to ${b.name} lost, then one delayed)`,
          );
        }
      };
      let forwards = 0;
      const slowMs = rng.between(0.5, 0.95) * cluster.cfg.ackTimeoutMs;
      sim.network.interceptor = (from, to, bytes) => {
        if (victim === undefined || from !== victim || to !== b.node || !isForward(bytes)) return undefined;
        forwards++;
        if (forwards <= cluster.cfg.maxRetransmits) return 'drop';
        return forwards === cluster.cfg.maxRetransmits + 1 ? slowMs : undefined;
      };
      await cluster.waitUntil(() => victim !== undefined, 500);
      sim.network.onTransmit = undefined;
      if (victim === undefined) {
        cluster.crash(p.node, false);
        cluster.noteFault(`crash-primary ${p.name} (no reply seen, resets lost)`);
      }
      await cluster.sleep(cluster.bounds.takeoverMs + cluster.cfg.ackTimeoutMs);
      sim.network.interceptor = undefined;
      cluster.restartReplica(p);
      return;
    }
    case 'crash-primary-process': {
      if (!p) return;
      // Right after a reply: the kernel resets every connection of the dead process. The answered client's
      // event loop is busy for up to 0.9 × processCrashTransitMs, so it handles the reply — and forwards its
      // state information — late: after the backup saw the reset and the refused dial.
      let victim: SimNode | undefined;
      const busyMs = rng.between(0, 0.9 * cluster.cfg.processCrashTransitMs);
      sim.network.onTransmit = (from, to) => {
        if (from === p.node && cluster.clientNodes.has(to) && victim === undefined) {
          victim = to;
          sim.network.onTransmit = undefined;
          cluster.crash(p.node);
          cluster.noteFault(`crash-primary-process ${p.name} (right after a send to ${to.name}, busy ${busyMs.toFixed(1)}ms after it)`);
          // The reply is in flight: the client handles it (and the reset behind it) only after its busy spell.
          cluster.stall(to, busyMs);
        }
      };
      await cluster.waitUntil(() => victim !== undefined, 500);
      sim.network.onTransmit = undefined;
      if (victim === undefined) {
        cluster.crash(p.node);
        cluster.noteFault(`crash-primary-process ${p.name} (no reply seen)`);
      }
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(p);
      return;
    }
    case 'crash-primary-silent': {
      if (!p) return;
      cluster.crash(p.node, false);
      cluster.noteFault(`crash-primary-silent ${p.name} (its resets lost)`);
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(p);
      return;
    }
    case 'reset-primary-connections': {
      if (!p) return;
      const n = sim.network.sever((a, z) => a === p.node || z === p.node);
      cluster.severs.push(sched.now);
      cluster.noteFault(`reset-primary-connections ${p.name} (${n}; it lives and listens)`);
      await cluster.sleep(rng.between(0, cluster.bounds.takeoverMs));
      return;
    }
    case 'crash-primary-host': {
      if (!p) return;
      const host = p.node.host;
      cluster.crashHost(host);
      cluster.noteFault(`crash-primary-host ${host.name} (${host.nodes.map((n) => n.name).join(', ')})`);
      for (const c of cluster.clients)
        if (c.node.host === host) cluster.diedWithPrimary.push({ label: `${c.name}#${c.incarnation}`, at: sched.now });
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      sim.rebootHost(host);
      cluster.restartReplica(p);
      for (const c of cluster.clients) if (c.node.host === host) cluster.restartClient(c);
      return;
    }
    case 'crash-backup': {
      if (!b) return;
      cluster.crash(b.node);
      cluster.noteFault(`crash-backup ${b.name}`);
      await cluster.sleep(rng.between(20, 500));
      cluster.restartReplica(b);
      return;
    }
    case 'crash-client': {
      const active = cluster.activeClients();
      if (active.length === 0) return;
      const c = rng.pick(active);
      cluster.crash(c.node);
      cluster.noteFault(`crash-client ${c.name}`);
      await cluster.sleep(rng.between(10, 300));
      cluster.restartClient(c);
      cluster.noteFault(`restart-client ${c.name}`, false);
      return;
    }
    case 'pause-primary':
    case 'pause-backup': {
      const target = kind === 'pause-primary' ? p : b;
      if (!target) return;
      const ms =
        kind === 'pause-primary' ? rng.between(0.3, 3) * cluster.bounds.takeoverMs : rng.between(0.5, 4) * cluster.bounds.peerFaultyMs;
      cluster.pause(target.node);
      cluster.noteFault(`${kind} ${target.name} for ${ms.toFixed(1)}ms`);
      await cluster.sleep(ms);
      cluster.resume(target.node);
      cluster.noteFault(`resume ${target.name}`, false);
      return;
    }
    case 'pause-client': {
      const active = cluster.activeClients();
      if (active.length === 0) return;
      const c = rng.pick(active);
      const ms = rng.between(20, 400);
      cluster.pause(c.node);
      cluster.noteFault(`pause-client ${c.name} for ${ms.toFixed(1)}ms`);
      await cluster.sleep(ms);
      cluster.resume(c.node);
      cluster.noteFault(`resume ${c.name}`);
      return;
    }
    case 'message-chaos': {
      const f = sim.network.faults;
      const saved = { ...f };
      f.lossRate = rng.between(0, 0.15);
      f.duplicateRate = rng.between(0, 0.15);
      f.reorderRate = rng.between(0, 0.3);
      f.spikeRate = rng.between(0, 0.3);
      f.spikeMs = rng.between(2, Math.max(3, cluster.cfg.ackTimeoutMs * 0.8));
      const ms = rng.between(100, 600);
      cluster.noteFault(
        `message-chaos for ${ms.toFixed(1)}ms (loss ${f.lossRate.toFixed(2)}, dup ${f.duplicateRate.toFixed(2)}, reorder ${f.reorderRate.toFixed(2)}, spikes ${f.spikeRate.toFixed(2)}×${f.spikeMs.toFixed(0)}ms)`,
      );
      const chaosStart = sched.now;
      await cluster.sleep(ms);
      Object.assign(f, saved);
      cluster.noteFault('message-chaos ends');
      cluster.chaosWindows.push([chaosStart, sched.now]);
      return;
    }
    case 'sever-connections': {
      const n = sim.network.sever();
      cluster.severs.push(sched.now);
      cluster.noteFault(`sever-connections (${n})`);
      return;
    }

    // ---- slow but alive --------------------------------------------------------------------------

    case 'stall-primary':
    case 'stall-backup': {
      const target = kind === 'stall-primary' ? p : b;
      if (!target) return;
      const pf = cluster.bounds.peerFaultyMs;
      // Mostly short (a busy replica nobody may call faulty), sometimes longer than failure detection.
      const long = rng.chance(0.3);
      const ms = long ? rng.between(1, 3) * pf : rng.between(2, 0.8 * pf);
      cluster.stall(target.node, ms);
      cluster.noteFault(`${kind} ${target.name} for ${ms.toFixed(1)}ms (${long ? 'long' : 'short'}: its event loop is busy)`);
      await cluster.sleep(ms);
      return;
    }

    // ---- faults during recovery ---------------------------------------------------------------------

    case 'crash-backup-while-joining': {
      if (!p || !b) return;
      cluster.crash(b.node);
      cluster.noteFault(`crash-backup ${b.name}`);
      await cluster.sleep(rng.between(10, 200));
      cluster.restartReplica(b, restartHint(cluster));
      const phase = rng.pick(['asking', 'admitted', 'installed'] as const);
      if (!(await joinPhase(cluster, b, phase))) return;
      cluster.crash(b.node);
      cluster.noteFault(`crash-backup ${b.name} again while joining (${phase})`);
      await cluster.sleep(rng.between(10, 300));
      cluster.restartReplica(b, restartHint(cluster));
      return;
    }

    case 'crash-after-rejoin': {
      if (!p || !b) return;
      const first = rng.chance(0.5) ? p : b;
      const survivor = cluster.other(first);
      cluster.crash(first.node);
      cluster.noteFault(`crash-${first === p ? 'primary' : 'backup'} ${first.name}`);
      await cluster.sleep(rng.between(20, first === p ? 2 * cluster.bounds.takeoverMs : 300));
      cluster.restartReplica(first, restartHint(cluster));
      // Half the time the state copy travels slowly (a large state on a busy link: still within
      // ackTimeoutMs), so clients' forwards of newer entries reach the joiner before the copy does.
      const slowCopyMs = rng.chance(0.5) ? rng.between(10, 0.9 * cluster.cfg.ackTimeoutMs) : 0;
      if (slowCopyMs > 0) sim.network.interceptor = (from, to) => (from === survivor.node && to === first.node ? slowCopyMs : undefined);
      const rejoined = await cluster.nextEvent(isRole(first.name, 'backup'), 5000);
      if (slowCopyMs > 0) sim.network.interceptor = undefined;
      if (!rejoined) return;
      // Strike right after the install (before the primary re-flushed what the joiner missed), or soon.
      const right = rng.chance(0.5);
      await cluster.sleep(right ? rng.between(0, 4) : rng.between(0, cluster.bounds.takeoverMs));
      // The second kill: the rejoined backup, or the replica that served through (only while the rejoined
      // one still holds the state: killing the primary of a replica that lost it is the lost-state double fault).
      let second = rng.chance(0.5) ? first : survivor;
      if (second === survivor && !canKillPrimary(cluster, survivor)) {
        cluster.avoidedLostState++;
        second = first;
      }
      if (!cluster.live(second) || second.node.state === 'down') return;
      const what = SERVING_ROLES.has(cluster.role(second) ?? 'stopped') ? 'primary' : cluster.role(second);
      cluster.crash(second.node);
      cluster.noteFault(
        `crash ${what} ${second.name} ${(sched.now - rejoined.time).toFixed(1)}ms after ${first.name} rejoined${slowCopyMs > 0 ? ` (its copy took ${slowCopyMs.toFixed(1)}ms longer)` : ''}`,
      );
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(second, restartHint(cluster));
      return;
    }

    case 'crash-primary-after-drop': {
      if (!p || !b) return;
      const how = rng.pick(['stall', 'pause', 'lose-acks'] as const);
      const pf = cluster.bounds.peerFaultyMs;
      // Long enough for the primary's failure detection (maxRetransmits re-sends ackTimeoutMs apart).
      const ms = rng.between(1.5, 3.5) * pf;
      let endIsolation: (() => void) | undefined;
      let resumeAt: number | undefined;
      let primaryKilled = false;
      // The stall or pause ends on its own schedule; this fault is over only then.
      const endAt = how === 'lose-acks' ? 0 : sched.now + ms;
      if (how === 'stall') {
        cluster.stall(b.node, ms);
        // If the primary dies meanwhile, nobody can serve until the stall ends: its end is a fault action.
        sched.after(ms, 'driver', () => primaryKilled && cluster.noteFaultWhenIdle(b.node, `${b.name}'s stall ends`));
      } else if (how === 'pause') {
        cluster.pause(b.node);
        resumeAt = sched.now + ms;
      } else {
        endIsolation = cluster.isolate(b.node);
        sim.network.interceptor = (from, to) => (from === b.node && to === p.node ? 'drop' : undefined);
      }
      cluster.noteFault(
        `${how === 'lose-acks' ? `lose ${b.name}'s messages to ${p.name}` : `${how} backup ${b.name} for ${ms.toFixed(1)}ms`} (until ${p.name} declares it faulty)`,
      );
      const stopIsolation = () => {
        if (endIsolation) {
          sim.network.interceptor = undefined;
          endIsolation();
          endIsolation = undefined;
        }
      };
      // The paused backup resumes on its own schedule, whatever happens to the primary meanwhile.
      if (resumeAt !== undefined) {
        sched.at(resumeAt, 'driver', () => {
          if (b.node.state === 'paused') {
            cluster.resume(b.node);
            // Once the primary is dead, nobody could serve while it was paused: a fault action then.
            if (primaryKilled) cluster.noteFaultWhenIdle(b.node, `resume ${b.name}`);
            else cluster.noteFault(`resume ${b.name}`, false);
          }
        });
      }
      const alarm = await cluster.nextEvent((e) => e.node === p.name && e.event.type === 'peer-faulty', 4 * cluster.bounds.takeoverMs);
      if (!alarm) {
        stopIsolation();
        await cluster.sleep(Math.max(0, endAt - sched.now));
        return;
      }
      // Strike while the dropped replica re-joins: at the alarm (before it heard of the drop), once it
      // acknowledged the drop (joining), once the primary serves alone, or a little later.
      const when = rng.pick(['at-alarm', 'joining', 'solo', 'later'] as const);
      if (when === 'at-alarm') {
        // right after the primary declared it faulty (its drop is on the way)
      } else if (when === 'joining' || when === 'solo') {
        stopIsolation();
        const ev = await cluster.nextEvent(
          when === 'joining' ? isRole(b.name, 'joining') : isRole(p.name, 'solo-primary'),
          2 * cluster.bounds.takeoverMs + ms,
        );
        if (!ev) {
          await cluster.sleep(Math.max(0, endAt - sched.now));
          return;
        }
        await cluster.sleep(rng.between(0, 2 * cluster.cfg.flushIntervalMs));
      } else {
        stopIsolation();
        await cluster.sleep(rng.between(0, cluster.bounds.takeoverMs));
      }
      stopIsolation();
      if (p.node.state === 'down' || !SERVING_ROLES.has(cluster.role(p) ?? 'stopped')) {
        await cluster.sleep(Math.max(0, endAt - sched.now));
        return;
      }
      if (!cluster.other(p).stateful) {
        cluster.avoidedLostState++;
        return;
      }
      cluster.crash(p.node);
      primaryKilled = true;
      cluster.noteFault(
        `crash-primary ${p.name} (${when}: ${(sched.now - alarm.time).toFixed(1)}ms after it declared ${b.name} faulty; ${b.name} is ${cluster.role(b) ?? 'down'})`,
      );
      // The dropped backup, still paused, stalled or working through what queued meanwhile, is the only
      // replica holding the state now: the liveness clock starts when it is idle again.
      if (b.node.state === 'paused' || b.node.busy) cluster.frozenSoleHolder(b.node, Math.max(endAt, sched.now));
      // Its stall already over but its backlog not: the liveness clock restarts when it is idle.
      if (b.node.state !== 'paused' && b.node.busy && endAt <= sched.now)
        cluster.noteFaultWhenIdle(b.node, `${b.name} done with the backlog of its stall`);
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      cluster.restartReplica(p, restartHint(cluster));
      await cluster.sleep(Math.max(0, endAt - sched.now));
      return;
    }

    case 'pause-primary-after-takeover': {
      if (!p || !b) return;
      cluster.crash(p.node);
      cluster.noteFault(`crash-primary ${p.name}`);
      const restartAt = sched.now + rng.between(20, 2 * cluster.bounds.takeoverMs);
      const hint = restartHint(cluster);
      sched.at(restartAt, 'driver', () => cluster.restartReplica(p, hint));
      const takeover = await cluster.nextEvent(
        (e) => e.node === b.name && e.event.type === 'takeover',
        cluster.bounds.worstCaseFailoverMs + 500,
      );
      if (!takeover) {
        await cluster.sleep(Math.max(0, restartAt - sched.now));
        return;
      }
      await cluster.sleep(rng.between(0, 2 * cluster.cfg.flushIntervalMs));
      const ms = rng.between(0.3, 3) * cluster.bounds.takeoverMs;
      cluster.pause(b.node);
      cluster.frozenSoleHolder(b.node, sched.now + ms);
      cluster.noteFault(
        `pause-primary ${b.name} ${(sched.now - takeover.time).toFixed(1)}ms after its takeover, for ${ms.toFixed(1)}ms (${p.name}: ${cluster.role(p) ?? 'down'})`,
      );
      await cluster.sleep(ms);
      cluster.resume(b.node);
      // Nobody else holds the state (the old primary restarted empty): until now nobody could serve.
      cluster.noteFault(`resume ${b.name}`);
      await cluster.sleep(Math.max(0, restartAt - sched.now));
      return;
    }

    case 'partition-pair':
    case 'partition-hosts':
    case 'isolate-witness':
      return injectPartition(cluster, kind);

    // ---- lost state (own variant only) -------------------------------------------------------------

    case 'crash-primary-while-joining': {
      if (!p || !b) return;
      cluster.crash(b.node);
      cluster.noteFault(`crash-backup ${b.name}`);
      await cluster.sleep(rng.between(10, 200));
      cluster.restartReplica(b);
      const phase = rng.pick(['asking', 'admitted'] as const);
      if (!(await joinPhase(cluster, b, phase))) return;
      if (cluster.role(b) === 'backup' || !SERVING_ROLES.has(cluster.role(p) ?? 'stopped')) return; // it got its copy first
      const joinerEpoch = b.replica!.status().epoch;
      cluster.crash(p.node);
      const at = sched.now;
      cluster.noteFault(
        `crash-primary ${p.name} while ${b.name} joins (${phase}; it holds no state${joinerEpoch === 0 ? ' and has not heard from the primary yet' : ''})`,
      );
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      // A copy already in flight may still land: then the joiner holds the state after all.
      const installed = cluster.replicaEvents.some(
        (e) => e.time >= at && e.node === b.name && e.event.type === 'role' && e.event.role === 'backup',
      );
      cluster.lostState.push({ at, joiner: b.name, averted: installed, joinerEpoch });
      cluster.noteFault(
        installed
          ? `(${b.name} installed the copy that was in flight: state not lost)`
          : `LOST STATE: neither replica holds the state since ${at.toFixed(1)}ms`,
        false,
      );
      cluster.restartReplica(p);
      return;
    }
  }
}

const SERVING_ROLES: ReadonlySet<string> = new Set(['primary', 'solo-primary']);

/** How a recovery kind restarts a crashed server: told to rejoin as backup, or with the role `auto` of
 * `tandem-kv serve` (it probes its peer first — and must not lead while a state-holding peer is frozen). */
function restartHint(cluster: KvCluster): 'backup' | 'auto' {
  return cluster.sim.random.chance(0.5) ? 'auto' : 'backup';
}

/** The primary may be killed as a single fault: its peer holds the state (a backup, or a dropped one). */
function canKillPrimary(cluster: KvCluster, primary: ReplicaSlot): boolean {
  const other = cluster.other(primary);
  return cluster.live(other) && other.node.state !== 'down' && other.stateful;
}

/**
 * Wait for a moment of `joiner`'s join: 'asking' (just restarted: probing, asking for the copy), 'admitted'
 * (the primary sent it the copy and waits for its first ack), 'installed' (it installed the copy and is a
 * backup now). False when the moment did not come.
 */
async function joinPhase(cluster: KvCluster, joiner: ReplicaSlot, phase: 'asking' | 'admitted' | 'installed'): Promise<boolean> {
  const rng = cluster.sim.random;
  const timeout = 2 * cluster.bounds.takeoverMs + 500;
  if (phase === 'asking') {
    await cluster.sleep(rng.between(0, 8));
    return true;
  }
  if (phase === 'admitted') {
    const ev = await cluster.nextEvent((e) => e.node !== joiner.name && e.event.type === 'peer-joined', timeout);
    if (!ev) return false;
    await cluster.sleep(rng.between(0, 3));
    return true;
  }
  const ev = await cluster.nextEvent(isRole(joiner.name, 'backup'), timeout);
  if (!ev) return false;
  await cluster.sleep(rng.between(0, 2 * cluster.cfg.flushIntervalMs));
  return true;
}
