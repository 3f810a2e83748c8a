/**
 * Benchmark child: the serving replica. Holds `--keys` keys, answers kv requests on one TCP address
 * (one msgpack request → one reply) and serves state transfer on another.
 */

import { createRegistry, type Connection } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { Packr } from 'msgpackr';
import {
  nodeTransferEnv,
  serveTransfersInWorker,
  ServiceHost,
  StateTransferServer,
  type StateTransferServerEvent,
} from '@tandem/state-transfer';
import { benchKv, valueFor, type BenchRequest, type ChildReport } from './kv.js';

const keys = Number(process.env.BENCH_KEYS ?? 1_000_000);
const valueSize = Number(process.env.BENCH_VALUE_SIZE ?? 100);
const chunkBytes = Number(process.env.BENCH_CHUNK_BYTES ?? 512 * 1024);
const sliceBytes = Number(process.env.BENCH_SLICE_BYTES ?? 32 * 1024);
const sliceMs = Number(process.env.BENCH_SLICE_MS ?? 0.5);
const packr = new Packr({ useRecords: false });
const send = (m: ChildReport): void => void process.send?.(m);
// Exit with the orchestrator (its IPC channel closes when it dies).
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

async function serveKv(
  host: ServiceHost<ReturnType<ReturnType<typeof benchKv>['initialState']>, BenchRequest, string | null>,
  conn: Connection,
): Promise<void> {
  // BENCH_BREAKDOWN (see bench.ts): replies carry when the request was read and when it was answered.
  const stamp = process.env.BENCH_BREAKDOWN ? (): number => performance.timeOrigin + performance.now() : undefined;
  for await (const msg of conn) {
    const read = stamp?.();
    const [id, req] = packr.unpack(msg) as [number, BenchRequest];
    let reply: string | null;
    try {
      reply = host.execute(req, 'bench');
    } catch (err) {
      reply = `error: ${(err as Error).message}`;
    }
    void conn.send(packr.pack(stamp ? [id, reply, read, stamp()] : [id, reply])).catch(() => {});
  }
}

async function main(): Promise<void> {
  const network = createRegistry([tcp()]);
  const env = nodeTransferEnv({ network });
  // The catch-up backlog keeps the library's default size (100 000 entries: 50 s of this load, a transfer
  // takes a few) unless BENCH_BACKLOG_ENTRIES says otherwise. It used to be 2 000 000, which kept the
  // whole fill (1M requests with their 100-byte values) as objects on the heap: ~360 MB of old generation
  // that made every scavenge and marking of the serving replica slow, with or without a transfer.
  const backlogEntries = process.env.BENCH_BACKLOG_ENTRIES ? Number(process.env.BENCH_BACKLOG_ENTRIES) : undefined;
  const host = new ServiceHost({
    service: benchKv(),
    env,
    backlog: {
      ...(backlogEntries ? { maxEntries: backlogEntries } : {}),
      storage: process.env.BENCH_BACKLOG_STORAGE === 'objects' ? 'objects' : 'encoded',
    },
  });
  const t0 = performance.now();
  // Fill through the request path (decoded like a request from the network), so keys and values are
  // the flat strings a replica holds, not ropes left by building them here.
  for (let i = 0; i < keys; i++)
    host.execute(packr.unpack(packr.pack({ op: 'set', key: `key:${i}`, value: valueFor(i, valueSize) })) as BenchRequest);
  const fillMs = performance.now() - t0;
  // Setup, not measured: collect the fill's garbage now (a serving replica in steady state), rather than
  // in the middle of the first measured phase. The orchestrator starts this child with --expose-gc.
  (globalThis as { gc?: () => void }).gc?.();
  const maxBytesPerSecond = Number(process.env.BENCH_MAX_BPS ?? 0);
  const serverSettings = { chunkBytes, sliceBytes, sliceMs, maxBytesPerSecond };
  let transferAddress: string;
  let onServerEvent: (listener: (e: StateTransferServerEvent) => void) => unknown;
  if (process.env.BENCH_SERVE === 'worker') {
    // --serve worker: the transfer runs on a worker thread (its own event loop and heap) over the
    // SlabMap's shared slabs; --serve-thread and --transfer-cpus set that thread's scheduling.
    const mode = process.env.BENCH_SERVE_THREAD ?? 'idle';
    const cpus = process.env.BENCH_WORKER_CPUS ?? process.env.BENCH_TRANSFER_CPUS ?? '';
    const worker = await serveTransfersInWorker({
      env,
      source: host,
      listen: 'tcp://127.0.0.1:0',
      server: serverSettings,
      thread: { ...(mode === 'idle' ? { idle: true } : mode === 'nice' ? { nice: 19 } : {}), ...(cpus ? { cpus } : {}) },
    });
    if (worker.thread.refused.length > 0)
      console.error(`[primary] transfer worker thread settings refused: ${worker.thread.refused.join('; ')}`);
    transferAddress = worker.address;
    onServerEvent = (l) => worker.on(l);
  } else {
    const server = new StateTransferServer({ env, source: host, ...serverSettings });
    transferAddress = await server.listen('tcp://127.0.0.1:0');
    onServerEvent = (l) => server.on(l);
  }
  if (process.env.BENCH_EVENTS)
    onServerEvent((e) => e.type !== 'progress' && console.error(`[primary event] ${e.type} at ${Date.now() % 1e6}`));
  const kvListener = await network.listen('tcp://127.0.0.1:0');
  void (async () => {
    for await (const conn of kvListener) void serveKv(host, conn);
  })();
  const gcPhases = process.env.BENCH_GC_PHASES ? await gcMeter() : undefined;
  process.on('message', (m: { t: string }) => {
    if (m.t === 'digest') send({ t: 'digest', seq: host.seq, digest: host.digest() });
    if (m.t === 'cpu') {
      gcPhases?.();
      const c = process.cpuUsage();
      send({ t: 'cpu', cpuMs: (c.user + c.system) / 1000 });
      if (process.env.BENCH_TRANSFER_PROF) void profileTransferPhases(process.env.BENCH_TRANSFER_PROF, 'cpu');
      if (process.env.BENCH_HEAP_PROF) void profileTransferPhases(process.env.BENCH_HEAP_PROF, 'heap');
    }
  });
  if (process.env.BENCH_DEBUG) {
    const { monitorEventLoopDelay } = await import('node:perf_hooks');
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    let cpu = process.cpuUsage();
    setInterval(() => {
      const c = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      console.error(
        `[primary] loop delay p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms max ${(h.max / 1e6).toFixed(1)} ms; cpu ${((c.user + c.system) / 5000).toFixed(0)}%; open snapshots ${host.state.openSnapshots}`,
      );
      h.reset();
    }, 500).unref();
  }
  send({ t: 'ready', kvAddress: kvListener.address, transferAddress, keys, fillMs });
}

