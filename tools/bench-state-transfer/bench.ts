#!/usr/bin/env node
/**
 * State-transfer benchmark.
 *
 *   npm run bench:state-transfer -- [--keys N] [--value-size B] [--rate R] [--baseline-ms MS]
 *                                    [--chunk-bytes B] [--slice-bytes B] [--slice-ms MS] [--window W] [--max-mbps M] [--rounds R]
 *                                    [--semi-space-mb MB] [--primary-semi-space-mb MB] [--joiner-nice N] [--joiner-sched normal|idle]
 *                                    [--joiner-malloc hugepages|default] [--warmup-rounds N] [--state slab|map]
 *                                    [--serve worker|main] [--serve-thread idle|nice|normal] [--transfer-cpus last|none|LIST] [--json]
 *
 * Three processes on 127.0.0.1 (TCP): a serving replica holding N keys (child), a joining replica
 * (child, started before any measurement and idle until told to join), and this process, which sends
 * kv requests to the serving replica at a fixed rate (open loop) and measures each one's latency.
 * First `--warmup-rounds` (default 1) whole rounds whose figures are reported (`warmups`) but not
 * counted: the first transfer of a process runs cold code on both sides (in 2026-11-29 runs its p99 was
 * 15–40 ms against 4–8 ms in later rounds). Then each of `--rounds` rounds (default 3) measures the serving replica's latency for `--baseline-ms`
 * without a transfer, then while a fresh joiner state receives the whole state, catches up and
 * verifies. Alternating the two phases keeps slow drifts of a shared machine out of the ratio.
 * Printed, side by side from the one run:
 *   throughputMBps = median over rounds of snapshot bytes / time from the joiner's start to the
 *                    snapshot being installed
 *   p99Ratio       = p99 of every latency during transfers / p99 of every latency without one
 * --state: what both replicas keep the state in — 'slab' (default: SlabMap, entries as bytes outside the
 * V8 heap, streamed as packed slices) or 'map' (SnapshotMap of strings, streamed as text slices).
 * --joiner-nice N: every thread of the joiner runs N nice levels lower during each transfer (default
 * 19: a joiner is background work, and on this rig it shares two cores with the serving replica and the
 * load generator; 0 = compete at normal priority; `tandem-kv rejoin` has the same opt-in,
 * RejoinOptions.joinerNice, default 0). --joiner-sched idle starts the joiner under SCHED_IDLE (chrt).
 * --joiner-malloc hugepages (default) starts the joiner with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so
 * the memory it fills comes in transparent huge pages (see hugepageTunables); 'default' = 4 KiB pages.
 * --serve worker (default): the serving replica streams from a transfer worker thread
 * (serveTransfersInWorker) over its SlabMap's shared slabs, so its event loop and heap do no transfer
 * work; 'main': the StateTransferServer runs on its main thread (as before 2026-11-29, fourth session).
 * --serve-thread: that worker thread's scheduling — idle (default, SCHED_IDLE), nice (19) or normal.
 * --transfer-cpus: the CPUs the transfer's two busy threads run on — the joiner's main thread (pinned
 * after it starts; its V8 helper threads stay free) and the serving replica's transfer worker. 'last'
 * (default) = the machine's last CPU when it has more than one, 'none' = no pinning, or a taskset CPU
 * list. On this 2-vCPU rig it leaves the serving replica's main thread and the load generator a core
 * that no transfer thread competes for. The serving replica's helper threads (every thread but its main
 * one: V8's platform workers, which also run the transfer worker's garbage collection; BENCH_PIN_PRIMARY_HELPERS=0
 * leaves them free) are pinned there too, and its main thread and this process (the load generator) are
 * pinned to the other CPUs (BENCH_PIN_MAIN=0 leaves them free). BENCH_PIN_ALL=1 pins every thread of the joiner instead;
 * BENCH_WORKER_CPUS=LIST pins the transfer worker to other CPUs than the joiner's main thread.
 * --joiner-sched: idle (default; SCHED_IDLE via chrt) or normal (then --joiner-nice applies).
 * Targets: throughputMBps ≥ 100, p99Ratio ≤ 2. At the end the joiner's digest must equal the primary's.
 * Environment knobs for experiments: BENCH_NODE_FLAGS (both children), BENCH_PRIMARY_FLAGS and
 * BENCH_JOINER_FLAGS (one child; e.g. --single-threaded-gc, --trace-gc), BENCH_BACKLOG_ENTRIES (serving
 * replica's backlog, default the library's 100 000), BENCH_BACKLOG_STORAGE=objects (BacklogOptions.storage; default
 * 'encoded' since 2026-11-29 (fifth session): its transfer worker's backlog questions are then copies),
 * BENCH_DEBUG=1 (event-loop delay and CPU of the children every 500 ms), BENCH_TRANSFER_PROF=dir (a CPU
 * profile of the serving replica during each transfer phase only), BENCH_HEAP_PROF=dir (its allocations
 * during them), BENCH_GC_PHASES=1 (its GC pauses per phase), BENCH_EVENTS=1 (its transfer events with
 * wall-clock times, to line up with stall-log's), BENCH_CPU_PROF=dir (whole-run CPU
 * profiles of both children); BENCH_NODE_FLAGS="--import …/stall-log.ts" logs every event-loop stall;
 * BENCH_BREAKDOWN=1 splits the slowest 2% of each phase's requests into their legs (see showBreakdown);
 * BENCH_NULL_JOINER=1 replaces the joiner by one that only acknowledges chunks (the serving side's cost
 * alone; its "throughput" is the serving rate; no convergence check is possible, so the run exits 1).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRegistry, type Connection } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { Packr } from 'msgpackr';
import type { ChildReport } from './kv.js';

interface Args {
  keys: number;
  valueSize: number;
  rate: number;
  baselineMs: number;
  chunkBytes: number;
  sliceBytes: number;
  sliceMs: number;
  window: number;
  maxMBps: number;
  rounds: number;
  semiSpaceMB: number;
  primarySemiSpaceMB: number;
  joinerNice: number;
  warmupRounds: number;
  joinerSched: 'normal' | 'idle';
  joinerMalloc: 'hugepages' | 'default';
  state: 'slab' | 'map';
  serve: 'worker' | 'main';
  serveThread: 'idle' | 'nice' | 'normal';
  transferCpus: string;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    keys: 1_000_000,
    valueSize: 100,
    rate: 2000,
    baselineMs: 3000,
    chunkBytes: 512 * 1024,
    sliceBytes: 32 * 1024,
    sliceMs: 0.5,
    window: 8,
    maxMBps: 0,
    rounds: 3,
    semiSpaceMB: 0,
    primarySemiSpaceMB: 0,
    joinerNice: 19,
    warmupRounds: 1,
    joinerSched: 'idle',
    joinerMalloc: 'hugepages',
    state: 'slab',
    serve: 'worker',
    serveThread: 'idle',
    transferCpus: 'last',
    json: false,
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      console.error(`${flag} needs a positive number`);
      process.exit(2);
    }
    return n;
  };
  const choice = <T extends string>(flag: string, v: string | undefined, options: readonly T[]): T => {
    if (!options.includes(v as T)) {
      console.error(`${flag} needs one of: ${options.join(', ')}`);
      process.exit(2);
    }
    return v as T;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--json') a.json = true;
    else if (f === '--keys') a.keys = num(f, argv[++i]);
    else if (f === '--value-size') a.valueSize = num(f, argv[++i]);
    else if (f === '--rate') a.rate = num(f, argv[++i]);
    else if (f === '--baseline-ms') a.baselineMs = num(f, argv[++i]);
    else if (f === '--chunk-bytes') a.chunkBytes = num(f, argv[++i]);
    else if (f === '--slice-bytes') a.sliceBytes = num(f, argv[++i]);
    else if (f === '--slice-ms') a.sliceMs = Number(argv[++i]);
    else if (f === '--window') a.window = num(f, argv[++i]);
    else if (f === '--max-mbps') a.maxMBps = num(f, argv[++i]);
    else if (f === '--rounds') a.rounds = num(f, argv[++i]);
    else if (f === '--semi-space-mb') a.semiSpaceMB = Number(argv[++i]);
    else if (f === '--primary-semi-space-mb') a.primarySemiSpaceMB = Number(argv[++i]);
    else if (f === '--joiner-nice') a.joinerNice = Number(argv[++i]);
    else if (f === '--warmup-rounds') a.warmupRounds = Number(argv[++i]);
    else if (f === '--joiner-sched') a.joinerSched = choice(f, argv[++i], ['normal', 'idle'] as const);
    else if (f === '--joiner-malloc') a.joinerMalloc = choice(f, argv[++i], ['hugepages', 'default'] as const);
    else if (f === '--state') a.state = choice(f, argv[++i], ['slab', 'map'] as const);
    else if (f === '--serve') a.serve = choice(f, argv[++i], ['worker', 'main'] as const);
    else if (f === '--serve-thread') a.serveThread = choice(f, argv[++i], ['idle', 'nice', 'normal'] as const);
    else if (f === '--transfer-cpus') a.transferCpus = argv[++i] ?? '';
    else {
      console.error(`unknown argument ${f}`);
      process.exit(2);
    }
  }
  return a;
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** The --state of this run, handed to both children. */
let stateKind: 'slab' | 'map' = 'slab';
let joinerSchedIdle = false;
/** --transfer-cpus resolved: the CPU list the joiner and the serving replica's transfer worker run on ('' = any). */
let transferCpus = '';
let joinerEnv: Record<string, string> = {};
const execArgv = ['--conditions=@tandem/source', '--import', 'tsx'];

