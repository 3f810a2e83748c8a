/**
 * `tandem-kv load` (for fault tests and scripts): one client appending unique markers to a key, one
 * call at a time, reporting each step as a JSON line on stdout so a parent process knows exactly which
 * replies this client received before it died:
 *   {"event":"sent","i":3,"marker":"…"}  the request was handed to the network
 *   {"event":"acked","i":3,"marker":"…","seq":…,"epoch":…}
 *   {"event":"failed","i":3,"marker":"…","error":"ServiceUnavailableError"}
 * --die-after-send I   SIGKILL itself right after sending request I (a client crash after a request)
 * --hold               stay alive after the last call (until killed)
 */
import { createClient, nodeEnv } from '@tandem/core';
import { kvService } from '../service.js';
import { createTransportRegistry, UsageError } from '../transports.js';
import { parseServers } from './call.js';
import { parseJsonObjectFlag } from '../config-file.js';
import { CLIENT_SECURITY_FLAGS, clientSecurityFrom } from '../security-options.js';

type Parse = (
  args: string[],
  options: Record<string, { type: 'string' | 'boolean' }>,
) => { values: Record<string, string | boolean | undefined> };

export async function runLoad(args: string[], parse: Parse): Promise<number> {
  const { values } = parse(args, {
    servers: { type: 'string' },
    key: { type: 'string' },
    tag: { type: 'string' },
    count: { type: 'string' },
    'interval-ms': { type: 'string' },
    'die-after-send': { type: 'string' },
    hold: { type: 'boolean' },
    replication: { type: 'string' },
    ...CLIENT_SECURITY_FLAGS,
  });
  const sec = clientSecurityFrom(values);
  const servers = parseServers(values.servers as string | undefined);
  const key = values.key as string | undefined;
  if (!key) throw new UsageError('load needs --key KEY');
  const tag = (values.tag as string | undefined) ?? 'load';
  const count = Number(values.count ?? '10');
  const intervalMs = Number(values['interval-ms'] ?? '0');
  const dieAfter = values['die-after-send'] === undefined ? -1 : Number(values['die-after-send']);
  if (!Number.isInteger(count) || count < 0) throw new UsageError('--count must be a non-negative integer');
  const config = typeof values.replication === 'string' ? parseJsonObjectFlag('replication', values.replication) : {};
  const client = createClient({
    service: kvService,
    env: nodeEnv({ network: createTransportRegistry(sec.transport) }),
    servers,
    config,
    ...(sec.credentials ? { credentials: sec.credentials } : {}),
  });
  const line = (o: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  line({ event: 'ready', clientId: client.clientId });
  for (let i = 0; i < count; i++) {
    const marker = `${tag}.${i};`;
    const pending = client.callWithInfo({ op: 'append', key, value: marker });
    line({ event: 'sent', i, marker });
    if (i === dieAfter) {
      // Let the request leave the process, then crash without ever seeing the reply.
      setImmediate(() => process.kill(process.pid, 'SIGKILL'));
      await new Promise(() => undefined);
    }
    try {
      const r = await pending;
      line({ event: 'acked', i, marker, seq: r.seq, epoch: r.epoch });
    } catch (err) {
      line({ event: 'failed', i, marker, error: (err as Error).name });
    }
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  line({ event: 'done' });
  if (values.hold) await new Promise(() => undefined);
  await Promise.race([client.drain(), new Promise((r) => setTimeout(r, 1000))]);
  await client.close();
  return 0;
}
