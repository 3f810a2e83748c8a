// The worked example of docs/TESTING.md: simulate your own service with @tandem/testkit — a replicated
// counter, its primary crashed mid-run, the history checked against a sequential model.
import { createClient, createReplica, defineService } from '@tandem/core';
import { checkOperations, Simulation, type Model, type Operation } from '@tandem/testkit';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

// 1. The service under test (yours): a counter with `add` returning the new total.
const counter = defineService({
  name: 'counter',
  request: z.object({ add: z.number().int() }),
  reply: z.object({ total: z.number().int() }),
  initialState: () => ({ total: 0 }),
  apply: (state: { total: number }, req) => {
    state.total += req.add;
    return { total: state.total };
  },
  snapshot: (state) => ({ ...state }),
  restore: (snap) => ({ ...(snap as { total: number }) }),
});

// 2. Its sequential specification, for the linearizability checker.
type AddInput = { add: number; total?: number }; // total = what the caller saw (undefined: unknown)
const counterModel: Model<number, AddInput> = {
  init: () => 0,
  step: (total, input) => ({ ok: input.total === undefined || input.total === total + input.add, state: total + input.add }),
  hash: (total) => String(total),
};

async function simulate(seed: number) {
  // 3. One seeded world: two replica processes on two hosts, three client processes.
  const sim = new Simulation({ seed });
  const [a, b] = [sim.node('a'), sim.node('b')];
  const start = (node: typeof a, listen: string, peer: string, roleHint: 'primary' | 'backup') => {
    const replica = createReplica({ service: counter, env: node.env(), listen, peer, roleHint, nodeId: node.name });
    void replica.start();
    return replica;
  };
  const replicas = { a: start(a, 'sim://a', 'sim://b', 'primary'), b: start(b, 'sim://b', 'sim://a', 'backup') };
  await sim.runFor(50);

  // 4. A workload whose calls and returns are recorded on the virtual clock.
  const history: Operation<AddInput>[] = [];
  let running = 0;
  for (let c = 0; c < 3; c++) {
    const env = sim.node(`client${c}`).env();
    const client = createClient({ service: counter, env, servers: ['sim://a', 'sim://b'] });
    running++;
    void (async () => {
      for (let i = 0; i < 15; i++) {
        const op: { index: number; client: string; input: AddInput; call: number; return?: number } = {
          index: history.length,
          client: `client${c}`,
          input: { add: 1 + Math.floor(env.random() * 9) },
          call: sim.now,
        };
        history.push(op);
        const rep = await client.call({ add: op.input.add });
        op.input.total = rep.total;
        op.return = sim.now;
        await new Promise<void>((r) => env.setTimer(env.random() * 10, r));
      }
      running--;
    })();
  }

  // 5. A fault at a seeded moment: the primary process dies; later it restarts and rejoins as backup.
  await sim.runFor(20 + sim.random.next() * 80);
  a.crash();
  await sim.runFor(400);
  a.restart();
  replicas.a = start(a, 'sim://a', 'sim://b', 'backup');
  await sim.run({ stopWhen: () => running === 0, until: sim.now + 30_000 });
  await sim.runFor(200); // quiescence

  return { sim, history, replicas, running };
}

describe('simulating your own service (docs/TESTING.md)', () => {
  it('a replicated counter survives a primary crash: linearizable, converged, replayable', async () => {
    for (const seed of [1, 2, 3]) {
      const { sim, history, replicas, running } = await simulate(seed);
      expect(running).toBe(0);
      expect(history).toHaveLength(45);
      expect(checkOperations(counterModel, history).verdict).toBe('linearizable');
      const [sa, sb] = [replicas.a.status(), replicas.b.status()];
      expect(sb.role).toBe('primary'); // b took over; a rejoined as its backup
      expect(sa.role).toBe('backup');
      expect(sa.stateDigest).toBe(sb.stateDigest);
      expect((replicas.b.state as { total: number }).total).toBe(history.reduce((s, o) => s + o.input.add, 0));
      const again = await simulate(seed);
      expect(again.sim.scheduler.traceHash).toBe(sim.scheduler.traceHash);
    }
  });

  it('the model rejects a counter that lost an acknowledged add', () => {
    const ops: Operation<AddInput>[] = [
      { index: 0, client: 'x', input: { add: 5, total: 5 }, call: 0, return: 1 },
      { index: 1, client: 'y', input: { add: 2, total: 2 }, call: 2, return: 3 }, // the 5 was lost
    ];
    expect(checkOperations(counterModel, ops).verdict).toBe('not-linearizable');
  });
});