function child(file: string, env: Record<string, string>, semiSpaceMB: number, flags: string[] = []): ChildProcess {
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // Both children keep V8's default young generation (0 = default). The serving replica: each of its
  // scavenges pauses its requests, and with 64 MB they took 12–41 ms (--trace-gc). The joiner: a 64 MB
  // young generation (fewer scavenges of its millions of long-lived strings) was no better — 2026-11-29,
  // alternated runs: medians 81 MB/s at 64 MB against 87 MB/s at 0/16 MB (joiner 1.4–1.6 against
  // 1.0–1.4 µs CPU per record).
  const gc = semiSpaceMB > 0 ? [`--max-semi-space-size=${semiSpaceMB}`] : [];
  // BENCH_NODE_FLAGS: extra node/V8 flags for both children (diagnostics, e.g. --trace-gc).
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  // --joiner-sched idle: start the joiner under SCHED_IDLE (util-linux chrt): it runs only when a core is
  // otherwise idle, and a waking serving replica preempts it at once (nice values only reweight shares).
  // --transfer-cpus: the joiner runs on those CPUs only (util-linux taskset).
  const prefix =
    file === 'joiner.ts'
      ? [
          ...(joinerSchedIdle ? ['chrt', '--idle', '0'] : []),
          ...(transferCpus && process.env.BENCH_PIN_ALL ? ['taskset', '-c', transferCpus] : []),
        ]
      : [];
  const wrap = prefix.length > 0 ? { execPath: prefix[0]!, execArgvPre: [...prefix.slice(1), process.execPath] } : undefined;
  return fork(here + file, [], {
    ...(wrap ? { execPath: wrap.execPath } : {}),
    execArgv: [...(wrap?.execArgvPre ?? []), ...execArgv, ...gc, ...flags, ...extra, ...prof],
    env: { ...process.env, BENCH_STATE: stateKind, ...(file === 'joiner.ts' ? joinerEnv : {}), ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/**
 * --joiner-malloc hugepages (default): the joiner's glibc malloc asks for transparent huge pages on the
 * memory it maps (glibc ≥ 2.35: GLIBC_TUNABLES=glibc.malloc.hugetlb=1, i.e. madvise(MADV_HUGEPAGE); this
 * kernel has THP in "madvise" mode). A joiner fills ~200 MB of fresh memory (slabs, index, buffers) per
 * 1M-key transfer: 4 KiB pages took ~50 000 page faults and 0.16–0.34 s of system time per transfer in
 * this VM; with huge pages 700–5 000 faults and 0.12–0.14 s. Other tunables already set are kept.
 */
function hugepageTunables(existing: string | undefined): string {
  const kept = (existing ?? '').split(':').filter((t) => t && !t.startsWith('glibc.malloc.hugetlb='));
  return [...kept, 'glibc.malloc.hugetlb=1'].join(':');
}

/** Pin each thread (a tid; a process's main thread is its pid) to the taskset CPU list `cpus`. */
function pin(cpus: string, tids: number[]): void {
  for (const tid of tids) execFileSync('taskset', ['-p', '-c', cpus, String(tid)], { stdio: 'ignore' });
}

/** The CPUs 0..count-1 not in the taskset list `list` ("1", "2-3,5"), as a list; '' when none is left. */
function cpusExcept(list: string, count: number): string {
  const taken = new Set<number>();
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let c = a; c <= (b !== undefined && Number.isInteger(b) ? b : a); c++) taken.add(c);
  }
  const rest = Array.from({ length: count }, (_, c) => c).filter((c) => !taken.has(c));
  return rest.join(',');
}

function nextReport<T extends ChildReport['t']>(proc: ChildProcess, t: T, timeoutMs: number): Promise<Extract<ChildReport, { t: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${t} from child within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m: ChildReport): void => {
      if (m.t === 'error') {
        clearTimeout(timer);
        proc.off('message', onMsg);
        reject(new Error(`child failed: ${m.message}`));
      } else if (m.t === t) {
        clearTimeout(timer);
        proc.off('message', onMsg);
        resolve(m as Extract<ChildReport, { t: T }>);
      }
    };
    proc.on('message', onMsg);
  });
}

