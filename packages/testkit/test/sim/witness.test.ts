import { describe, expect, it } from 'vitest';
import { Simulation } from '../../src/sim/simulation.js';
import { HOLD_FRACTION, SimWitness, witnessOf } from '../../src/sim/witness.js';

/** A world with two replica processes and a witness (lease 1000 ms, keepalives every 333 ms). */
function world(seed = 1) {
  const sim = new Simulation({ seed });
  const ra = sim.node('ra');
  const rb = sim.node('rb');
  const witness = new SimWitness(sim, { leaseMs: 1000, callTimeoutMs: 100 });
  return { sim, ra, rb, witness, a: witness.clientFor(ra), b: witness.clientFor(rb) };
}

/** Start `p` and run the simulation for `ms`; what `p` settled with (or 'pending'). */
async function settle<T>(sim: Simulation, p: Promise<T>, ms = 50): Promise<T | 'pending' | Error> {
  let out: T | 'pending' | Error = 'pending';
  p.then(
    (v) => (out = v),
    (e: unknown) => (out = e as Error),
  );
  await sim.runFor(ms);
  return out;
}

describe('SimWitness (a model of @tandem/witness-etcd)', () => {
  it('grants one replica at a time; the holder renews by keepalives and holds while they get through', async () => {
    const { sim, a, b, witness } = world();
    expect(witnessOf(sim)).toBe(witness);
    expect(await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'startup' })))).toBe(true);
    expect(a.holds()).toBe(true);
    expect(await settle(sim, Promise.resolve(b.mayServeAlone({ nodeId: 'rb', epoch: 2, reason: 'takeover' })))).toBe(false);
    // Keepalives keep the grant alive far beyond one lease.
    await sim.runFor(5000);
    expect(a.holds()).toBe(true);
    expect(witness.liveOwner()?.nodeId).toBe('ra');
    expect(await settle(sim, Promise.resolve(b.mayServeAlone({ nodeId: 'rb', epoch: 2, reason: 'takeover' })))).toBe(false);
    expect(witness.violations).toEqual([]);
  });

  it('a holder cut off from the witness stops holding before the witness lets its grant go, then the other may win', async () => {
    const { sim, ra, a, b, witness } = world();
    await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'startup' })));
    await sim.runFor(500);
    sim.network.partition([ra], [witness.node]);
    const cutAt = sim.now;
    let lapsedAt: number | undefined;
    let grantedAt: number | undefined;
    while (grantedAt === undefined && sim.now < cutAt + 3000) {
      if (lapsedAt === undefined && !a.holds()) lapsedAt = sim.now;
      const r = await settle(sim, Promise.resolve(b.mayServeAlone({ nodeId: 'rb', epoch: 2, reason: 'takeover' })), 20);
      if (r === true) grantedAt = sim.now;
    }
    expect(lapsedAt).toBeDefined();
    expect(grantedAt).toBeDefined();
    // ra trusts its grant for at most 0.9 lease after its last acknowledged keepalive; the witness keeps it a full lease after the last one arrived.
    expect(lapsedAt!).toBeLessThanOrEqual(cutAt + HOLD_FRACTION * 1000 + 1);
    expect(grantedAt!).toBeGreaterThan(lapsedAt!);
    expect(grantedAt!).toBeGreaterThan(cutAt + 1000 - 1000 / 3);
    expect(a.holds()).toBe(false);
    // ra cannot reach the witness: its question fails (rejects) after the call timeout.
    const r = await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'renew' })), 150);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).name).toBe('WitnessUnreachableError');
    expect(witness.violations).toEqual([]);
  });

  it('refuses an epoch lower than one granted, and the same epoch to another replica (one epoch, one primary)', async () => {
    const { sim, a, b, witness } = world();
    await settle(sim, Promise.resolve(b.mayServeAlone({ nodeId: 'rb', epoch: 2, reason: 'takeover' })));
    await settle(sim, b.release({ nodeId: 'rb', epoch: 2 }));
    expect(witness.liveOwner()).toBeUndefined();
    // Nobody owns the key now, yet ra (which missed rb's epoch 2) may not serve at epoch 1 nor at 2.
    expect(await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'peer-faulty' })))).toBe(false);
    expect(await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 2, reason: 'takeover' })))).toBe(false);
    expect(await settle(sim, Promise.resolve(b.mayServeAlone({ nodeId: 'rb', epoch: 2, reason: 'renew' })))).toBe(true);
    await settle(sim, b.release({ nodeId: 'rb', epoch: 2 }));
    expect(await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 3, reason: 'takeover' })))).toBe(true);
  });

  it('a late release of an older grant does not give up a newer one', async () => {
    let overtaken = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const { sim, a, witness } = world(seed);
      await settle(sim, Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'startup' })));
      // The release is on its way while the replica asks again; delays are random, so the question may
      // overtake the release: the release of the older grant must then leave the newer one alone.
      const release = a.release({ nodeId: 'ra', epoch: 1 });
      const again = Promise.resolve(a.mayServeAlone({ nodeId: 'ra', epoch: 1, reason: 'peer-faulty' }));
      await settle(sim, Promise.all([release, again]));
      if (a.holds()) {
        overtaken++;
        expect(witness.liveOwner()?.nodeId).toBe('ra');
      }
      expect(witness.violations, `seed ${seed}`).toEqual([]);
    }
    expect(overtaken).toBeGreaterThan(0);
  });
});
