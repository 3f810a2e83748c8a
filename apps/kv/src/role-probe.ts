/**
 * Ask a running replica for its role over the network (the core `status` message, the same one the
 * replicas use to probe each other): dial, say hello as a client, send `status`, read `statusReply`.
 */
import type { StatusReply } from '@tandem/core';
import { codec } from '@tandem/core/internal';
import type { TransportRegistry } from '@tandem/transport';
import { KV_SERVICE_NAME } from './service.js';

/** The replica's status reply, or undefined when it does not answer within `timeoutMs`. */
export async function probeReplica(network: TransportRegistry, address: string, timeoutMs = 1000): Promise<StatusReply | undefined> {
  let conn;
  try {
    conn = await network.dial(address, { timeoutMs });
  } catch {
    return undefined;
  }
  const timer = setTimeout(() => void conn.close('probe timeout'), timeoutMs);
  try {
    await conn.send(codec.encode({ t: 'hello', kind: 'client', service: KV_SERVICE_NAME, nodeId: `probe-${process.pid}`, epoch: 0 }));
    await conn.send(codec.encode({ t: 'status' }));
    for await (const bytes of conn) {
      const m = codec.decode(bytes);
      if (m.t === 'statusReply') return m;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    await conn.close('probe done');
  }
}
