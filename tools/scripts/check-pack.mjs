#!/usr/bin/env node
// `npm run check:pack`: proves the publishable packages work as a user gets them. For each package in
// PACKAGES (dependencies first): clean build, `npm pack` into a temp dir, check the tarball's file list;
// then `npm install` all tarballs into an empty folder (nothing from the workspace is visible there) and
// run each package's plain-JavaScript ESM smoke script. Prints OK or FAIL; exits non-zero on failure.
//
// To add a package: append { dir, expectFiles, smoke } below. `smoke` is the body of an ESM module run
// with the installed packages; it must throw (or exit non-zero) on failure.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Round trip helper shared by the smoke scripts (plain JS, inlined into each). */
const ROUND_TRIP = `
import assert from 'node:assert/strict';
async function roundTrip(transport, listenAddress) {
  const listener = await transport.listen(listenAddress);
  (async () => { for await (const conn of listener) (async () => { for await (const m of conn) await conn.send(m); })(); })();
  const conn = await transport.dial(listener.address, { timeoutMs: 5000 });
  const sent = new TextEncoder().encode('round trip via ' + listener.address);
  await conn.send(sent);
  const it = conn[Symbol.asyncIterator]();
  const { value } = await it.next();
  assert.deepEqual(new Uint8Array(value), sent);
  await conn.close();
  await listener.close();
  console.log('  round trip OK over ' + listener.address);
}
`;

