/**
 * A checkable load: N concurrent clients, each looping over writes whose correct final effect is known
 * (appends of unique markers, counter increments), plus reads. Afterwards `verify` reads the serving
 * replica's state and counts acknowledged writes that are missing (lost) and writes applied more than
 * once (duplicated). It also records an operation history for the linearizability checker.
 */
import { performance } from 'node:perf_hooks';
import { createClient, nodeEnv, type Client, type ReplicationConfig } from '@tandem/core';
import type { Transport } from '@tandem/transport';
import type { KvReply, KvRequest } from '../schema.js';
import { kvService } from '../service.js';

/** One operation in the `--history` format (@tandem/testkit kv-history): times in ms. */
export interface HistoryOp {
  client: number;
  op: 'get' | 'put' | 'append';
  key: string;
  value: string | null;
  call: number;
  return?: number;
}

export type Outcome = 'acked' | 'unknown';

interface ClientRecord {
  index: number;
  /** marker → outcome, for appends to the client's own log and to shared keys. */
  markers: Map<string, Outcome>;
  ackedIncrs: number;
  unknownIncrs: number;
  /** Markers of this client's log the client has seen acknowledged (for read-your-writes). */
  ackedLog: string[];
  staleReads: number;
  /** [returnTime, epoch] of successful calls. */
  successes: [number, number][];
}

export interface WorkloadOptions {
  servers: [string, string];
  clients: number;
  network: Transport;
  config?: Partial<ReplicationConfig>;
  /** Shared keys all clients append to (default 4). */
  sharedKeys?: number;
  /** Record the history (default true). */
  history?: boolean;
  /** Client `i`'s two servers, when not `servers` (e.g. a client that reaches one replica through a relay). */
  serversFor?: (client: number) => [string, string] | undefined;
  /** Called when each call finishes (times on this workload's clock, `now()`; epoch of the answering replica). */
  onResult?: (result: { client: number; call: number; return: number; ok: boolean; epoch?: number }) => void;
}

export interface VerifyResult {
  acknowledged: number;
  unknown: number;
  lost: number;
  duplicated: number;
  /** Markers found that no client wrote (corruption). */
  unexpected: number;
  staleReads: number;
  details: string[];
}

export const SHARED_PREFIX = 'shared/';
export const logKey = (c: number): string => `log/c${c}`;
export const ctrKey = (c: number): string => `ctr/c${c}`;
export const regKey = (c: number): string => `reg/c${c}`;

export class Workload {
  readonly options: WorkloadOptions;
  readonly history: HistoryOp[] = [];
  readonly records: ClientRecord[] = [];
  readonly t0 = performance.now();
  #clients: Client<KvRequest, KvReply>[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  #completed = 0;
  #failed = 0;