main().catch((err: Error) => {
  send({ t: 'error', message: err.stack ?? err.message });
  process.exit(1);
});

/**
 * BENCH_TRANSFER_PROF=dir: a CPU profile of the serving replica during each transfer phase only (the
 * orchestrator's 'cpu' messages bracket them), written to dir/transfer-N.cpuprofile.
 * BENCH_HEAP_PROF=dir: the same for allocations (V8's sampling heap profiler, every ~1 KiB allocated,
 * including what was collected since), written to dir/transfer-N.heapprofile.
 */
const profilers = new Map<'cpu' | 'heap', import('node:inspector').Session>();
const profileCounts = { cpu: 0, heap: 0 };
async function profileTransferPhases(dir: string, kind: 'cpu' | 'heap'): Promise<void> {
  const inspector = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const running = profilers.get(kind);
  if (!running) {
    const session = new inspector.Session();
    session.connect();
    if (kind === 'cpu') {
      session.post('Profiler.enable');
      session.post('Profiler.start');
    } else {
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      } as object);
    }
    profilers.set(kind, session);
    return;
  }
  profilers.delete(kind);
  const write = (err: Error | null, r: { profile: object }): void => {
    if (!err)
      writeFileSync(`${dir}/transfer-${++profileCounts[kind]}.${kind === 'cpu' ? 'cpuprofile' : 'heapprofile'}`, JSON.stringify(r.profile));
    running.disconnect();
  };
  if (kind === 'cpu') running.post('Profiler.stop', write);
  else running.post('HeapProfiler.stopSampling', write);
}

/**
 * BENCH_GC_PHASES=1: the serving replica's GC pauses (PerformanceObserver 'gc' entries) per phase, on
 * stderr at the end of each phase.
 */
async function gcMeter(): Promise<() => void> {
  const { PerformanceObserver } = await import('node:perf_hooks');
  let pauses: number[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push(e.duration);
  }).observe({ entryTypes: ['gc'] });
  let phase = 0;
  let t0 = performance.now();
  return () => {
    const ms = performance.now() - t0;
    t0 = performance.now();
    const label = phase++ % 2 === 0 ? 'baseline' : 'during';
    console.error(
      `[gc primary] ${label} ${ms.toFixed(0)} ms: ${pauses.length} GCs, ${pauses.reduce((a, b) => a + b, 0).toFixed(1)} ms paused: ${pauses.map((d) => d.toFixed(1)).join(' ')}`,
    );
    pauses = [];
  };
}
