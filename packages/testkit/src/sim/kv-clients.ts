/**
 * The key-value simulation's clients (KvCluster delegates here): each client process's workload —
 * get/put/append on random keys with unique written values, recorded with virtual call and return
 * times — and the final reads through a fresh client.
 */
import { createClient, errorName } from '@tandem/core';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { KvCluster } from './kv-cluster.js';
import type { ClientSlot } from './kv-cluster-types.js';
import type { SimKvReply, SimKvRequest } from './kv-service.js';

/** Start (or continue, after a restart) `slot`'s workload (see KvCluster.runClient). */
export function runClientWorkload(cluster: KvCluster, slot: ClientSlot): void {
  const sched = cluster.sim.scheduler;
  const rng = cluster.sim.random;
  const inc = slot.node.incarnation;
  const env = slot.node.env();
  const client = createClient({ service: cluster.service, env, servers: cluster.servers, config: cluster.config });
  const label = `${slot.name}#${slot.incarnation}`;
  const pause = (ms: number) => new Promise<void>((r) => env.setTimer(ms, r));
  const { thinkMaxMs = 15, getShare = 0.4, putShare = 0.2, idleChance = 0, idleMs = [0, 0] } = cluster.workload;
  void (async () => {
    while (slot.remaining > 0) {
      await pause(idleChance > 0 && rng.chance(idleChance) ? rng.between(idleMs[0], idleMs[1]) : rng.between(0, thinkMaxMs));
      const i = cluster.opsPerClient - slot.remaining;
      slot.remaining--;
      const key = `k${rng.int(0, cluster.keys - 1)}`;
      const r = rng.next();
      const req: SimKvRequest =
        r < getShare
          ? { op: 'get', key }
          : r < getShare + putShare
            ? { op: 'put', key, value: `${label}.${i};` }
            : { op: 'append', key, value: `${label}.${i};` };
      const rec: KvHistoryOp = { client: label, op: req.op, key, value: req.op === 'get' ? null : req.value, call: sched.now };
      cluster.history.push(rec);
      sched.note(`call ${label} ${req.op} ${key}`);
      try {
        const rep = await client.callWithInfo(req);
        rec.return = sched.now;
        cluster.opInfo.set(rec, { seq: rep.seq, epoch: rep.epoch });
        if (req.op === 'get') rec.value = rep.reply.value;
        sched.note(`return ${label} ${req.op} ${key} ${rep.reply.value ?? '∅'}`);
      } catch (err) {
        if (slot.node.incarnation !== inc) return;
        if (errorName(err) === 'ServiceUnavailableError') {
          cluster.failures.push(
            `liveness: ${label} ${req.op} ${key} called at ${rec.call.toFixed(1)}ms failed with ServiceUnavailableError at ${sched.now.toFixed(1)}ms`,
          );
        } else cluster.failures.push(`${label} ${req.op} ${key}: unexpected ${errorName(err)}: ${(err as Error).message}`);
      }
    }
    if (slot.node.incarnation === inc) slot.finished = true;
  })();
}

/** Read a key through `reader` (a fresh client process), recording the read in the history. */
export async function finalRead(
  cluster: KvCluster,
  key: string,
  reader: { callWithInfo(req: SimKvRequest): Promise<{ reply: SimKvReply; seq: number; epoch: number }> },
): Promise<void> {
  const rec: KvHistoryOp = { client: 'reader', op: 'get', key, value: null, call: cluster.sim.now };
  cluster.history.push(rec);
  try {
    const rep = await reader.callWithInfo({ op: 'get', key });
    rec.value = rep.reply.value;
    rec.return = cluster.sim.now;
    cluster.opInfo.set(rec, { seq: rep.seq, epoch: rep.epoch });
  } catch (err) {
    cluster.failures.push(`final read of ${key}: ${errorName(err)}: ${(err as Error).message}`);
  }
}
