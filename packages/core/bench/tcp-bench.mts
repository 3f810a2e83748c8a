// Ad-hoc, side-by-side latency + CPU-per-call comparison over loopback TCP with real processes (P, B as
// children; the client here). Run: node --conditions=@tandem/source --import tsx bench/tcp-bench.mts [rounds]
// The official benchmark is the apps/kv one in tools/; this is for tuning the core.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { createClient, nodeEnv } from '@tandem/core';
import { kv } from '../test/helpers/setup.ts';

let port = 17100 + Math.floor(Math.random() * 500) * 2;
function start(listen: string, peer: string, hint: string, cfg: object): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@tandem/source',
      '--import',
      'tsx',
      new URL('./tcp-replica.mts', import.meta.url).pathname,
      listen,
      peer,
      hint,
      JSON.stringify(cfg),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return new Promise((res, rej) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && res(child));
    child.on('exit', (c) => rej(new Error('exit ' + c)));
  });
}
function cpu(k: ChildProcess): Promise<number> {
  return new Promise((res) => {
    const on = (d: Buffer) => {
      const m = /cpu (\d+)/.exec(String(d));
      if (m) {
        k.stdout!.off('data', on);
        res(Number(m[1]));
      }
    };
    k.stdout!.on('data', on);
    k.stdin!.write('cpu\n');
  });
}
const cpuRes: Record<string, string[]> = {};
async function run(label: string, cfg: object, solo: boolean, n: number): Promise<number> {
  const a = `tcp://127.0.0.1:${port++}`,
    b = `tcp://127.0.0.1:${port++}`;
  const kids = [await start(a, b, 'primary', cfg)];
  if (!solo) kids.push(await start(b, a, 'backup', cfg));
  await new Promise((r) => setTimeout(r, 300));
  const env = nodeEnv({ network: createRegistry([tcp()]) });
  const c = createClient({ service: kv, env, servers: [a, b], config: cfg });
  for (let i = 0; i < 3000; i++) await c.call({ op: 'put', key: 'k' + (i % 100), value: 'v' });
  const lat: number[] = [];
  const before = await Promise.all(kids.map(cpu));
  const cBefore = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await c.call({ op: 'put', key: 'k' + (i % 100), value: 'value-' + i });
    lat.push(performance.now() - s);
  }
  const after = await Promise.all(kids.map(cpu));
  const cAfter = process.cpuUsage(cBefore);
  (cpuRes[label] ??= []).push(
    `client ${((cAfter.user + cAfter.system) / n).toFixed(1)} P ${((after[0]! - before[0]!) / n).toFixed(1)}` +
      (kids[1] ? ` B ${((after[1]! - before[1]!) / n).toFixed(1)}` : '') +
      ' µs/call',
  );
  lat.sort((x, y) => x - y);
  await c.close();
  for (const k of kids) k.kill('SIGKILL');
  return lat[n >> 1]! * 1000;
}
const modes: [string, object, boolean][] = [
  ['unreplicated', {}, true],
  ['entries (default)', {}, false],
  ['seq-digest', { piggyback: 'seq-digest' }, false],
  ['sync', { replyMode: 'sync' }, false],
  ['entries fwd 1ms', { forwardDelayMs: 1 }, false],
];
const res: Record<string, number[]> = {};
const rounds = Number(process.argv[2] ?? 3);
for (let r = 0; r < rounds; r++) for (const [l, c, s] of modes) (res[l] ??= []).push(await run(l, c, s, 5000));
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const base = med(res['unreplicated']!);
for (const [l] of modes)
  console.log(
    l.padEnd(18),
    'p50',
    med(res[l]!).toFixed(1),
    'µs',
    (med(res[l]!) / base).toFixed(2) + 'x',
    res[l]!.map((x) => x.toFixed(0)).join(','),
  );
for (const [l] of modes) console.log(l.padEnd(18), cpuRes[l]!.join(' | '));
process.exit(0);