  constructor(options: WorkloadOptions) {
    this.options = options;
    for (let i = 0; i < options.clients; i++) {
      this.records.push({ index: i, markers: new Map(), ackedIncrs: 0, unknownIncrs: 0, ackedLog: [], staleReads: 0, successes: [] });
      this.#clients.push(
        createClient({
          service: kvService,
          env: nodeEnv({ network: options.network }),
          servers: options.serversFor?.(i) ?? options.servers,
          config: options.config,
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

  start(): void {
    this.#running = true;
    this.#loops = this.records.map((r) => this.#loop(r));
  }

  /** Stop issuing, wait for in-flight calls, let forwards drain, close the clients. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    await Promise.race([Promise.all(this.#clients.map((c) => c.drain())), new Promise((r) => setTimeout(r, 2000))]);
    await Promise.all(this.#clients.map((c) => c.close()));
  }

  async #call(
    rec: ClientRecord,
    req: KvRequest,
    hist: Omit<HistoryOp, 'call' | 'return' | 'client'> | undefined,
  ): Promise<KvReply | undefined> {
    const call = this.now();
    const h: HistoryOp | undefined = hist && this.options.history !== false ? { client: rec.index, ...hist, call } : undefined;
    if (h) this.history.push(h);
    try {
      const r = await this.#clients[rec.index]!.callWithInfo(req);
      const ret = this.now();
      if (h) {
        h.return = ret;
        if (h.op === 'get') h.value = r.reply.kind === 'value' ? r.reply.value : null;
      }
      rec.successes.push([ret, r.epoch]);
      this.#completed++;
      this.options.onResult?.({ client: rec.index, call, return: ret, ok: true, epoch: r.epoch });
      return r.reply;
    } catch (err) {
      this.#failed++;
      this.options.onResult?.({ client: rec.index, call, return: this.now(), ok: false });
      if ((err as Error).name === 'ApplicationError' && (err as { remoteName?: string }).remoteName !== 'ReplyExpiredError') {
        // A deterministic refusal: the operation was not applied, so it leaves the history (recording it
        // as a completed put/append would make the checker expect its effect).
        if (h) this.history.splice(this.history.lastIndexOf(h), 1);
        return undefined;
      }
      return undefined; // unknown outcome: the history op keeps no `return`
    }
  }

  async #loop(rec: ClientRecord): Promise<void> {
    const c = rec.index;
    const shared = this.options.sharedKeys ?? 4;
    for (let round = 0; this.#running; round++) {
      const marker = `c${c}.${round};`;
      rec.markers.set(marker, 'unknown');
      const a = await this.#call(rec, { op: 'append', key: logKey(c), value: marker }, { op: 'append', key: logKey(c), value: marker });
      if (a) {
        rec.markers.set(marker, 'acked');
        rec.ackedLog.push(marker);
      }
      if (!this.#running) break;
      const sharedMarker = `s${c}.${round};`;
      const sk = `${SHARED_PREFIX}${round % shared}`;
      rec.markers.set(sharedMarker, 'unknown');
      if (await this.#call(rec, { op: 'append', key: sk, value: sharedMarker }, { op: 'append', key: sk, value: sharedMarker }))
        rec.markers.set(sharedMarker, 'acked');
      if (!this.#running) break;
      if (await this.#call(rec, { op: 'incr', key: ctrKey(c) }, undefined)) rec.ackedIncrs++;
      else rec.unknownIncrs++;
      if (!this.#running) break;
      await this.#call(rec, { op: 'set', key: regKey(c), value: String(round) }, { op: 'put', key: regKey(c), value: String(round) });
      const g = await this.#call(rec, { op: 'get', key: logKey(c) }, { op: 'get', key: logKey(c), value: null });
      if (g && g.kind === 'value') {
        const seen = new Set(
          (g.value ?? '')
            .split(';')
            .filter((m) => m.length > 0)
            .map((m) => m + ';'),
        );
        if (rec.ackedLog.some((m) => !seen.has(m))) rec.staleReads++;
      }
    }
  }

  /** Keys `verify` needs to read. */
  keysToRead(): string[] {
    const keys: string[] = [];
    for (let c = 0; c < this.options.clients; c++) keys.push(logKey(c), ctrKey(c));
    for (let k = 0; k < (this.options.sharedKeys ?? 4); k++) keys.push(`${SHARED_PREFIX}${k}`);
    return keys;
  }

  /** Compare the serving replica's values (for keysToRead(), in order) with what clients were told. */
  verify(values: readonly (string | null)[]): VerifyResult {
    const keys = this.keysToRead();
    const byKey = new Map(keys.map((k, i) => [k, values[i] ?? null]));
    const all = new Map<string, Outcome>();
    for (const r of this.records) for (const [m, o] of r.markers) all.set(m, o);
    const found = new Map<string, number>();
    for (const k of keys) {
      if (k.startsWith('ctr/')) continue;
      for (const m of (byKey.get(k) ?? '').split(';')) if (m.length > 0) found.set(m + ';', (found.get(m + ';') ?? 0) + 1);
    }
    const res: VerifyResult = { acknowledged: 0, unknown: 0, lost: 0, duplicated: 0, unexpected: 0, staleReads: 0, details: [] };
    for (const [m, o] of all) {
      const n = found.get(m) ?? 0;
      if (o === 'acked') res.acknowledged++;
      else res.unknown++;
      if (o === 'acked' && n === 0) {
        res.lost++;
        if (res.details.length < 20) res.details.push(`acknowledged append ${m} is missing`);
      }
      if (n > 1) {
        res.duplicated += n - 1;
        if (res.details.length < 20) res.details.push(`append ${m} applied ${n} times`);
      }
    }
    for (const m of found.keys()) {
      if (!all.has(m)) {
        res.unexpected++;
        if (res.details.length < 20) res.details.push(`marker ${m} was never written`);
      }
    }
    for (const r of this.records) {
      res.acknowledged += r.ackedIncrs;
      res.unknown += r.unknownIncrs;
      res.staleReads += r.staleReads;
      const v = Number(byKey.get(ctrKey(r.index)) ?? '0');
      if (v < r.ackedIncrs) {
        res.lost += r.ackedIncrs - v;
        res.details.push(`counter ${ctrKey(r.index)} = ${v} < ${r.ackedIncrs} acknowledged increments`);
      }
      if (v > r.ackedIncrs + r.unknownIncrs) {
        res.duplicated += v - r.ackedIncrs - r.unknownIncrs;
        res.details.push(`counter ${ctrKey(r.index)} = ${v} > ${r.ackedIncrs + r.unknownIncrs} increments issued`);
      }
    }
    return res;
  }

  /** Per client: ms from `since` to its first successful reply from an epoch newer than `oldEpoch`. */
  failoverTimes(since: number, oldEpoch: number): number[] {
    const out: number[] = [];
    for (const r of this.records) {
      const first = r.successes.find(([t, e]) => t >= since && e > oldEpoch);
      if (first) out.push(first[0] - since);
    }
    return out;
  }

  /** Clients that have had a successful reply from an epoch newer than `oldEpoch` after `since`. */
  recoveredClients(since: number, oldEpoch: number): number {
    return this.failoverTimes(since, oldEpoch).length;
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
