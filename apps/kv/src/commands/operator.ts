/**
 * `tandem-kv status --servers A,B` and `tandem-kv promote --server A --accept-loss`: an operator's view of
 * each replica (role, epoch, seq, backup lag, unacknowledged entries, clients, uptime, version, the failover
 * bounds, and why it is blocked), and the action for a replica that cannot prove
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
  let line = `${address}  ${s.nodeId}  ${s.role}  epoch ${s.epoch}  seq ${s.appliedSeq}${s.follow !== undefined ? `  covering its dropped backup from seq ${s.follow}` : ''}`;
  const d = s.detail;
  if (d !== undefined) {
    const lag = d.backupLag !== undefined ? `backup lag ${d.backupLag.seq} entries / ${Math.round(d.backupLag.ms)} ms` : 'backup lag -';
    line += `\n  ${lag}  unacked ${d.unackedEntries}  clients ${d.clientsConnected}  uptime ${formatUptime(d.uptimeMs)}  version ${d.version}`;
    const b = d.bounds;
    line += `\n  failover bound: process crash ≤ ${b.processCrashFailoverMs} ms, host crash ≤ ${b.worstCaseFailoverMs} ms (takeover ${b.takeoverMs} ms)${b.worstCaseFailoverAfterSoloMs !== undefined ? `, after a solo primary ≤ ${b.worstCaseFailoverAfterSoloMs} ms` : ''}`;
  }
  if (s.witness !== undefined) line += `\n  witness: ${s.witness}`;
  if (s.blocked === undefined) return line;
  const range = `${s.blocked.mayLoseFrom}${s.blocked.mayLoseTo !== undefined ? `–${s.blocked.mayLoseTo}` : '–?'}`;
  return `${line}\n  BLOCKED: ${s.blocked.reason}\n  promoting it (tandem-kv promote --server ${address} --accept-loss) loses any acknowledged writes in seq ${range}`;
}

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** One replica's row of `status --json`: the statusReply with its operator detail flattened in. */
export function statusRow(address: string, s: StatusReply): Record<string, unknown> {
  const { t: _t, detail, ...rest } = s;
  return { address, ...rest, ...(detail ?? {}) };
}

/** Exit code: 0 when every replica answered and none is blocked; 1 a replica is blocked, or only some
 * answered; 3 no replica answered. */
export async function runStatus(servers: readonly string[], o: OperatorCliOptions): Promise<number> {
  let answered = 0;
  let blocked = false;
  const rows: Record<string, unknown>[] = [];
  const results = await Promise.allSettled(servers.map((address) => replicaStatus(address, opts(o))));
  servers.forEach((address, i) => {
    const r = results[i]!;
    if (r.status === 'fulfilled') {
      answered++;
      if (r.value.blocked !== undefined) blocked = true;
      rows.push(statusRow(address, r.value));
      if (!o.json) process.stdout.write(describeStatus(address, r.value) + '\n');
    } else {
      const message = (r.reason as Error).message;
      rows.push({ address, error: message });
      if (!o.json) process.stdout.write(`${address}  no answer: ${message}\n`);
    }
  });
  if (o.json) process.stdout.write(JSON.stringify({ replicas: rows }) + '\n');
  if (answered === 0) return 3;
  return blocked || answered < servers.length ? 1 : 0;
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
