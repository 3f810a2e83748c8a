/**
 * An operator's questions to one replica (docs/PROTOCOL.md, "Operator actions"): its status, and — when it
 * reports `blocked` — `promote`: serve now from what it holds, accepting the loss of acknowledged writes
 * it does not hold. The connection is an `admin` one, authenticated with the cluster key like a peer's.
 */
import { KeyRing } from './auth.js';
import { codec } from './codec.js';
import type { Env } from './env.js';
import { ProtocolViolationError } from './errors.js';
import { AuthenticationError, dialHandshake } from './handshake.js';
import type { StatusReply } from './messages.js';

/** Options of replicaStatus and promoteReplica: Env, service name, cluster keys, timeout, node id. */
export interface OperatorOptions {
  env: Env;
  /** The service's name (checked by the replica). */
  service: string;
  /** The cluster key(s) when the replicas have one (they refuse admin connections without it). */
  clusterKeys?: readonly Uint8Array[];
  /** Give up after this long (default 5 000 ms). */
  timeoutMs?: number;
  /** Name in the replica's logs (default 'operator'). */
  nodeId?: string;
}

async function ask(address: string, message: 'status' | 'promote', o: OperatorOptions): Promise<StatusReply> {
  const timeoutMs = o.timeoutMs ?? 5_000;
  const deadline = o.env.now() + timeoutMs;
  const conn = await o.env.network.dial(address, { timeoutMs });
  try {
    const auth = o.clusterKeys !== undefined && o.clusterKeys.length > 0 ? { ring: KeyRing.derive(o.clusterKeys, 'peer-auth') } : undefined;
    const it = await dialHandshake(
      conn,
      { t: 'hello', kind: 'admin', service: o.service, nodeId: o.nodeId ?? 'operator', epoch: 0 },
      auth,
      o.env,
      timeoutMs,
    );
    await conn.send(codec.encode(message === 'status' ? { t: 'status' } : { t: 'promote', acceptLoss: true }));
    for (;;) {
      let timer: { cancel(): void } | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = o.env.setTimer(Math.max(1, deadline - o.env.now()), () => r('timeout'))));
      const next = await Promise.race([it.next(), timeout]).finally(() => timer?.cancel());
      if (next === 'timeout') throw new AuthenticationError('handshake-timeout', `${address} did not answer within ${timeoutMs} ms`);
      if (next.done) throw new ProtocolViolationError(`${address} closed the connection without an answer`);
      const m = codec.decode(next.value);
      if (m.t === 'authRefused') throw new AuthenticationError(m.code, `${address} refused: ${m.reason}`);
      if (m.t === 'statusReply') return m;
    }
  } finally {
    void conn.close('operator done').catch(() => undefined);
  }
}

/** A replica's status (role, epoch, seq, and why it is blocked, if it is). */
export function replicaStatus(address: string, options: OperatorOptions): Promise<StatusReply> {
  return ask(address, 'status', options);
}

/** Make a blocked replica serve from what it holds; resolves with its status afterwards. */
export function promoteReplica(address: string, options: OperatorOptions): Promise<StatusReply> {
  return ask(address, 'promote', options);
}
