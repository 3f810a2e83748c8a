import { runKvSimulation } from '@tandem/testkit';
const seed = Number(process.argv[2] ?? 1);
const t0 = performance.now();
const r = await runKvSimulation({ seed, recordTrace: false });
console.log(JSON.stringify({ seed, ok: r.ok, piggyback: r.piggyback, faults: r.faults, events: r.events, virtualMs: r.virtualMs.toFixed(0), ops: r.history.length, maxLat: r.maxLatencyAfterFaultMs, bound: r.livenessBoundMs, net: r.network, wallMs: (performance.now() - t0).toFixed(0) }, null, 1));
if (!r.ok) { console.log(r.failures.join('\n')); console.log(r.errorLogs.slice(0,10)); }