const PACKAGES = [
  {
    dir: 'packages/transport',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'dist/compliance/index.js', 'dist/compliance/peer-process.js', 'README.md'],
    smoke: `${ROUND_TRIP}
import { memory, createRegistry, isTransportError, FrameDecoder, encodeFrame } from '@tandem/transport';
await roundTrip(createRegistry([memory()]), 'mem://pack-check');
const [m] = new FrameDecoder({ maxMessageSize: 10 }).push(encodeFrame(new Uint8Array([1, 2, 3])));
assert.deepEqual([...m], [1, 2, 3]);
const err = await memory().dial('mem://nobody').catch((e) => e);
assert.ok(isTransportError(err, 'ConnectionRefusedError'), String(err));
`,
  },
  {
    dir: 'packages/transport-tcp',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'README.md'],
    smoke: `${ROUND_TRIP}
import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
await roundTrip(createRegistry([tcp()]), 'tcp://127.0.0.1:0');
`,
  },
  {
    dir: 'packages/transport-ws',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'README.md'],
    forbid: ['zeromq'],
    smoke: `${ROUND_TRIP}
import { createRegistry } from '@tandem/transport';
import { websocket } from '@tandem/transport-ws';
await roundTrip(createRegistry([websocket()]), 'ws://127.0.0.1:0/tandem');
`,
  },
  {
    dir: 'packages/transport-zeromq',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'README.md'],
    forbid: ['ws'],
    smoke: `${ROUND_TRIP}
import { createRegistry } from '@tandem/transport';
import { zeromq } from '@tandem/transport-zeromq';
await roundTrip(createRegistry([zeromq()]), 'zmq+tcp://127.0.0.1:0');
process.exit(0);
`,
  },
  {
    dir: 'packages/core',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'README.md'],
    forbid: ['ws', 'zeromq', 'etcd3', '@grpc/grpc-js'],
    smoke: `
import assert from 'node:assert/strict';
import { z } from 'zod';
import { createMemoryNetwork } from '@tandem/transport';
import { createClient, createReplica, defineService, nodeEnv } from '@tandem/core';
const counter = defineService({
  name: 'counter', request: z.object({ by: z.number() }), reply: z.number(),
  initialState: () => ({ n: 0 }), apply: (s, r) => (s.n += r.by),
  snapshot: (s) => s.n, restore: (n) => ({ n }),
});
const env = nodeEnv({ network: createMemoryNetwork() });
const a = createReplica({ service: counter, env, listen: 'mem://a', peer: 'mem://b', roleHint: 'primary' });
const b = createReplica({ service: counter, env, listen: 'mem://b', peer: 'mem://a', roleHint: 'backup' });
await a.start(); await b.start();
const client = createClient({ service: counter, env, servers: ['mem://a', 'mem://b'] });
assert.equal(await client.call({ by: 2 }), 2);
assert.equal(await client.call({ by: 3 }), 5);
console.log('  replicated counter OK: ' + a.status().role + ' + ' + b.status().role);
process.exit(0);
`,
  },
  {
    dir: 'packages/causal',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'dist/replication/index.js', 'README.md'],
    forbid: ['ws', 'zeromq'],
    smoke: `
import assert from 'node:assert/strict';
import { VectorClock, decodeStamp, encodeStamp } from '@tandem/causal';
const a = VectorClock.from([1, 0, 2]);
const b = VectorClock.from([1, 1, 2]);
assert.equal(a.compare(b), 'before');
b.merge(a);
assert.deepEqual([b.get(0), b.get(1), b.get(2)], [1, 1, 2]);
assert.equal(typeof encodeStamp, 'function');
assert.equal(typeof decodeStamp, 'function');
const replication = await import('@tandem/causal/replication');
assert.ok(Object.keys(replication).length > 0);
console.log('  vector clocks OK; @tandem/causal/replication exports ' + Object.keys(replication).length + ' names');
`,
  },
  {
    dir: 'packages/state-transfer',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'dist/worker/transfer-worker.js', 'README.md'],
    forbid: ['ws', 'zeromq'],
    smoke: `
import assert from 'node:assert/strict';
import { createMemoryNetwork } from '@tandem/transport';
import { mapSnapshotSupport, nodeTransferEnv, ServiceHost, SlabMap, slabMapSupport, SnapshotMap, StateTransferClient, StateTransferServer } from '@tandem/state-transfer';
const kv = {
  name: 'kv', version: 1,
  initialState: () => new SnapshotMap(),
  apply: (state, req) => (state.set(req.key, req.value), 'OK'),
  ...mapSnapshotSupport(),
};
const env = nodeTransferEnv({ network: createMemoryNetwork() });
const primary = new ServiceHost({ service: kv, env });
for (let i = 0; i < 5000; i++) primary.execute({ key: 'k' + i, value: 'v' + i });
const server = new StateTransferServer({ env, source: primary });
const address = await server.listen('mem://st');
const joiner = new ServiceHost({ service: kv, env });
const client = new StateTransferClient({ env, service: kv, sink: joiner, nodeId: 'b', address });
const result = await client.run();
assert.equal(result.records, 5000);
assert.equal(joiner.head().digest, primary.head().digest);
await client.close(); await server.close();
console.log('  streamed ' + result.records + ' records, digests equal at seq ' + result.seq);
// The same state in a SlabMap (entries outside the heap), streamed as packed slices.
const slabKv = { ...kv, name: 'slab-kv', initialState: () => new SlabMap(), ...slabMapSupport() };
const slabPrimary = new ServiceHost({ service: slabKv, env });
for (let i = 0; i < 5000; i++) slabPrimary.execute({ key: 'k' + i, value: 'v' + i });
const slabServer = new StateTransferServer({ env, source: slabPrimary });
const slabJoiner = new ServiceHost({ service: slabKv, env });
const slabClient = new StateTransferClient({ env, service: slabKv, sink: slabJoiner, nodeId: 'c', address: await slabServer.listen('mem://st-slab') });
const slabResult = await slabClient.run();
assert.equal(slabResult.records, 5000);
assert.equal(slabJoiner.head().digest, slabPrimary.head().digest);
assert.equal(slabJoiner.state.get('k4999'), 'v4999');
await slabClient.close(); await slabServer.close();
console.log('  SlabMap: streamed ' + slabResult.records + ' records, digests equal at seq ' + slabResult.seq);
// Served from a worker thread (dist/worker/transfer-worker.js; TCP from the installed @tandem/transport-tcp).
const { createRegistry } = await import('@tandem/transport');
const { tcp } = await import('@tandem/transport-tcp');
const { serveTransfersInWorker } = await import('@tandem/state-transfer');
const tcpEnv = nodeTransferEnv({ network: createRegistry([tcp()]) });
const sharedKv = { ...slabKv, initialState: () => new SlabMap({ shared: true }) };
const owner = new ServiceHost({ service: sharedKv, env: tcpEnv });
for (let i = 0; i < 5000; i++) owner.execute({ key: 'k' + i, value: 'v' + i });
const served = await serveTransfersInWorker({ env: tcpEnv, source: owner, listen: 'tcp://127.0.0.1:0' });
const workerJoiner = new ServiceHost({ service: sharedKv, env: tcpEnv });
const workerClient = new StateTransferClient({ env: tcpEnv, service: sharedKv, sink: workerJoiner, nodeId: 'd', address: served.address });
const workerResult = await workerClient.run();
assert.equal(workerJoiner.head().digest, owner.head().digest);
assert.equal(served.answered.next ?? 0, 0);
await workerClient.close(); await served.close();
console.log('  worker thread: streamed ' + workerResult.records + ' records from shared slabs, digests equal');
process.exit(0);
`,
  },
  {
    dir: 'packages/witness-etcd',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'dist/witness.js', 'dist/shard-map.js', 'README.md'],
    forbid: ['ws', 'zeromq'],
    smoke: `
import assert from 'node:assert/strict';
import { EtcdWitness, isWitnessEtcdError, parseWitnessUrl, validateShardMap } from '@tandem/witness-etcd';
assert.deepEqual(parseWitnessUrl('etcd://127.0.0.1:1,127.0.0.1:2/tandem/pack'), { endpoints: ['127.0.0.1:1', '127.0.0.1:2'], prefix: '/tandem/pack' });
assert.equal(validateShardMap({ version: 1, shards: [{ name: 's1', servers: ['tcp://a:1', 'tcp://b:1'] }] }).shards.length, 1);
// Nobody listens on port 1: the etcd3/gRPC client loads, fails fast, and the failure is the typed error.
const witness = EtcdWitness.fromUrl('etcd://127.0.0.1:1/tandem/pack', { dialTimeoutMs: 500 });
const err = await witness.mayServeAlone({ nodeId: 'a', epoch: 1, reason: 'startup' }).then(() => undefined, (e) => e);
assert.ok(isWitnessEtcdError(err, 'WitnessUnavailableError'), String(err));
assert.equal(witness.holds(), false);
const line = witness.describe();
assert.match(line, /etcd unreachable/);
await witness.close();
console.log('  witness refused with etcd unreachable: ' + err.name + ' (' + line.slice(0, 60) + '…)');
`,
  },
  {
    dir: 'packages/metrics-prometheus',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'dist/http.js', 'dist/replica.js', 'README.md'],
    forbid: ['ws', 'zeromq', 'etcd3'],
    smoke: `
import assert from 'node:assert/strict';
import { Registry, clientMetrics, isMetricsPrometheusError, replicaMetrics, serveMetrics } from '@tandem/metrics-prometheus';
const registry = new Registry();
const sink = replicaMetrics(null, { registry });
sink.request('ok', 2);
sink.event({ type: 'takeover', epoch: 2, appliedSeq: 5, silenceMs: 300 });
clientMetrics(null, { registry: new Registry() }).call('ok', 1);
const server = await serveMetrics(registry, '127.0.0.1:0');
const res = await fetch(server.url);
assert.equal(res.status, 200);
const text = await res.text();
assert.match(text, /^tandem_replica_requests_total{outcome="ok"} 1$/m);
assert.match(text, /^tandem_replica_takeovers_total 1$/m);
assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
await server.close();
const err = await serveMetrics(registry, '0.0.0.0:0').then(() => undefined, (e) => e);
assert.ok(isMetricsPrometheusError(err, 'InsecureMetricsListenError'), String(err));
console.log('  /metrics served on ' + server.address + '; 0.0.0.0 refused: ' + err.name);
`,
  },
  {
    dir: 'packages/xconference',
    expectFiles: ['dist/index.js', 'dist/index.d.ts', 'README.md'],
    forbid: [],
    smoke: `
import assert from 'node:assert/strict';
import { Conference, RequestCategory, XCB_PROTO_VERSION, parseFocusTrigger, requestCategory } from '@tandem/xconference';
assert.equal(requestCategory(67), RequestCategory.DrawOrChange); // PolyRectangle goes to every participant
assert.equal(typeof XCB_PROTO_VERSION, 'string');
const conference = new Conference({ participants: [{ name: ':1', connect: () => { throw new Error('not used'); } }], trigger: parseFocusTrigger('ctrl+alt+f') });
assert.deepEqual(conference.participantNames, [':1']);
conference.close('smoke over');
assert.equal(conference.isClosed, true);
console.log('  conference OK (xcb-proto ' + XCB_PROTO_VERSION + ' tables)');
process.exit(0);
`,
  },
];

