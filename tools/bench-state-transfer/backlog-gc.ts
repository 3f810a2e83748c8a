#!/usr/bin/env node
/**
 * What the catch-up backlog's storage costs a serving replica's garbage collector, side by side:
 *
 *   node --conditions=@tandem/source --import tsx tools/bench-state-transfer/backlog-gc.ts [--keys N] [--rate R] [--seconds S] [--max-entries M] [--garbage-kb K] [--pairs P]
 *
 * Each run is a fresh child process (its own heap): a ServiceHost of the benchmark's kv service with N
 * keys and a backlog of M entries (default 100 000, the default size) stored as 'objects' or 'encoded',
 * then R sets per second (open loop, each a request decoded from msgpack as if from the network, plus
 * `--garbage-kb` KB of short-lived objects, default 6) for S
 * seconds while a PerformanceObserver records every young-generation collection's pause. Runs alternate
 * between the two storages P times. Prints, per storage, the median over runs of: scavenges, their p50
 * and max pause and the total pause per second; and the ratios objects / encoded.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import { ServiceHost } from '../../packages/state-transfer/src/host.js';
import { numberArg } from './args.js';
import { benchKv, valueFor, type BenchRequest } from './kv.js';

const keys = numberArg('--keys', 1_000_000);
const rate = numberArg('--rate', 2000);
const seconds = numberArg('--seconds', 10);
const maxEntries = numberArg('--max-entries', 100_000);
const pairs = numberArg('--pairs', 2);
// Short-lived garbage per request, as a real replica's transport and codecs make (the benchmark's serving
// replica allocated about 6 KB per request: 12–15 MB between scavenges at 2000 requests/s).
const garbageKB = numberArg('--garbage-kb', 6);

interface RunResult {
  storage: string;
  scavenges: number;
  p50Ms: number;
  maxMs: number;
  pauseMsPerS: number;
}

let sink: unknown;

async function child(storage: 'objects' | 'encoded'): Promise<void> {
  const packr = new Packr({ useRecords: false });
  const host = new ServiceHost({ service: benchKv(), env: { now: () => performance.now() }, backlog: { maxEntries, storage } });
  for (let i = 0; i < keys; i++)
    host.execute(packr.unpack(packr.pack({ op: 'set', key: `key:${i}`, value: valueFor(i, 100) })) as BenchRequest);
  await new Promise((r) => setTimeout(r, 500));
  const pauses: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) pauses.push(e.duration);
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  let sent = 0;
  let id = keys;
  await new Promise<void>((done) => {
    const tick = (): void => {
      const due = Math.floor(((performance.now() - t0) * rate) / 1000);
      while (sent < due) {
        id++;
        const req = packr.unpack(packr.pack({ op: 'set', key: `key:${(id * 2654435761) % keys}`, value: `u${id}` })) as BenchRequest;
        host.execute(req);
        for (let g = 0; g < garbageKB * 16; g++) sink = { a: g, b: [g, g + 1], c: id }; // ~64 B each
        sent++;
      }
      if (performance.now() - t0 < seconds * 1000) setTimeout(tick, 1);
      else done();
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  pauses.sort((a, b) => a - b);
  const r: RunResult = {
    storage,
    scavenges: pauses.length,
    p50Ms: pauses[Math.floor(pauses.length / 2)] ?? 0,
    maxMs: pauses.at(-1) ?? 0,
    pauseMsPerS: pauses.reduce((a, b) => a + b, 0) / seconds,
  };
  process.send!(r);
  void sink;
}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const results: RunResult[] = [];
  for (let p = 0; p < pairs; p++) {
    const order: ('objects' | 'encoded')[] = p % 2 === 0 ? ['objects', 'encoded'] : ['encoded', 'objects'];
    for (const storage of order) {
      const c = fork(self, ['--child', storage, ...process.argv.slice(2)], {
        execArgv: ['--conditions=@tandem/source', '--import', 'tsx'],
      });
      const r = await new Promise<RunResult>((resolve, reject) => {
        c.once('message', (m) => resolve(m as RunResult));
        c.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      c.kill('SIGKILL');
      results.push(r);
      console.error(
        `${storage}: ${r.scavenges} scavenges, p50 ${r.p50Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(2)} ms, ${r.pauseMsPerS.toFixed(2)} ms/s`,
      );
    }
  }
  const med = (s: string, k: keyof Omit<RunResult, 'storage'>): number => {
    const xs = results
      .filter((r) => r.storage === s)
      .map((r) => r[k])
      .sort((a, b) => a - b);
    return Number(xs[Math.floor(xs.length / 2)]!.toFixed(3));
  };
  const summary = Object.fromEntries(
    ['objects', 'encoded'].map((s) => [
      s,
      { scavenges: med(s, 'scavenges'), p50Ms: med(s, 'p50Ms'), maxMs: med(s, 'maxMs'), pauseMsPerS: med(s, 'pauseMsPerS') },
    ]),
  );
  console.log(
    JSON.stringify({
      keys,
      rate,
      seconds,
      maxEntries,
      pairs,
      ...summary,
      ratios: {
        p50: Number((summary.objects!.p50Ms / summary.encoded!.p50Ms).toFixed(2)),
        pausePerS: Number((summary.objects!.pauseMsPerS / summary.encoded!.pauseMsPerS).toFixed(2)),
      },
    }),
  );
}

const ci = process.argv.indexOf('--child');
if (ci >= 0) void child(process.argv[ci + 1] as 'objects' | 'encoded');
else void main();
