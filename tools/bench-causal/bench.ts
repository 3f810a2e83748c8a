// npm run bench:causal [-- --json] [-- --rounds 300 --warmup 30 --calls 2000]
//
// Replicated services calling replicated services (issue #18), with real processes on loopback TCP: the
// resource handler pair (Pro2) and the resource pair (Pro3) run `tandem-resources serve`; Pro1 is this
// process. Interleaved rounds of the FIG. 4a flow (Pro2 replies after Pro3 answered its initialisation)
// and the FIG. 4b flow (Pro2 replies at once; causal ordering makes Pro3 apply the initialisation before
// Pro1's use). Measured: Pro1's time from asking Pro2 to having Pro3's answer to its use of the resource.
// Also the cost of the causal layer on a plain replicated call: a counter pair with no hooks vs the same
// counter as a causal service (context on request and reply, admission and afterApply hooks), interleaved.
// Afterwards every resource is inspected at Pro3: initialised exactly once, used once, init before use.
import { CausalSession } from '@tandem/causal/replication';
import { createClient, nodeEnv } from '@tandem/core';
import {
  allocateAndUse,
  causalCounterService,
  counterService,
  createNetwork,
  createPro1,
  type Flow,
  startPair,
  ThreeParty,
} from '@tandem/resources';

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
};
const rounds = opt('--rounds', 300);
const warmup = opt('--warmup', 30);
const calls = opt('--calls', 2000);
const log = (s: string): void => {
  if (json) process.stderr.write(`${s}\n`);
  else console.log(s);
};

function stats(xs: number[]): { n: number; p50: number; p99: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  const r = (v: number): number => Math.round(v * 1000) / 1000;
  return { n: s.length, p50: r(q(0.5)), p99: r(q(0.99)), mean: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)) };
}

async function flows(): Promise<{ fig4a: number[]; fig4b: number[]; allocs: Record<Flow, number[]>; violations: string[] }> {
  log(`starting the resource handler pair and the resource pair (4 processes)…`);
  const parties = await ThreeParty.start();
  const env = nodeEnv({ network: createNetwork() });
  const pro1 = createPro1(env, { handler: parties.handler, resource: parties.resource });
  const times: Record<Flow, number[]> = { '4a': [], '4b': [] };
  const allocs: Record<Flow, number[]> = { '4a': [], '4b': [] };
  const ids: string[] = [];
  const violations: string[] = [];
  try {
    for (let i = 0; i < warmup + rounds; i++) {
      const order: Flow[] = i % 2 === 0 ? ['4a', '4b'] : ['4b', '4a'];
      for (const flow of order) {
        const id = `r${i}-${flow}`;
        ids.push(id);
        const r = await allocateAndUse(pro1, id, flow, () => env.now());
        if (i >= warmup) {
          times[flow].push(r.totalMs);
          allocs[flow].push(r.allocMs);
        }
      }
    }
    log(`checking ${ids.length} resources at Pro3…`);
    for (const id of ids) {
      const s = await pro1.resource.call({ op: 'inspect', id });
      if (s.inits !== 1 || s.uses !== 1 || (s.initSeq ?? 0) >= (s.firstUseSeq ?? 0))
        violations.push(`${id}: inits ${s.inits}, uses ${s.uses}, init seq ${s.initSeq}, first use seq ${s.firstUseSeq}`);
    }
  } finally {
    await pro1.close();
    await parties.stop();
  }
  return { fig4a: times['4a'], fig4b: times['4b'], allocs, violations };
}

async function plainVsCausal(): Promise<{ plain: number[]; causal: number[] }> {
  log('starting a plain counter pair and a causal counter pair (4 processes)…');
  const [plainPair, causalPair] = await Promise.all([startPair('counter'), startPair('causal-counter')]);
  const env = nodeEnv({ network: createNetwork() });
  const plain = createClient({ service: counterService, env, servers: [plainPair.servers[0], plainPair.servers[1]] });
  const session = new CausalSession(['counter']);
  const causal = session.client(
    createClient({ service: causalCounterService, env, servers: [causalPair.servers[0], causalPair.servers[1]] }),
    'counter',
  );
  const out = { plain: [] as number[], causal: [] as number[] };
  try {
    const w = Math.max(1, Math.floor(calls / 10));
    for (let i = 0; i < w + calls; i++) {
      const order = i % 2 === 0 ? (['plain', 'causal'] as const) : (['causal', 'plain'] as const);
      for (const which of order) {
        const t0 = env.now();
        if (which === 'plain') await plain.call({ op: 'incr', by: 1 });
        else await causal.call({ op: 'incr', by: 1 });
        if (i >= w) out[which].push(env.now() - t0);
      }
    }
  } finally {
    await plain.close();
    await causal.close();
    await Promise.all([plainPair.stop(), causalPair.stop()]);
  }
  return out;
}

const f = await flows();
const fig4a = stats(f.fig4a);
const fig4b = stats(f.fig4b);
log(`FIG. 4a: p50 ${fig4a.p50} ms, p99 ${fig4a.p99} ms   FIG. 4b: p50 ${fig4b.p50} ms, p99 ${fig4b.p99} ms`);
const pc = await plainVsCausal();
const plain = stats(pc.plain);
const causal = stats(pc.causal);
log(`plain call: p50 ${plain.p50} ms, p99 ${plain.p99} ms   causal call: p50 ${causal.p50} ms, p99 ${causal.p99} ms`);
const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
const result = {
  rounds,
  warmup,
  calls,
  transport: 'tcp (loopback)',
  fig4a,
  fig4b,
  /** Pro1's time to the handler's answer alone (the rest of each flow is the use at the resource). */
  allocOnly: { fig4a: stats(f.allocs['4a']), fig4b: stats(f.allocs['4b']) },
  plain,
  causal,
  ratios: { fig4bVsFig4aP50: ratio(fig4b.p50, fig4a.p50), causalVsPlainP50: ratio(causal.p50, plain.p50) },
  targets: { fig4bVsFig4aP50: 0.75, causalVsPlainP50: 1.05 },
  violations: f.violations.length,
  violationDetails: f.violations.slice(0, 10),
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  log(
    `ratios: fig4bVsFig4aP50 ${result.ratios.fig4bVsFig4aP50} (target ≤ 0.75), causalVsPlainP50 ${result.ratios.causalVsPlainP50} (target ≤ 1.05)`,
  );
  log(`violations: ${result.violations}`);
}
process.exit(f.violations.length === 0 ? 0 : 1);