/**
 * BENCH_BREAKDOWN=1: the serving replica stamps each reply with when it read the request and when it
 * answered (wall-clock ms, comparable across processes on one machine), so the slowest requests of a
 * phase can be split into: to the primary (send, kernel, the primary waiting for a core or finishing
 * other work), in the primary, and back (the reply's way and this process getting to it).
 */
/** Per phase (keyed by its latency array): when it started, and [total, to, in, back, sent at] per reply. */
const breakdowns = new WeakMap<number[], { start: number; rows: [number, number, number, number, number][] }>();
function showBreakdown(label: string, latencies: number[]): void {
  const phase = breakdowns.get(latencies);
  const rows = (phase?.rows ?? []).sort((x, y) => y[0] - x[0]);
  if (!phase || rows.length === 0) return;
  const top = rows.slice(0, Math.max(1, Math.floor(rows.length / 50)));
  const avg = (i: number): string => (top.reduce((sum, r) => sum + r[i]!, 0) / top.length).toFixed(2);
  console.error(
    `[breakdown ${label}] slowest 2% (${top.length} requests), mean ms: total ${avg(0)} = to the primary ${avg(1)} + in the primary ${avg(2)} + back ${avg(3)}`,
  );
  // When they were sent, in ms into the phase (clusters at the start or end of a transfer show here).
  console.error(
    `[breakdown ${label}] sent at (ms into the phase): ${top
      .map((r) => Math.round(r[4] - phase.start))
      .sort((a, b) => a - b)
      .join(' ')}`,
  );
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Open-loop load over one connection (a connection has a single reader): `run(ms)`/`start()` send
 * `rate` requests per second; every reply's latency is recorded in the phase that sent the request.
 */
class LoadClient {
  readonly #conn: Connection;
  readonly #rate: number;
  readonly #keys: number;
  readonly #packr = new Packr({ useRecords: false });
  readonly #pending = new Map<number, { at: number; into: number[] }>();
  #nextId = 0;
  errors = 0;

  constructor(conn: Connection, rate: number, keys: number) {
    this.#conn = conn;
    this.#rate = rate;
    this.#keys = keys;
    void (async () => {
      for await (const msg of conn) {
        const tGot = performance.timeOrigin + performance.now();
        const [id, reply, tRecv, tSend] = this.#packr.unpack(msg) as [number, unknown, number?, number?];
        const p = this.#pending.get(id);
        if (!p) continue;
        this.#pending.delete(id);
        if (typeof reply === 'string' && reply.startsWith('error')) this.errors++;
        p.into.push(performance.now() - p.at);
        if (tRecv !== undefined && tSend !== undefined) {
          breakdowns
            .get(p.into)
            ?.rows.push([performance.now() - p.at, tRecv - (performance.timeOrigin + p.at), tSend - tRecv, tGot - tSend, p.at]);
        }
      }
    })().catch(() => {});
  }

  /** Start a phase; stop() waits for its outstanding replies and returns its latencies (ms). */
  start(): { stop(): Promise<number[]> } {
    const latencies: number[] = [];
    const start = performance.now();
    breakdowns.set(latencies, { start, rows: [] });
    let sent = 0;
    let running = true;
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      if (!running) return;
      const due = Math.floor(((performance.now() - start) * this.#rate) / 1000);
      while (sent < due) {
        const id = this.#nextId++;
        const k = `key:${(id * 2654435761) % this.#keys}`;
        const req = id % 2 === 0 ? { op: 'get', key: k } : { op: 'set', key: k, value: `u${id}` };
        this.#pending.set(id, { at: performance.now(), into: latencies });
        void this.#conn.send(this.#packr.pack([id, req])).catch(() => this.errors++);
        sent++;
      }
      timer = setTimeout(tick, 1);
    };
    tick();
    return {
      stop: async () => {
        running = false;
        clearTimeout(timer);
        const deadline = performance.now() + 10_000;
        while (performance.now() < deadline && [...this.#pending.values()].some((p) => p.into === latencies))
          await new Promise((r) => setTimeout(r, 5));
        for (const [id, p] of this.#pending) {
          if (p.into !== latencies) continue;
          this.#pending.delete(id);
          this.errors++;
        }
        return latencies;
      },
    };
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  stateKind = args.state;
  joinerSchedIdle = args.joinerSched === 'idle';
  const cpuCount = (await import('node:os')).availableParallelism();
  transferCpus =
    args.transferCpus === 'last' ? (cpuCount > 1 ? String(cpuCount - 1) : '') : args.transferCpus === 'none' ? '' : args.transferCpus;
  const pinPrimaryHelpers = transferCpus !== '' && process.env.BENCH_PIN_PRIMARY_HELPERS !== '0';
  // The CPUs not in --transfer-cpus (a taskset list), for the serving replica's main thread and the load generator.
  const otherCpus = transferCpus === '' ? '' : cpusExcept(transferCpus, cpuCount);
  if (args.joinerMalloc === 'hugepages') joinerEnv = { GLIBC_TUNABLES: hugepageTunables(process.env.GLIBC_TUNABLES) };
  const log = (s: string): void => {
    if (!args.json) console.log(s);
  };
  const procs: ChildProcess[] = [];
  try {
    log(`filling the serving replica with ${args.keys} keys of ${args.valueSize} B…`);
    const primary = child(
      'primary.ts',
      {
        BENCH_KEYS: String(args.keys),
        BENCH_VALUE_SIZE: String(args.valueSize),
        BENCH_CHUNK_BYTES: String(args.chunkBytes),
        BENCH_SLICE_BYTES: String(args.sliceBytes),
        BENCH_SLICE_MS: String(args.sliceMs),
        BENCH_MAX_BPS: String(args.maxMBps * 1e6),
        BENCH_SERVE: args.serve,
        BENCH_SERVE_THREAD: args.serveThread,
        BENCH_TRANSFER_CPUS: transferCpus,
      },
      args.primarySemiSpaceMB,
      ['--expose-gc', ...(process.env.BENCH_PRIMARY_FLAGS ?? '').split(/\s+/).filter(Boolean)],
    );
    procs.push(primary);
    const ready = await nextReport(primary, 'ready', 300_000);
    log(`  filled in ${ready.fillMs.toFixed(0)} ms; kv at ${ready.kvAddress}, state transfer at ${ready.transferAddress}`);
    // --transfer-cpus also takes the serving replica's helper threads (V8's platform workers, which run
    // the garbage-collection tasks of its main thread and of its transfer worker alike, the libuv pool):
    // every thread but its main thread. With them free to run beside the main thread, p99 during
    // transfers was 2.5–6.7 ms per round; pinned, 1.4–2.5 ms in most rounds (2026-11-29, fifth session).
    // BENCH_PIN_PRIMARY_HELPERS=0 leaves them free.
    // And the serving replica's main thread and this process (the load generator) run on the other
    // CPUs: the kernel here is not preemptible (PREEMPT_NONE), so a main thread the scheduler had moved
    // beside a transfer thread waited for that thread's page faults and socket calls to finish, however
    // low its priority (the stall log showed 1–9 ms waits for a core). BENCH_PIN_MAIN=0 leaves them free.
    if (otherCpus && process.env.BENCH_PIN_MAIN !== '0' && primary.pid) pin(otherCpus, [primary.pid, process.pid]);
    if (pinPrimaryHelpers && primary.pid)
      pin(
        transferCpus,
        readdirSync(`/proc/${primary.pid}/task`)
          .map(Number)
          .filter((tid) => tid !== primary.pid),
      );

    // The joiner process is started now (its start-up cost is outside both measured phases); it waits
    // for 'go' before dialling.
    const joiner = child(
      'joiner.ts',
      { BENCH_TRANSFER_ADDRESS: ready.transferAddress, BENCH_WINDOW: String(args.window), BENCH_JOINER_NICE: String(args.joinerNice) },
      args.semiSpaceMB,
      (process.env.BENCH_JOINER_FLAGS ?? '').split(/\s+/).filter(Boolean),
    );
    procs.push(joiner);
    await nextReport(joiner, 'ready', 60_000);
    if (transferCpus && !process.env.BENCH_PIN_ALL && joiner.pid) pin(transferCpus, [joiner.pid]);

    const network = createRegistry([tcp()]);
    const conn = await network.dial(ready.kvAddress);
    const load = new LoadClient(conn, args.rate, args.keys);

    // Warm-up, then alternate: phase 1 (no transfer), phase 2 (a transfer), `rounds` times.
    const warm = load.start();
    await new Promise((r) => setTimeout(r, 500));
    await warm.stop();
    const baseAll: number[] = [];
    const duringAll: number[] = [];
    const rounds: {
      throughputMBps: number;
      p99BaselineMs: number;
      p99DuringMs: number;
      snapshotMs: number;
      joinerCpuUsPerRecord: number;
      joinerPageFaults: number;
      primaryCpuUsPerRecord: number;
      entries: number;
    }[] = [];
    let joined: Extract<ChildReport, { t: 'joined' }> | undefined;
    const warmups: typeof rounds = [];
    for (let round = 1 - args.warmupRounds; round <= args.rounds; round++) {
      const warmup = round <= 0;
      log(
        `${warmup ? 'warm-up round (not counted)' : `round ${round}`}: ${args.rate} req/s for ${args.baselineMs} ms without a transfer, then during one…`,
      );
      const base = load.start();
      await new Promise((r) => setTimeout(r, args.baselineMs));
      const baseRaw = await base.stop();
      showBreakdown('baseline', baseRaw);
      const baseLat = baseRaw.sort((a, b) => a - b);
      primary.send({ t: 'cpu' });
      const cpuBefore = (await nextReport(primary, 'cpu', 10_000)).cpuMs;
      const during = load.start();
      joiner.send({ t: 'go', follow: round === args.rounds });
      joined = await nextReport(joiner, 'joined', 600_000);
      const duringRaw = await during.stop();
      showBreakdown('during', duringRaw);
      const duringLat = duringRaw.sort((a, b) => a - b);
      primary.send({ t: 'cpu' });
      const primaryCpuMs = (await nextReport(primary, 'cpu', 10_000)).cpuMs - cpuBefore;
      if (!warmup) {
        baseAll.push(...baseLat);
        duringAll.push(...duringLat);
      }
      (warmup ? warmups : rounds).push({
        throughputMBps: Number((joined.bytes / 1e6 / (joined.snapshotMs / 1000)).toFixed(1)),
        p99BaselineMs: Number(percentile(baseLat, 99).toFixed(3)),
        p99DuringMs: Number(percentile(duringLat, 99).toFixed(3)),
        snapshotMs: Number(joined.snapshotMs.toFixed(0)),
        // CPU time per snapshot record, in µs: the joiner's up to the install, the serving replica's
        // over the whole transfer phase (requests included). Less sensitive to a busy machine than times.
        joinerCpuUsPerRecord: Number(((joined.snapshotCpuMs * 1000) / Math.max(1, joined.records)).toFixed(3)),
        joinerPageFaults: joined.pageFaults,
        primaryCpuUsPerRecord: Number(((primaryCpuMs * 1000) / Math.max(1, joined.records)).toFixed(3)),
        entries: joined.entries,
      });
      const last = (warmup ? warmups : rounds).at(-1)!;
      log(`  ${last.throughputMBps} MB/s; p99 ${last.p99BaselineMs} ms → ${last.p99DuringMs} ms`);
    }
    if (!joined) throw new Error('no rounds');
    const baseLat = baseAll.sort((a, b) => a - b);
    const duringLat = duringAll.sort((a, b) => a - b);
    const failed = load.errors;

    // Convergence: the follower catches up with the (now idle) primary; digests must be equal.
    let pd: Extract<ChildReport, { t: 'digest' }> | undefined;
    let jd: Extract<ChildReport, { t: 'digest' }> | undefined;
    for (let i = 0; i < 100; i++) {
      primary.send({ t: 'digest' });
      pd = await nextReport(primary, 'digest', 10_000);
      joiner.send({ t: 'digest' });
      jd = await nextReport(joiner, 'digest', 10_000);
      if (jd.seq === pd.seq) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const converged = pd !== undefined && jd !== undefined && pd.seq === jd.seq && pd.digest === jd.digest;
    if (!converged) console.error(`not converged: primary ${JSON.stringify(pd)} joiner ${JSON.stringify(jd)}`);
    await conn.close();

    const p99Base = percentile(baseLat, 99);
    const p99During = percentile(duringLat, 99);
    const tp = rounds.map((r) => r.throughputMBps).sort((a, b) => a - b);
    const throughputMBps = tp[Math.floor(tp.length / 2)]!;
    const result = {
      throughputMBps: Number(throughputMBps.toFixed(1)),
      p99Ratio: Number((p99During / p99Base).toFixed(2)),
      p99BaselineMs: Number(p99Base.toFixed(3)),
      p99DuringMs: Number(p99During.toFixed(3)),
      p50BaselineMs: Number(percentile(baseLat, 50).toFixed(3)),
      p50DuringMs: Number(percentile(duringLat, 50).toFixed(3)),
      requestsBaseline: baseLat.length,
      requestsDuring: duringLat.length,
      failedRequests: failed,
      state: args.state,
      keys: args.keys,
      valueSize: args.valueSize,
      snapshotBytes: joined.bytes,
      snapshotRecords: joined.records,
      snapshotMs: Number(joined.snapshotMs.toFixed(0)),
      transferMs: Number(joined.transferMs.toFixed(0)),
      catchUpEntries: joined.entries,
      verifiedSeq: joined.seq,
      converged,
      chunkBytes: args.chunkBytes,
      sliceBytes: args.sliceBytes,
      sliceMs: args.sliceMs,
      loadAverage: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(2))),
      window: args.window,
      semiSpaceMB: args.semiSpaceMB,
      primarySemiSpaceMB: args.primarySemiSpaceMB,
      joinerNice: args.joinerNice,
      joinerSched: args.joinerSched,
      joinerMalloc: args.joinerMalloc,
      serve: args.serve,
      serveThread: args.serve === 'worker' ? args.serveThread : null,
      transferCpus: transferCpus || null,
      primaryHelpersPinned: pinPrimaryHelpers,
      mainThreadsCpus: otherCpus && process.env.BENCH_PIN_MAIN !== '0' ? otherCpus : null,
      maxMBps: args.maxMBps || null,
      rate: args.rate,
      rounds,
      warmups,
      targets: { throughputMBps: 100, p99Ratio: 2 },
    };
    if (args.json) {
      console.log(JSON.stringify(result));
    } else {
      console.log('');
      console.log(
        `snapshot: ${(joined.bytes / 1e6).toFixed(1)} MB, ${joined.records} records; median over ${rounds.length} rounds ${result.throughputMBps} MB/s (target ≥ 100)`,
      );
      console.log(`catch-up: ${joined.entries} log entries; verified at seq ${joined.seq}; total ${result.transferMs} ms`);
      console.log(
        `p99 latency: ${result.p99BaselineMs} ms without a transfer, ${result.p99DuringMs} ms during → ratio ${result.p99Ratio} (target ≤ 2)`,
      );
      console.log(`requests: ${result.requestsBaseline} + ${result.requestsDuring}, failed ${failed}; converged: ${converged}`);
    }
    if (!converged || failed > 0) process.exitCode = 1;
  } finally {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) p.kill(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
    if (process.env.BENCH_CPU_PROF) await new Promise((r) => setTimeout(r, 2000));
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
