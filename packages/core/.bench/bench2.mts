import { createReplica, createClient, nodeEnv } from '/work/main/packages/core/src/index.ts';
import { createMemoryNetwork } from '@tandem/transport';
import { kv } from '/work/main/packages/core/test/helpers/setup.ts';
async function run(label: string, cfg: any, solo: boolean, n = 20000) {
  const net = createMemoryNetwork();
  const env = nodeEnv({ network: net });
  const id = Math.random().toString(36).slice(2);
  const a = createReplica({ service: kv, env, listen: `mem://a${id}`, peer: `mem://b${id}`, roleHint: 'primary', config: cfg });
  await a.start();
  let b: any;
  if (!solo) { b = createReplica({ service: kv, env, listen: `mem://b${id}`, peer: `mem://a${id}`, roleHint: 'backup', config: cfg }); await b.start(); }
  const c = createClient({ service: kv, env, servers: [`mem://a${id}`, `mem://b${id}`], config: cfg });
  for (let i = 0; i < 3000; i++) await c.call({ op: 'put', key: 'k' + (i % 100), value: 'v' });
  const lat: number[] = [];
  for (let i = 0; i < n; i++) { const s = performance.now(); await c.call({ op: 'put', key: 'k' + (i % 100), value: 'value-' + i }); lat.push(performance.now() - s); }
  lat.sort((x, y) => x - y);
  await c.close(); await b?.stop(); await a.stop();
  return lat[n >> 1]! * 1000;
}
const modes: [string, any, boolean][] = [
  ['solo', {}, true],
  ['entries/64', { piggyback: 'entries', flushMaxEntries: 64 }, false],
  ['entries/16', { piggyback: 'entries', flushMaxEntries: 16 }, false],
  ['entries/8', { piggyback: 'entries', flushMaxEntries: 8 }, false],
  ['seq-digest/64', { piggyback: 'seq-digest', flushMaxEntries: 64 }, false],
  ['sync', { replyMode: 'sync' }, false],
];
const res: Record<string, number[]> = {};
for (let r = 0; r < 3; r++) for (const [l, c, s] of modes) (res[l] ??= []).push(await run(l, c, s));
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
const base = med(res['solo']!);
for (const [l] of modes) console.log(l.padEnd(16), med(res[l]!).toFixed(1), 'µs', (med(res[l]!) / base).toFixed(2) + 'x');