/** The package and every @tandem package it depends on, transitively (from the workspace package.json files). */
function tandemClosure(name, seen = new Set()) {
  if (seen.has(name)) return [...seen];
  seen.add(name);
  const pkg = PACKAGES.find((p) => p.name === name);
  const manifest = JSON.parse(readFileSync(join(root, pkg.dir, 'package.json'), 'utf8'));
  // Optional peers are installed too: the smoke scripts use them as a user who wants them would.
  for (const dep of [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
    if (dep.startsWith('@tandem/')) tandemClosure(dep, seen);
  return [...seen];
}

function run(cmd, args, cwd, options = {}) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function step(what) {
  console.log(`check:pack: ${what}`);
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'tandem-pack-'));
  const tarballs = [];
  try {
    for (const pkg of PACKAGES) {
      const dir = join(root, pkg.dir);
      const { name } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      pkg.name = name;
      step(`build ${name}`);
      rmSync(join(dir, 'dist'), { recursive: true, force: true });
      run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], dir);
      step(`pack ${name}`);
      const [info] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], dir));
      const files = info.files.map((f) => f.path);
      for (const f of pkg.expectFiles) if (!files.includes(f)) throw new Error(`${name}: tarball lacks ${f}`);
      const stray = files.filter((f) => /\.test\.|(^|\/)test\//.test(f));
      if (stray.length) throw new Error(`${name}: tarball contains test files: ${stray.join(', ')}`);
      tarballs.push(join(work, info.filename));
      console.log(`  ${info.filename}: ${files.length} files, ${info.size} bytes`);
    }

    // Each package is installed ALONE (with only the @tandem tarballs it depends on) into its own empty
    // folder, so a missing dependency or an unwanted one (e.g. ws under @tandem/core) shows.
    const tarballOf = new Map(PACKAGES.map((p, i) => [p.name, tarballs[i]]));
    for (const pkg of PACKAGES) {
      const app = join(work, `app-${pkg.dir.replaceAll('/', '-')}`);
      mkdirSync(app);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check-app', private: true, type: 'module' }, null, 2));
      const needed = tandemClosure(pkg.name).map((n) => {
        const t = tarballOf.get(n);
        if (!t) throw new Error(`${pkg.name} depends on ${n}, which is not in the PACKAGES list`);
        return t;
      });
      step(`npm install ${pkg.name} alone (${needed.length} tarball(s)) into an empty folder`);
      run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...needed], app);
      for (const forbidden of pkg.forbid ?? []) {
        if (existsSync(join(app, 'node_modules', forbidden))) throw new Error(`${pkg.name} installed alone pulled in ${forbidden}`);
        console.log(`  ${pkg.name} alone does not pull in ${forbidden}`);
      }
      const file = join(app, 'smoke.mjs');
      writeFileSync(file, pkg.smoke);
      step(`smoke ${pkg.dir}`);
      const out = run(process.execPath, [file], app, { timeout: 60_000 });
      process.stdout.write(out);
    }
    console.log(`check:pack: OK (${PACKAGES.map((p) => p.dir).join(', ')})`);
  } finally {
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  const detail = [err?.stderr, err?.stdout].filter(Boolean).join('\n');
  console.error(`check:pack: FAIL — ${err?.message ?? err}${detail ? `\n${detail}` : ''}`);
  process.exit(1);
});
