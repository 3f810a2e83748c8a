import { describe, expect, it } from 'vitest';
import { createMemoryNetwork } from '@tandem/transport';
import { createClient, createReplica, nodeEnv, type LogLevel } from '../src/index.js';
import { counter } from '../examples/counter.js';

describe('nodeEnv', () => {
  it('provides a monotonic clock, timers, randomness and runs a replicated pair', async () => {
    const lines: { level: LogLevel; event: string }[] = [];
    const env = nodeEnv({ network: createMemoryNetwork(), logger: { log: (level, event) => lines.push({ level, event }) } });
    const t0 = env.now();
    await new Promise<void>((r) => env.setTimer(5, r));
    expect(env.now()).toBeGreaterThan(t0);
    const r = env.random();
    expect(r).toBeGreaterThanOrEqual(0);
    expect(r).toBeLessThan(1);
    expect(env.randomBytes(16)).toHaveLength(16);
    let fired = false;
    env.setTimer(1, () => (fired = true)).cancel();
    await new Promise<void>((res) => env.setTimer(10, res));
    expect(fired).toBe(false);

    const a = createReplica({ service: counter, env, listen: 'mem://ne-a', peer: 'mem://ne-b', roleHint: 'primary' });
    const b = createReplica({ service: counter, env, listen: 'mem://ne-b', peer: 'mem://ne-a', roleHint: 'backup' });
    await a.start();
    await b.start();
    const c = createClient({ service: counter, env, servers: ['mem://ne-a', 'mem://ne-b'] });
    const rep = await c.call({ op: 'add', by: 3 });
    expect(rep.value).toBe(3);
    expect(Math.abs(rep.at - env.wallClock())).toBeLessThan(60_000); // ctx.time is the primary's wall clock
    expect(lines.some((l) => l.event === 'replica-start')).toBe(true); // startup logs config + timing bounds
    await c.close();
    await b.stop();
    await a.stop();
  });
});
