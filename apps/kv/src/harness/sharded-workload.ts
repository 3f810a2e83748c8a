/**
 * A checkable load over a sharded kv (`tandem-kv demo --shards N`, the shards test): N clients, each with
 * its own sharded client, incrementing counters of its own (`ctr/c<client>/<k>`) spread over the pairs by
 * the keys' hashes. Every counter is a writer of its own (concurrent with the client's other counters,
 * so a pair that is failing over holds up only the counters it holds), one call at a time, so each
 * acknowledged increment must return exactly the previous value + 1 and the final value must equal the
 * acknowledged count: a lost write shows as a lower value, a write applied twice as a jump or a higher
 * value. Failed calls are counted per shard (their outcome is unknown, and the checks allow for them).
 */
import { performance } from 'node:perf_hooks';
import { createShardedClient, nodeEnv, type ReplicationConfig, type ShardedClient, type ShardMap } from '@tandem/core';
import type { Transport } from '@tandem/transport';
import type { KvReply, KvRequest } from '../schema.js';
import { kvService } from '../service.js';
import { kvShardKey } from '../shards.js';

export interface ShardedWorkloadOptions {
  map: ShardMap;
  clients: number;
  /** Counters per client (default 16). */
  keysPerClient?: number;
  /** Stop each counter after this many increments (default: until stop()). */
  maxCallsPerCounter?: number;
  /** Pause between one counter's calls (default 1 ms). */
  pauseMs?: number;
  network: Transport;
  config?: Partial<ReplicationConfig>;
}

interface Counter {
  key: string;
  acked: number;
  unknown: number;
  /** The last value an acknowledged increment returned. */
  last: number;
  /** Acknowledged increments that did not return last + 1 although no earlier call failed. */
  jumps: number;
}

export interface ShardStats {
  ok: number;
  failed: number;
  /** Error names of failed calls (first 20). */
  errors: string[];
  /** [return time, epoch] of successful calls (ms on the workload's clock). */
  successes: [number, number][];
  maxLatencyMs: number;
  /** When the slowest call started (ms on the workload's clock). */
  maxLatencyAt: number;
}

export interface ShardedVerifyResult {
  acknowledged: number;
  unknown: number;
  lost: number;
  duplicated: number;
  details: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ShardedWorkload {
  readonly options: ShardedWorkloadOptions;
  readonly t0 = performance.now();
  readonly counters: Counter[][] = [];
  readonly shards = new Map<string, ShardStats>();
  readonly #clients: ShardedClient<KvRequest, KvReply>[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  #completed = 0;
  #failed = 0;

  constructor(options: ShardedWorkloadOptions) {
    this.options = options;
    for (const s of options.map.shards)
      this.shards.set(s.name, { ok: 0, failed: 0, errors: [], successes: [], maxLatencyMs: 0, maxLatencyAt: 0 });
    const n = options.keysPerClient ?? 16;
    for (let c = 0; c < options.clients; c++) {
      this.counters.push(Array.from({ length: n }, (_, k) => ({ key: `ctr/c${c}/${k}`, acked: 0, unknown: 0, last: 0, jumps: 0 })));
      this.#clients.push(
        createShardedClient({
          service: kvService,
          env: nodeEnv({ network: options.network }),
          shardKey: kvShardKey,
          map: options.map,
          clientOptions: options.config ? { config: options.config } : {},
        }),
      );
    }
  }

  /** ms since the workload was created. */
  now(): number {
    return performance.now() - this.t0;
  }
  get completed(): number {
    return this.#completed;
  }
  get failed(): number {
    return this.#failed;
  }

  /** The shard a key is routed to. */
  shardOf(key: string): string {
    return this.#clients[0]!.shardForKey(key);
  }

  /** Every counter key, grouped by the shard it is routed to. */
  keysByShard(): Map<string, string[]> {
    const out = new Map<string, string[]>([...this.shards.keys()].map((s) => [s, []]));
    for (const cs of this.counters) for (const c of cs) out.get(this.shardOf(c.key))!.push(c.key);
    return out;
  }

  start(): void {
    this.#running = true;
    this.#loops = this.counters.flatMap((cs, i) => cs.map((c) => this.#loop(i, c)));
  }

  /** Resolves when every counter has had its maxCallsPerCounter calls (or the load was stopped). */
  async finished(): Promise<void> {
    await Promise.all(this.#loops);
  }

  /** Stop issuing, wait for in-flight calls, let forwards drain, close the clients. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    await Promise.race([Promise.all(this.#clients.map((c) => c.drain())), sleep(2000)]);
    await Promise.all(this.#clients.map((c) => c.close()));
  }

  async #loop(index: number, ctr: Counter): Promise<void> {
    const client = this.#clients[index]!;
    const max = this.options.maxCallsPerCounter ?? Number.POSITIVE_INFINITY;
    const pause = this.options.pauseMs ?? 1;
    const stats = this.shards.get(this.shardOf(ctr.key))!;
    for (let i = 0; this.#running && i < max; i++) {
      const started = this.now();
      try {
        const r = await client.callWithInfo({ op: 'incr', key: ctr.key });
        const value = r.reply.kind === 'value' ? Number(r.reply.value) : Number.NaN;
        if (ctr.unknown === 0 && value !== ctr.last + 1) ctr.jumps++;
        ctr.acked++;
        ctr.last = value;
        const ret = this.now();
        stats.ok++;
        stats.successes.push([ret, r.epoch]);
        if (ret - started > stats.maxLatencyMs) {
          stats.maxLatencyMs = ret - started;
          stats.maxLatencyAt = started;
        }
        this.#completed++;
      } catch (err) {
        ctr.unknown++;
        stats.failed++;
        if (stats.errors.length < 20) stats.errors.push((err as Error).name);
        this.#failed++;
      }
      await sleep(pause);
    }
  }

  /** Compare the counters' values (read from each pair's serving replica) with what the clients were told. */
  verify(values: ReadonlyMap<string, string | null>): ShardedVerifyResult {
    const res: ShardedVerifyResult = { acknowledged: 0, unknown: 0, lost: 0, duplicated: 0, details: [] };
    const note = (s: string): void => {
      if (res.details.length < 20) res.details.push(s);
    };
    for (const cs of this.counters) {
      for (const c of cs) {
        res.acknowledged += c.acked;
        res.unknown += c.unknown;
        const v = Number(values.get(c.key) ?? '0');
        if (v < c.acked) {
          res.lost += c.acked - v;
          note(`${c.key} (shard ${this.shardOf(c.key)}) = ${v} < ${c.acked} acknowledged increments`);
        }
        if (v > c.acked + c.unknown) {
          res.duplicated += v - c.acked - c.unknown;
          note(`${c.key} (shard ${this.shardOf(c.key)}) = ${v} > ${c.acked + c.unknown} increments issued`);
        }
        if (c.jumps > 0) {
          res.duplicated += c.jumps;
          note(`${c.key}: ${c.jumps} acknowledged increments did not return the previous value + 1`);
        }
      }
    }
    return res;
  }

  /** Successful replies on `shard` returned in [from, to). */
  successesBetween(shard: string, from: number, to: number): number {
    return this.shards.get(shard)?.successes.filter(([t]) => t >= from && t < to).length ?? 0;
  }

  /** ms from `since` to the first successful reply on `shard` from an epoch newer than `oldEpoch`. */
  failoverMs(shard: string, since: number, oldEpoch: number): number | undefined {
    const first = this.shards.get(shard)?.successes.find(([t, e]) => t >= since && e > oldEpoch);
    return first === undefined ? undefined : first[0] - since;
  }
}
