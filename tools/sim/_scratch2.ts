import { runKvSimulation } from '@tandem/testkit';
const from = Number(process.argv[2] ?? 1), n = Number(process.argv[3] ?? 50), variant = process.argv[4] ?? 'correct';
const t0 = performance.now();
let fails = 0, events = 0, vms = 0;
for (let s = from; s < from + n; s++) {
  const r = await runKvSimulation({ seed: s, variant });
  events += r.events; vms += r.virtualMs;
  if (!r.ok) { fails++; console.log(`seed ${s} FAIL (${r.piggyback}) faults: ${r.faults.join(' / ')}\n  ${r.failures.slice(0,3).join('\n  ').slice(0,1500)}`); }
}
console.log(`${n} seeds, ${fails} failed, ${((performance.now()-t0)/n).toFixed(1)} ms/seed, ${(events/n).toFixed(0)} events/seed, ${(vms/n).toFixed(0)} virtual ms/seed`);
