/**
 * Diagnostic preload: logs every event-loop stall longer than 4 ms (STALL_MS) to stderr, with the CPU time the
 * process used meanwhile (all threads, user + system) and how long its main thread waited for a core
 * (the run-queue delay in /proc/self/task/<pid>/schedstat). A stall with about as much CPU as wall
 * time was work (JS, GC, a syscall); one with a long run-queue wait was the process waiting for a core.
 *
 *   BENCH_NODE_FLAGS="--import $PWD/tools/bench-state-transfer/stall-log.ts" npm run bench:state-transfer
 */
import { readFileSync } from 'node:fs';

const name = process.argv[1]?.split('/').pop() ?? 'node';
const started = Date.now();
const schedstat = `/proc/self/task/${process.pid}/schedstat`;
/** [on-CPU ns, run-queue wait ns] of the main thread (0, 0 where /proc has no schedstat). */
function sched(): [number, number] {
  try {
    const [run, wait] = readFileSync(schedstat, 'latin1').split(' ');
    return [Number(run), Number(wait)];
  } catch {
    return [0, 0];
  }
}
/** Stalls longer than this are logged (STALL_MS, default 4). */
const STALL_MS = Number(process.env.STALL_MS ?? 4);
let last = performance.now();
let cpu = process.cpuUsage();
let [run0, wait0] = sched();
setInterval(() => {
  const now = performance.now();
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  const [run, wait] = sched();
  const stall = now - last - 1;
  if (stall > STALL_MS) {
    process.stderr.write(
      `[stall ${name}] at ${Date.now() % 1e6} (${Date.now() - started} ms): ${stall.toFixed(1)} ms, cpu ${((used.user + used.system) / 1000).toFixed(1)} ms (system ${(used.system / 1000).toFixed(1)}), main thread on-CPU ${((run - run0) / 1e6).toFixed(1)} ms, waiting for a core ${((wait - wait0) / 1e6).toFixed(1)} ms\n`,
    );
  }
  run0 = run;
  wait0 = wait;
  last = now;
}, 1).unref();
