/** Runs examples/counter.ts (the service in docs/WRITING-A-SERVICE.md) through a pair with a failover. */
import { describe, expect, it } from 'vitest';
import { counter } from '../examples/counter.js';
import { createClient, createReplica } from '../src/index.js';
import { TestCluster, until } from './helpers/fault-net.js';
import { FAST } from './helpers/setup.js';

describe('examples/counter.ts', () => {
  it('counts across a primary failure', async () => {
    const cluster = new TestCluster();
    const a = createReplica({
      service: counter,
      env: cluster.node('a').env,
      listen: 'mem://ca',
      peer: 'mem://cb',
      roleHint: 'primary',
      config: FAST,
    });
    const b = createReplica({
      service: counter,
      env: cluster.node('b').env,
      listen: 'mem://cb',
      peer: 'mem://ca',
      roleHint: 'backup',
      config: FAST,
    });
    await a.start();
    await b.start();
    const client = createClient({ service: counter, env: cluster.node('c').env, servers: ['mem://ca', 'mem://cb'], config: FAST });
    await client.call({ op: 'add', by: 5 });
    await client.call({ op: 'add', by: 2 });
    await expect(client.call({ op: 'add', by: -100 })).rejects.toMatchObject({ name: 'ApplicationError', remoteName: 'RangeError' });
    cluster.node('a').crash();
    const r = await client.call({ op: 'get' });
    expect(r.value).toBe(7);
    await until(() => b.status().role === 'solo-primary', 'b serving');
    const roll = await client.call({ op: 'roll' });
    expect(roll.value).toBeGreaterThanOrEqual(1);
    expect(roll.value).toBeLessThanOrEqual(6);
    await client.close();
    await b.stop();
    await a.stop();
  });
});
