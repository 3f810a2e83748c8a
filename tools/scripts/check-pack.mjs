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
];

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

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check-app', private: true, type: 'module' }, null, 2));
    step(`npm install ${tarballs.length} tarballs into an empty folder`);
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs], app);

    for (const pkg of PACKAGES) {
      const file = join(app, `smoke-${pkg.dir.replaceAll('/', '-')}.mjs`);
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
