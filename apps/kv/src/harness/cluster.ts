/**
 * A primary/backup pair of `tandem-kv serve` child processes on loopback, with the helpers the demo,
 * the fault tests and the benchmark share: start both, wait for roles, restart a killed one, compare
 * digests once both have applied the same sequence.
 */
import type { ReplicaStatus, ReplicationConfig } from '@tandem/core';
import { addressFor } from '../transports.js';
import { freePort } from './free-port.js';
import { ReplicaProcess, type ReplicaProcessOptions } from './replica-process.js';

export interface PairOptions {
  transport?: string;
  replication?: Partial<ReplicationConfig>;
  logLevel?: ReplicaProcessOptions['logLevel'];
  /** Addresses each replica dials as its peer (default: the other's listen address); e.g. a relay. */
  peerOverride?: { a?: string; b?: string };
  onStderr?: (node: string, line: string) => void;
  startTimeoutMs?: number;
  /** Ports to listen on (default: two free ports). */
  ports?: [number, number];
  /** More serve/rejoin arguments for both replicas (e.g. --cluster-key-file FILE). */
  extraArgs?: readonly string[];
}

export class ReplicaPair {
  readonly options: PairOptions;
  readonly addresses: [string, string];
  readonly ports: [number, number];
  a: ReplicaProcess;
  b: ReplicaProcess;

  private constructor(options: PairOptions, ports: [number, number]) {
    this.options = options;
    const t = options.transport ?? 'tcp';
    this.ports = ports;
    this.addresses = [addressFor(t, '127.0.0.1', ports[0]), addressFor(t, '127.0.0.1', ports[1])];
    this.a = undefined as unknown as ReplicaProcess;
    this.b = undefined as unknown as ReplicaProcess;
  }

  /** Start `a` as primary, wait until it serves, then `b` as backup and wait until it has joined. */
  static async start(options: PairOptions = {}): Promise<ReplicaPair> {
    const pair = new ReplicaPair(options, options.ports ?? [await freePort(), await freePort()]);
    const timeout = options.startTimeoutMs ?? 10_000;
    pair.a = pair.spawn('a', 'primary');
    try {
      await pair.a.waitForRole(['primary', 'solo-primary'], timeout);
      pair.b = pair.spawn('b', 'backup');
      await pair.b.waitForRole(['backup'], timeout);
      await pair.a.waitForRole(['primary'], timeout);
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  /** Spawn (or re-spawn, after a kill) replica `which` on its fixed address. */
  spawn(
    which: 'a' | 'b',
    role: 'primary' | 'backup' | 'auto',
    extra: Pick<ReplicaProcessOptions, 'command' | 'stateTransfer'> = {},
  ): ReplicaProcess {
    const i = which === 'a' ? 0 : 1;
    const peer = this.options.peerOverride?.[which] ?? this.addresses[1 - i]!;
    const onStderr = this.options.onStderr;
    const p = ReplicaProcess.spawn({
      listen: this.addresses[i]!,
      peer,
      role,
      nodeId: which,
      replication: this.options.replication,
      logLevel: this.options.logLevel ?? 'warn',
      ...(this.options.extraArgs ? { extraArgs: this.options.extraArgs } : {}),
      ...extra,
      ...(onStderr ? { onStderr: (line: string) => onStderr(which, line) } : {}),
    });
    if (which === 'a') this.a = p;
    else this.b = p;
    return p;
  }

  /** The replica currently serving as (solo) primary, asked over IPC; undefined if none answers. */
  async serving(): Promise<ReplicaProcess | undefined> {
    for (const p of [this.a, this.b]) {
      if (!p || p.hasExited) continue;
      try {
        const s = await p.status(1000);
        if (s.role === 'primary' || s.role === 'solo-primary') return p;
      } catch {
        /* paused or gone */
      }
    }
    return undefined;
  }

  /** Poll until one replica is 'primary' (with a backup, not solo) and the other 'backup' in the same epoch. */
  async healthy(timeoutMs = 5000): Promise<{ primary: ReplicaProcess; backup: ReplicaProcess }> {
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    while (Date.now() < deadline) {
      try {
        const [sa, sb] = await Promise.all([this.a.status(1000), this.b.status(1000)]);
        seen = `a ${sa.role}@${sa.epoch}, b ${sb.role}@${sb.epoch}`;
        if (sa.epoch === sb.epoch && sa.role === 'primary' && sb.role === 'backup') return { primary: this.a, backup: this.b };
        if (sa.epoch === sb.epoch && sb.role === 'primary' && sa.role === 'backup') return { primary: this.b, backup: this.a };
      } catch (err) {
        seen = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`replica pair not healthy (primary + backup) within ${timeoutMs} ms: ${seen}`);
  }

  /** Poll both replicas until they report the same appliedSeq and state digest (or time runs out). */
  async convergedDigests(timeoutMs = 5000): Promise<{ equal: boolean; a?: ReplicaStatus; b?: ReplicaStatus }> {
    const deadline = Date.now() + timeoutMs;
    let last: { equal: boolean; a?: ReplicaStatus; b?: ReplicaStatus } = { equal: false };
    while (Date.now() < deadline) {
      try {
        const [sa, sb] = await Promise.all([this.a.status(1000), this.b.status(1000)]);
        last = { equal: sa.appliedSeq === sb.appliedSeq && sa.stateDigest === sb.stateDigest, a: sa, b: sb };
        if (last.equal) return last;
      } catch {
        /* retry */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return last;
  }

  async stop(): Promise<void> {
    await Promise.all([this.a, this.b].filter((p) => p !== undefined).map((p) => p.stop()));
  }
}
