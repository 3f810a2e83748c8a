/**
 * The chaos runner's binding to tandem-kv: replicas are `tandem-kv serve --json` / `tandem-kv rejoin`
 * child processes (apps/kv/dist, IPC for status and reads), the load is the kv harness Workload (appends
 * of unique markers, counter increments, puts and gets), verified by its lost/duplicated accounting and
 * by @tandem/testkit's linearizability checker.
 */
import { performance } from 'node:perf_hooks';
import type { ReplicationConfig } from '@tandem/core';
// The runner and the checker from their sources (like tools/bench-* import apps/kv): the command runs
// without the @tandem/source condition, so @tandem/core & co. resolve to their builds — the same code the
// replica processes run.
import {
  freePort,
  type ChaosTarget,
  type ChaosWorkload,
  type FinalState,
  type WorkloadContext,
  type WorkloadVerdict,
} from '../../packages/testkit/src/chaos/index.js';
import { checkKvHistory } from '../../packages/testkit/src/linearizability/check.js';
import { builtCliPath } from '../../apps/kv/src/harness/replica-process.js';
import { Workload } from '../../apps/kv/src/harness/workload.js';
import { addressFor, createTransportRegistry } from '../../apps/kv/src/transports.js';

export interface KvTargetOptions {
  /** tcp (default) | ws | zmq */
  transport?: string;
  /** `--replication JSON` for every replica, and the clients' configuration. */
  replication?: Partial<ReplicationConfig>;
  /** Appended to every serve / rejoin command line. */
  extraServeArgs?: readonly string[];
  /** The replicas' protocol log level on their stderr (default 'warn'; the tail goes into stall records). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Linearizability search budget per key (default 5 000 000 steps). */
  maxSteps?: number;
  /** Progress lines (the check's duration). */
  log?: (line: string) => void;
}

export function kvChaosTarget(options: KvTargetOptions = {}): ChaosTarget {
  const transport = options.transport ?? 'tcp';
  const replication = options.replication ?? {};
  const cli = builtCliPath();
  return {
    name: 'tandem-kv',
    async addresses() {
      return [addressFor(transport, '127.0.0.1', await freePort()), addressFor(transport, '127.0.0.1', await freePort())] as const;
    },
    launch(spec) {
      const rejoining = spec.how === 'rejoin';
      return {
        command: process.execPath,
        args: [
          cli,
          rejoining ? 'rejoin' : 'serve',
          '--listen',
          spec.listen,
          '--peer',
          spec.peer,
          ...(rejoining ? [] : ['--role', spec.role]),
          '--node-id',
          spec.name,
          '--json',
          '--log-level',
          options.logLevel ?? 'warn',
          '--replication',
          JSON.stringify(replication),
          ...(options.extraServeArgs ?? []),
        ],
        ipc: true,
      };
    },
    workload: (ctx) => new KvChaosWorkload(ctx, transport, replication, options),
  };
}

class KvChaosWorkload implements ChaosWorkload {
  readonly w: Workload;
  readonly #options: KvTargetOptions;

  constructor(ctx: WorkloadContext, _transport: string, replication: Partial<ReplicationConfig>, options: KvTargetOptions) {
    this.#options = options;
    let offset = 0; // workload clock → run clock
    this.w = new Workload({
      servers: [ctx.servers[0], ctx.servers[1]],
      clients: ctx.clients,
      network: createTransportRegistry(),
      config: replication,
      onResult: (r) =>
        ctx.record({
          client: r.client,
          call: r.call + offset,
          return: r.return + offset,
          ok: r.ok,
          ...(r.epoch !== undefined ? { epoch: r.epoch } : {}),
        }),
    });
    offset = this.w.t0 - ctx.origin;
    this.#offset = offset;
  }
  readonly #offset: number;

  start(): void {
    this.w.start();
  }

  /** When (run clock) the acknowledged appends missing from `values` were acknowledged. */
  #lostWindows(keys: string[], values: readonly (string | null)[]): { from: number; to: number; count: number }[] {
    const found = new Set<string>();
    keys.forEach((k, i) => {
      if (k.startsWith('ctr/')) return;
      for (const m of (values[i] ?? '').split(';')) if (m.length > 0) found.add(m + ';');
    });
    const times: number[] = [];
    for (const h of this.w.history) {
      if (h.op === 'append' && h.return !== undefined && h.value !== null && !found.has(h.value)) times.push(h.return + this.#offset);
    }
    return clusters(times);
  }

  stop(): Promise<void> {
    return this.w.stop();
  }

  async verify(final: FinalState): Promise<WorkloadVerdict> {
    if (!final.serving) throw new Error('no replica is serving: the state cannot be read');
    const keys = this.w.keysToRead();
    const m = await final.serving.ask({ type: 'read', keys }, 10_000);
    const values = m.values as (string | null)[];
    const v = this.w.verify(values);
    const t = performance.now();
    const lin = checkKvHistory(this.w.history, { maxSteps: this.#options.maxSteps ?? 5_000_000 });
    this.#options.log?.(
      `linearizability: ${lin.verdict} over ${lin.operations} operations on ${lin.keys.length} keys in ${Math.round(performance.now() - t)} ms`,
    );
    return {
      lost: v.lost,
      duplicated: v.duplicated,
      linearizable: lin.verdict === 'linearizable',
      ...(v.lost > 0 ? { lostAt: this.#lostWindows(keys, values) } : {}),
      linearizability: {
        verdict: lin.verdict,
        operations: lin.operations,
        ...(lin.failure?.explanation ? { explanation: shortenExplanation(lin.failure.explanation) } : {}),
      },
      extra: {
        acknowledgedWrites: v.acknowledged,
        unknownWrites: v.unknown,
        unexpectedMarkers: v.unexpected,
        staleReads: v.staleReads,
        servingStatus: m.status,
      },
      details: v.details,
    };
  }
}

/** Windows of run time (ms) in which the lost appends were acknowledged: clusters split at 500 ms gaps. */
function clusters(times: number[]): { from: number; to: number; count: number }[] {
  const out: { from: number; to: number; count: number }[] = [];
  for (const t of times.sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && t - last.to <= 500) {
      last.to = t;
      last.count++;
    } else out.push({ from: t, to: t, count: 1 });
  }
  return out.map((c) => ({ from: Math.round(c.from), to: Math.round(c.to), count: c.count }));
}

/**
 * A checker explanation cut to what one reads: the verdict line, the last operations of the longest
 * prefix, and the operations that could not be placed; long values keep their ends.
 */
export function shortenExplanation(text: string, keepPrefix = 6, keepStuck = 8): string {
  const cut = (line: string): string =>
    line.length > 240 ? `${line.slice(0, 80)} …(${line.length - 200} chars)… ${line.slice(-120)}` : line;
  const lines = text.split('\n');
  const stuckAt = lines.findIndex((l) => l.startsWith('completed operations that could not be placed'));
  if (stuckAt < 0) return lines.slice(0, 20).map(cut).join('\n');
  const prefix = lines.slice(1, stuckAt);
  const stuck = lines.slice(stuckAt + 1);
  return [
    cut(lines[0]!),
    ...(prefix.length > keepPrefix ? [`  … ${prefix.length - keepPrefix} earlier operations …`] : []),
    ...prefix.slice(-keepPrefix).map(cut),
    lines[stuckAt]!,
    ...stuck.slice(0, keepStuck).map(cut),
    ...(stuck.length > keepStuck ? [`  … ${stuck.length - keepStuck} more`] : []),
  ].join('\n');
}
