import { createMemoryNetwork } from '@tandem/transport';
import { createClient, createReplica, nodeEnv } from '@tandem/core';
import { counter } from '../examples/counter.ts';

const env = nodeEnv({ network: createMemoryNetwork(), logLevel: 'info' });
const a = createReplica({ service: counter, env, listen: 'mem://a', peer: 'mem://b', roleHint: 'primary' });
const b = createReplica({ service: counter, env, listen: 'mem://b', peer: 'mem://a', roleHint: 'backup' });
await a.start();
await b.start();
const client = createClient({ service: counter, env, servers: ['mem://a', 'mem://b'] });
console.log(await client.call({ op: 'add', by: 5 })); // { value: 5, at: 1764… }
await client.close(); await b.stop(); await a.stop();
