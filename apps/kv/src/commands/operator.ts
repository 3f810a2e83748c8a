/**
 * `tandem-kv status --servers A,B` and `tandem-kv promote --server A --accept-loss`: an operator's view of
 * each replica (role, epoch, seq, and why it is blocked), and the action for a replica that cannot prove
 * nothing acknowledged is lost (docs/PROTOCOL.md, "Operator actions"). Both connect as `admin`, with the
 * cluster key when the replicas have one.
 */
import { nodeEnv, promoteReplica, replicaStatus, type StatusReply } from '@tandem/core';
import { KV_SERVICE_NAME } from '../service.js';
import { createTransportRegistry } from '../transports.js';
import type { ReplicaSecuritySettings } from '../security-options.js';

export interface OperatorCliOptions {
  security: ReplicaSecuritySettings;
  timeoutMs: number;
  json: boolean;
}

function opts(o: OperatorCliOptions): Parameters<typeof replicaStatus>[1] {
  return {
    env: nodeEnv({ network: createTransportRegistry(o.security.transport) }),
    service: KV_SERVICE_NAME,
    timeoutMs: o.timeoutMs,
    ...(o.security.security.clusterKeys ? { clusterKeys: o.security.security.clusterKeys } : {}),
  };
}

export function describeStatus(address: string, s: StatusReply): string {
  const line = `${address}  ${s.nodeId}  ${s.role}  epoch ${s.epoch}  seq ${s.appliedSeq}${s.follow !== undefined ? `  covering its dropped backup from seq ${s.follow}` : ''}`;
  if (s.blocked === undefined) return line;
  const range = `${s.blocked.mayLoseFrom}${s.blocked.mayLoseTo !== undefined ? `–${s.blocked.mayLoseTo}` : '–?'}`;
  return `${line}\n  BLOCKED: ${s.blocked.reason}\n  promoting it (tandem-kv promote --server ${address} --accept-loss) loses any acknowledged writes in seq ${range}`;
}

/** Exit code: 0 when every replica answered and none is blocked; 1 blocked; 3 one did not answer. */
export async function runStatus(servers: readonly string[], o: OperatorCliOptions): Promise<number> {
  let code = 0;
  const rows: Record<string, unknown>[] = [];
  for (const address of servers) {
    try {
      const s = await replicaStatus(address, opts(o));
      if (s.blocked !== undefined && code === 0) code = 1;
      rows.push({ address, ...s });
      if (!o.json) process.stdout.write(describeStatus(address, s) + '\n');
    } catch (err) {
      code = 3;
      rows.push({ address, error: (err as Error).message });
      if (!o.json) process.stdout.write(`${address}  no answer: ${(err as Error).message}\n`);
    }
  }
  if (o.json) process.stdout.write(JSON.stringify({ replicas: rows }) + '\n');
  return code;
}

export async function runPromote(address: string, o: OperatorCliOptions): Promise<number> {
  const before = await replicaStatus(address, opts(o));
  if (before.role === 'primary' || before.role === 'solo-primary') {
    process.stderr.write(`tandem-kv: ${address} already serves (${before.role}, epoch ${before.epoch}); nothing to do\n`);
    return 0;
  }
  if (before.role === 'backup') {
    process.stderr.write(
      `tandem-kv: ${address} is a backup: it takes over by itself when its primary fails; promote is for a replica that reports blocked\n`,
    );
    return 1;
  }
  const after = await promoteReplica(address, opts(o));
  if (o.json) process.stdout.write(JSON.stringify({ before, after }) + '\n');
  else process.stdout.write(`${describeStatus(address, after)}\n`);
  return after.role === 'solo-primary' ? 0 : 1;
}
