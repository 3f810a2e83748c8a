/**
 * For your own serve program: print a @tandem/core replica's events as the JSON lines the chaos runner
 * reads (the same lines `tandem-kv serve --json` prints): `timing` with the computed bounds first, then
 * `role`, `takeover`, `step-down`, `peer-faulty`, `peer-joined`, `divergence`, `lost-entries`, …, and
 * `serving` once `start()` resolved (call `printServing`).
 */
import { computeTimingBounds, type Replica, type ReplicaEvent, type ReplicationConfig } from '@tandem/core';

/** Where the runner writes its log and report lines (default: stdout). */
export type LineWriter = (line: string) => void;

const stdoutWriter: LineWriter = (line) => void process.stdout.write(line + '\n');

/** One event as a JSON object: `type` becomes `event`, Errors become their message. */
export function replicaEventLine(e: ReplicaEvent, node?: string): Record<string, unknown> {
  const { type, ...fields } = e as { type: string } & Record<string, unknown>;
  const out: Record<string, unknown> = { event: type, ...(node !== undefined ? { node } : {}) };
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? v.message : v;
  return out;
}

/**
 * Print `timing` now and every later event of `replica`; returns the unsubscribe function.
 * `config` is the replication configuration the replica was given (for the bounds).
 */
export function printReplicaEvents(
  replica: Replica<unknown>,
  config: Partial<ReplicationConfig> = {},
  options: { node?: string; write?: LineWriter } = {},
): () => void {
  const write = options.write ?? stdoutWriter;
  write(
    JSON.stringify({
      event: 'timing',
      ...(options.node !== undefined ? { node: options.node } : {}),
      bounds: computeTimingBounds(config),
      config,
    }),
  );
  return replica.on((e) => write(JSON.stringify(replicaEventLine(e, options.node))));
}

/** Print `serving` with the replica's role and epoch (after `await replica.start()`). */
export function printServing(replica: Replica<unknown>, options: { node?: string; write?: LineWriter } = {}): void {
  const s = replica.status();
  (options.write ?? stdoutWriter)(
    JSON.stringify({
      event: 'serving',
      ...(options.node !== undefined ? { node: options.node } : {}),
      role: s.role,
      epoch: s.epoch,
      appliedSeq: s.appliedSeq,
      pid: process.pid,
    }),
  );
}
