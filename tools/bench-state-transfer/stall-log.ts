/**
 * Diagnostic preload: logs every event-loop stall longer than 4 ms to stderr, with the CPU time the
 * process used meanwhile (all threads, user + system). A stall with about as much CPU as wall time was
 * work (JS, GC, a syscall); one with little CPU was the process waiting for a core.
 *
 *   BENCH_NODE_FLAGS="--import $PWD/tools/bench-state-transfer/stall-log.ts" npm run bench:state-transfer
 */
const name = process.argv[1]?.split('/').pop() ?? 'node';
const started = Date.now();
let last = performance.now();
let cpu = process.cpuUsage();
setInterval(() => {
  const now = performance.now();
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  const stall = now - last - 1;
  if (stall > 4) process.stderr.write(`[stall ${name}] at ${Date.now() - started} ms: ${stall.toFixed(1)} ms, cpu ${((used.user + used.system) / 1000).toFixed(1)} ms (system ${(used.system / 1000).toFixed(1)})\n`);
  last = now;
}, 1).unref();
