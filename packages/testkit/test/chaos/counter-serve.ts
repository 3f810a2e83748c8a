/**
 * A user's own serve program, as the chaos runner expects one: a replicated counter on @tandem/core that
 * prints its events as JSON lines (`printReplicaEvents`) and answers `{type:'status'}` over IPC.
 *   node --conditions=@tandem/source --import tsx counter-serve.ts --listen URL --peer URL --role R --node-id N [--replication JSON]
 */
import { parseArgs } from 'node:util';
import { createReplica, nodeEnv, type ReplicationConfig } from '@tandem/core';
import { TransportRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { printReplicaEvents, printServing } from '@tandem/testkit/chaos';
import { counterService } from './counter-service.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    peer: { type: 'string' },
    role: { type: 'string' },
    'node-id': { type: 'string' },
    replication: { type: 'string' },
  },
});
const config = JSON.parse(values.replication ?? '{}') as Partial<ReplicationConfig>;
const node = values['node-id'] ?? values.listen!;
const replica = createReplica({
  service: counterService,
  env: nodeEnv({ network: new TransportRegistry([tcp()]), logLevel: 'warn', logFields: { node } }),
  listen: values.listen!,
  peer: values.peer!,
  roleHint: (values.role ?? 'auto') as 'primary' | 'backup' | 'auto',
  nodeId: node,
  config,
});
printReplicaEvents(replica, config, { node });
if (typeof process.send === 'function') {
  process.on('message', (m: { type?: string; id?: number }) => {
    if (m?.type === 'status') process.send?.({ id: m.id, status: replica.status() });
  });
  process.channel?.unref();
  process.on('disconnect', () => process.exit(0));
}
const stop = (): void => void replica.stop().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await replica.start();
printServing(replica, { node });
