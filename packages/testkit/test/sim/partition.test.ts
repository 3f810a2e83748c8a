import { describe, expect, it } from 'vitest';
import { runPartitionSimulation, type PartitionSimulationResult } from '../../src/sim/partition-run.js';

const describeFailure = (r: PartitionSimulationResult) =>
  `seed ${r.seed} (${r.witness ? `witness, lease ${r.leaseMs} ms` : 'no witness'}): ${r.faults.join(' → ')}\n${r.failures.join('\n')}`;

async function run(witness: boolean, from: number, count: number): Promise<PartitionSimulationResult[]> {
  const out: PartitionSimulationResult[] = [];
  for (let seed = from; seed < from + count; seed++) out.push(await runPartitionSimulation({ seed, witness }));
  return out;
}

/** The checker saw the split brain: acknowledged writes missing from the final reads, and the history is
 * not linearizable. */
const lossSeen = (r: PartitionSimulationResult) => r.lostWrites.length > 0 && r.linearizability.verdict === 'not-linearizable';

// Seeds 5001… (npm run sim -- --scenario partition runs 1…2000 in CI).
describe('the partition scenario (the primary–backup link cut, clients reach both replicas)', () => {
  it('WITH the simulated witness: 250 seeds lose nothing, never two replicas acknowledge at once, and the pair serves through and after every partition', async () => {
    const results = await run(true, 5001, 250);
    for (const r of results) expect(r.ok, describeFailure(r)).toBe(true);
    for (const r of results) {
      expect(r.lostWrites).toEqual([]);
      expect(r.overlaps).toEqual([]);
      expect(r.linearizability.verdict).toBe('linearizable');
      expect(r.maxLatencyAfterFaultMs).toBeLessThanOrEqual(r.livenessBoundMs);
    }
    // Coverage: the witness decided takeovers, refused some, was unreachable for some, and let leases run out.
    const total = (k: 'granted' | 'refused' | 'unreachable' | 'expired') => results.reduce((s, r) => s + (r.witnessStats?.[k] ?? 0), 0);
    expect(results.filter((r) => (r.replicaEvents.takeover ?? 0) > 0).length).toBeGreaterThan(50);
    expect(total('refused')).toBeGreaterThan(20);
    expect(total('unreachable')).toBeGreaterThan(20);
    expect(total('expired')).toBeGreaterThan(0);
    expect(results.filter((r) => r.partitions.some((w) => w.kind === 'pair' && w.witnessCut !== undefined)).length).toBeGreaterThan(20);
    // The witness is off the request path: cut off from a healthy pair, nothing changes.
    expect(results.filter((r) => r.partitions.some((w) => w.kind === 'witness')).length).toBeGreaterThan(20);
    expect(results.reduce((s, r) => s + r.changesWhileWitnessCut, 0)).toBe(0);
  }, 600_000);

  it('WITHOUT a witness the checker finds the split brain: lost acknowledged writes within the first few seeds, in most of 120', async () => {
    const results = await run(false, 5001, 120);
    for (const r of results) expect(r.ok, `seed ${r.seed}: a partition without a witness must fail`).toBe(false);
    const caught = results.filter(lossSeen);
    expect(caught.length, 'seeds where the checker saw lost acknowledged writes').toBeGreaterThan(60);
    expect(results.slice(0, 10).some(lossSeen)).toBe(true);
    for (const r of caught) {
      expect(r.failures.join('\n')).toMatch(/lost writes: \d+ acknowledged append/);
      expect(r.failures.join('\n')).toMatch(/^linearizability/m);
    }
    expect(results.filter((r) => r.overlaps.length > 0).length).toBeGreaterThan(60);
  }, 600_000);

  it('replays a seed identically', async () => {
    for (const witness of [true, false]) {
      const a = await runPartitionSimulation({ seed: 7, witness, recordTrace: true });
      const b = await runPartitionSimulation({ seed: 7, witness, recordTrace: true });
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.history).toEqual(a.history);
      expect(b.failures).toEqual(a.failures);
      expect(b.witnessRecords).toEqual(a.witnessRecords);
    }
  }, 120_000);
});
