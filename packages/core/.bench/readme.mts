import { z } from 'zod';
import { createMemoryNetwork } from '@tandem/transport';
import { createClient, createReplica, defineService, nodeEnv } from '@tandem/core';

const counter = defineService({
  name: 'counter', request: z.object({ by: z.number() }), reply: z.number(),
  initialState: () => ({ n: 0 }), apply: (s, r) => (s.n += r.by),
  snapshot: (s) => s.n, restore: (n) => ({ n: n as number }),
});
const env = nodeEnv({ network: createMemoryNetwork() });   // use a TransportRegistry with tcp for real
const a = createReplica({ service: counter, env, listen: 'mem://a', peer: 'mem://b', roleHint: 'primary' });
const b = createReplica({ service: counter, env, listen: 'mem://b', peer: 'mem://a', roleHint: 'backup' });
await a.start(); await b.start();
const client = createClient({ service: counter, env, servers: ['mem://a', 'mem://b'] });
console.log(await client.call({ by: 2 })); // 2
await client.close(); await b.stop(); await a.stop();
