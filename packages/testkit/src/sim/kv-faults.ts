/**
 * Injecting one fault of the key-value simulation into a running cluster, followed by its recovery
 * actions (a crashed server restarts and rejoins as backup; a crashed client restarts as a new client).
 * Every choice — which fault, when, how long — is drawn from the run's PRNG.
 */
import { codec } from '@tandem/core';
import type { FaultKind } from './faults.js';
import type { KvCluster } from './kv-cluster.js';
import type { SimNode } from './node.js';

/** True when the bytes are a client's forward (state information for the backup). */
function isForward(bytes: Uint8Array): boolean {
  try {
    return codec.decode(bytes).t === 'fwd';
  } catch {
    return false;
  }
}

export async function injectFault(cluster: KvCluster, kind: FaultKind): Promise<void> {
  const sim = cluster.sim;
  const rng = sim.random;
  const sched = sim.scheduler;
  const p = cluster.primary();
  const b = cluster.backup();
  switch (kind) {
    case 'crash-primary': {
      if (!p) return;
      p.node.crash();
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
          p.node.crash();
          cluster.noteFault(`crash-primary-after-reply ${p.name} (right after a send to ${to.name})`);
        }
      };
      await cluster.waitUntil(() => crashed, 500);
      sim.network.onTransmit = undefined;
      if (!crashed) {
        p.node.crash();
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
          p.node.crash();
          cluster.noteFault(`crash-primary-slow-forward ${p.name} (right after a send to ${to.name}; its next ${cluster.cfg.maxRetransmits} forwards to ${b.name} lost, then one delayed)`);
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
        p.node.crash();
        cluster.noteFault(`crash-primary ${p.name} (no reply seen)`);
      }
      await cluster.sleep(cluster.bounds.takeoverMs + cluster.cfg.ackTimeoutMs);
      sim.network.interceptor = undefined;
      cluster.restartReplica(p);
      return;
    }
    case 'crash-primary-host': {
      if (!p) return;
      const host = p.node.host;
      sim.crashHost(host);
      cluster.noteFault(`crash-primary-host ${host.name} (${host.nodes.map((n) => n.name).join(', ')})`);
      for (const c of cluster.clients) if (c.node.host === host) cluster.diedWithPrimary.push({ label: `${c.name}#${c.incarnation}`, at: sched.now });
      await cluster.sleep(rng.between(20, 2 * cluster.bounds.takeoverMs));
      sim.rebootHost(host);
      cluster.restartReplica(p);
      for (const c of cluster.clients) if (c.node.host === host) cluster.restartClient(c);
      return;
    }
    case 'crash-backup': {
      if (!b) return;
      b.node.crash();
      cluster.noteFault(`crash-backup ${b.name}`);
      await cluster.sleep(rng.between(20, 500));
      cluster.restartReplica(b);
      return;
    }
    case 'crash-client': {
      const active = cluster.activeClients();
      if (active.length === 0) return;
      const c = rng.pick(active);
      c.node.crash();
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
      const ms = kind === 'pause-primary' ? rng.between(0.3, 3) * cluster.bounds.takeoverMs : rng.between(0.5, 4) * cluster.bounds.peerFaultyMs;
      target.node.pause();
      cluster.noteFault(`${kind} ${target.name} for ${ms.toFixed(1)}ms`);
      await cluster.sleep(ms);
      target.node.resume();
      cluster.noteFault(`resume ${target.name}`, false);
      return;
    }
    case 'pause-client': {
      const active = cluster.activeClients();
      if (active.length === 0) return;
      const c = rng.pick(active);
      const ms = rng.between(20, 400);
      c.node.pause();
      cluster.noteFault(`pause-client ${c.name} for ${ms.toFixed(1)}ms`);
      await cluster.sleep(ms);
      c.node.resume();
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
      cluster.noteFault(`sever-connections (${n})`);
      return;
    }
  }
}
