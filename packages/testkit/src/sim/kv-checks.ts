/**
 * The invariants checked at the end of every key-value simulation run (docs/TESTING.md):
 * linearizability, exactly-once, convergence / no divergence, no protocol error, liveness bound.
 */
import { checkKvHistory, type LinearizabilityReport } from '../linearizability/check.js';
import type { KvCluster } from './kv-cluster.js';
import { duplicateApplications } from './kv-service.js';

export interface KvCheckResult {
  failures: string[];
  linearizability: LinearizabilityReport;
  /** Worst latency, measured from the later of an operation's call and the last disruption before its return. */
  maxLatencyMs: number;
}

export function checkKvRun(cluster: KvCluster, livenessBoundMs: number): KvCheckResult {
  const failures: string[] = [];
  for (const r of cluster.replicaEvents) {
    if (r.event.type === 'divergence') failures.push(`divergence reported by ${r.node} at seq ${r.event.seq}`);
    if (r.event.type === 'lost-entries') failures.push(`${r.node} reported lost entries ${r.event.seqs.join(',')} (epoch ${r.event.epoch})`);
    // The simulated network never corrupts bytes: a protocol violation is a bug of one of the stacks.
    if (r.event.type === 'protocol-error') failures.push(`protocol error at ${r.node} from ${r.event.remote}: ${r.event.error.message}`);
  }
  for (const slot of cluster.replicas) {
    if (!cluster.live(slot)) continue;
    for (const d of duplicateApplications(slot.replica!.state)) failures.push(`exactly-once: ${slot.name} applied ${d.request} ${d.times} times`);
  }

  // The guarantee covers replies received by SURVIVING clients. A client that dies together with the
  // primary's host may take the only copy of its newest entries with it (its forward had not left yet):
  // its writes acknowledged within forwardWindowMs before the crash count as outcome-unknown.
  const checked = cluster.history.map((h) => {
    const died = cluster.diedWithPrimary.find((d) => d.label === h.client);
    if (!died || h.op === 'get' || h.return === undefined || h.return < died.at - cluster.bounds.forwardWindowMs) return h;
    return { ...h, return: undefined };
  });
  const linearizability = checkKvHistory(checked);
  if (linearizability.verdict !== 'linearizable') failures.push(`linearizability: ${linearizability.verdict}\n${linearizability.failure?.explanation ?? ''}`);

  let maxLatencyMs = 0;
  for (const h of cluster.history) {
    if (h.return === undefined) continue;
    const ret = h.return;
    if (cluster.chaosWindows.some(([a, b]) => ret >= a && ret <= b)) continue;
    let last = -Infinity;
    for (const d of cluster.disruptions) if (d <= ret && d > last) last = d;
    const start = Math.max(h.call, last);
    const latency = ret - start;
    maxLatencyMs = Math.max(maxLatencyMs, latency);
    if (latency > livenessBoundMs) {
      failures.push(
        `liveness: ${h.client} ${h.op} ${h.key} called at ${h.call.toFixed(1)}ms completed at ${ret.toFixed(1)}ms, ${latency.toFixed(1)}ms after ${start === h.call ? 'its call' : `the fault action at ${start.toFixed(1)}ms`} (bound ${livenessBoundMs}ms)`,
      );
    }
  }
  return { failures, linearizability, maxLatencyMs };
}
