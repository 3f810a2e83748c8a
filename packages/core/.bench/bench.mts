import { createReplica, createClient, nodeEnv } from '/work/main/packages/core/src/index.ts';
import { createMemoryNetwork } from '@tandem/transport';
import { kv } from '/work/main/packages/core/test/helpers/setup.ts';
import { performance } from 'node:perf_hooks';

async function run(label: string, cfg: any, solo: boolean, n = 20000) {
  const net = createMemoryNetwork();
  const env = nodeEnv({ network: net });
  const id = Math.random().toString(36).slice(2);
  const a = createReplica({ service: kv, env, listen: `mem://a${id}`, peer: `mem://b${id}`, roleHint: 'primary', config: cfg });
  await a.start();
  let b: any;
  if (!solo) { b = createReplica({ service: kv, env, listen: `mem://b${id}`, peer: `mem://a${id}`, roleHint: 'backup', config: cfg }); await b.start(); }
  const c = createClient({ service: kv, env, servers: [`mem://a${id}`, `mem://b${id}`], config: cfg });
  for (let i = 0; i < 2000; i++) await c.call({ op: 'put', key: 'k' + (i % 100), value: 'v' });
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { const s = performance.now(); await c.call({ op: 'put', key: 'k' + (i % 100), value: 'value-' + i }); lat.push(performance.now() - s); }
  const total = performance.now() - t0;
  lat.sort((x, y) => x - y);
  console.log(label.padEnd(22), 'p50', (lat[n >> 1]! * 1000).toFixed(1), 'µs  p99', (lat[Math.floor(n * 0.99)]! * 1000).toFixed(1), 'µs  thr', Math.round(n / total * 1000), '/s', b ? 'B seq ' + b.status().appliedSeq : '');
  await c.close(); await b?.stop(); await a.stop();
}
for (let round = 0; round < 2; round++) {
  await run('solo (unreplicated)', {}, true);
  await run('async entries', { piggyback: 'entries' }, false);
  await run('async seq-digest', { piggyback: 'seq-digest' }, false);
  await run('sync', { replyMode: 'sync' }, false);
}
