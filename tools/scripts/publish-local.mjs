#!/usr/bin/env node
// `npm run check:publish`: proves the packages publish with the release tooling and install from a registry
// as a user gets them.
//   1. `nx release --dry-run` (version + changelog preview, nx.json "release") prints its plan and changes
//      no file (hashes of every manifest, the lockfile and CHANGELOG.md compared before and after).
//   2. builds every project (`nx run-many -t build`; --no-build skips it when dist/ is current).
//   3. starts verdaccio (tools/release/local-registry.mjs: pinned version installed on demand into a cache
//      folder) on a free 127.0.0.1 port: @tandem/* local only, everything else proxied to the machine's npm
//      registry.
//   4. `nx release publish --registry <local>` publishes every release project there (no git operation).
//   5. in an empty folder whose .npmrc names only the local registry (and a fresh npm cache):
//      `npm install @tandem/kv`, every "resolved" URL in its lockfile is the local registry, and
//      `npx tandem-kv demo --duration 2` passes and reports nothing lost or doubled.
//   6. in another: `npm install @tandem/core @tandem/transport-tcp` (zod arrives as core's peer, one copy)
//      and tools/release/two-replicas.mjs runs: two replica processes on TCP, the primary SIGKILLed, the
//      counter's sums continue. A third folder asking for zod@3 next to @tandem/core gets npm's ERESOLVE peer
//      conflict (zod is core's peer dependency, ^4.1.0), not a silent second zod.
// verdaccio is stopped by pid on every exit path (finally, SIGINT/SIGTERM, process exit). Prints OK or FAIL.
// Options: --no-build, --keep (leave the temp folder and print it).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureVerdaccio, machineRegistry, startRegistry } from '../release/local-registry.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = new Set(process.argv.slice(2));
const nx = join(root, 'node_modules', '.bin', 'nx');
const t0 = Date.now();

function step(what) {
  console.log(`check:publish [${((Date.now() - t0) / 1000).toFixed(0)} s]: ${what}`);
}

/** The commands running now (run()), ended by a SIGINT/SIGTERM of this script. */
const running = new Set();

/** Runs a command, output captured; throws with the output on a non-zero exit or after timeoutMs. */
function run(cmd, argv, cwd, { env, timeoutMs = 300_000 } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      if (code === 0) resolveRun(out);
      else {
        const err = new Error(
          `${cmd} ${argv.join(' ')} (in ${cwd}) failed: ${code ?? signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms)` : ''}`,
        );
        err.output = out;
        reject(err);
      }
    });
  });
}

/** The release projects: every packages/* and apps/* folder with a package.json that is not private. */
function releasePackages() {
  const found = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group))) {
      const file = join(root, group, name, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, 'utf8'));
      if (!manifest.private) found.push({ dir: `${group}/${name}`, name: manifest.name, version: manifest.version });
    }
  }
  return found;
}

/** A child's output, each line prefixed with "  | ". */
function indent(text) {
  return `${text.trimEnd().replace(/^/gm, '  | ')}\n`;
}

function fingerprint(files) {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(existsSync(f) ? readFileSync(f) : 'absent');
  return hash.digest('hex');
}

async function releaseDryRun(packages) {
  const watched = [
    ...packages.map((p) => join(root, p.dir, 'package.json')),
    join(root, 'package.json'),
    join(root, 'package-lock.json'),
    join(root, 'CHANGELOG.md'),
  ];
  const before = fingerprint(watched);
  step('nx release --dry-run --skip-publish (what `npm run release -- --dry-run` prints)');
  const out = await run(nx, ['release', '--dry-run', '--skip-publish'], root, { env: { NX_DAEMON: 'false' } });
  const versions = [...out.matchAll(/New version (\S+) written to manifest: (\S+)/g)];
  if (versions.length !== packages.length)
    throw Object.assign(new Error(`the dry run versions ${versions.length} projects, expected ${packages.length}`), { output: out });
  if (!/CHANGELOG\.md/.test(out) || !/dry-run/.test(out)) throw Object.assign(new Error('the dry run shows no changelog'), { output: out });
  if (fingerprint(watched) !== before) throw new Error('nx release --dry-run changed a manifest, the lockfile or CHANGELOG.md');
  console.log(`  would version ${versions.length} packages to ${versions[0][1]} and write CHANGELOG.md; no file changed`);
}

/** An empty folder that sees only the local registry: own .npmrc, own user config, own npm cache. */
function consumerFolder(work, name, registry) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `publish-check-${name}`, private: true, type: 'module' }, null, 2)}\n`,
  );
  const npmrc = `registry=${registry}\n`;
  writeFileSync(join(dir, '.npmrc'), npmrc);
  writeFileSync(join(work, 'consumer.npmrc'), npmrc);
  return dir;
}

async function npmInstallFromLocal(dir, work, registry, pkgs) {
  step(`npm install ${pkgs.join(' ')} from ${registry} alone, into an empty folder`);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--cache', join(work, 'npm-cache'), ...pkgs], dir, {
    env: { npm_config_userconfig: join(work, 'consumer.npmrc'), npm_config_registry: registry },
    timeoutMs: 600_000,
  });
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
  const entries = Object.entries(lock.packages).filter(([path]) => path !== '');
  const elsewhere = entries.filter(([, e]) => e.resolved && !e.resolved.startsWith(registry));
  if (elsewhere.length) throw new Error(`installed from elsewhere: ${elsewhere.map(([p, e]) => `${p} ${e.resolved}`).join(', ')}`);
  const tandem = entries
    .filter(([path]) => /(^|\/)node_modules\/@tandem\//.test(path))
    .map(([path, e]) => `${path.split('node_modules/').pop()}@${e.version}`);
  console.log(`  ${entries.length} packages, every one resolved from ${registry}; @tandem: ${tandem.join(', ')}`);
  return lock;
}

async function main() {
  const packages = releasePackages();
  step(`${packages.length} release projects: ${packages.map((p) => p.name).join(', ')}`);
  await releaseDryRun(packages);

  if (args.has('--no-build')) {
    const unbuilt = packages.filter((p) => !existsSync(join(root, p.dir, 'dist', 'index.js')));
    if (unbuilt.length) throw new Error(`--no-build, but not built: ${unbuilt.map((p) => p.dir).join(', ')} (npm run build)`);
  } else {
    step('build every project (nx run-many -t build)');
    await run(nx, ['run-many', '-t', 'build', '--outputStyle=static'], root, { env: { NX_DAEMON: 'false' }, timeoutMs: 900_000 });
  }

  const work = mkdtempSync(join(tmpdir(), 'tandem-publish-'));
  let registry;
  const onSignal = (signal) => {
    console.error(`check:publish: ${signal}, stopping verdaccio and ${running.size} running command(s)`);
    for (const child of running) child.kill('SIGTERM');
    void Promise.resolve(registry?.stop())
      .catch(() => {})
      .finally(() => {
        if (!args.has('--keep')) rmSync(work, { recursive: true, force: true });
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const bin = ensureVerdaccio((line) => step(line));
    registry = await startRegistry({ bin, work: join(work, 'registry'), uplink: machineRegistry(root), log: (line) => step(line) });
    const url = registry.url;

    // The publishing side's npm sees the local registry and a token (verdaccio lets anyone publish @tandem/*,
    // but npm will not publish without credentials).
    const publishRc = join(work, 'publish.npmrc');
    writeFileSync(publishRc, `registry=${url}\n@tandem:registry=${url}\n//${new URL(url).host}/:_authToken=local-check\n`);
    step(`nx release publish --registry ${url} --first-release --parallel=2`);
    // --first-release: this registry is new, so the executor skips its `npm view` of each package first.
    const published = await run(
      nx,
      ['release', 'publish', '--registry', url, '--first-release', '--parallel=2', '--outputStyle=static'],
      root,
      {
        env: { NX_DAEMON: 'false', npm_config_userconfig: publishRc },
        timeoutMs: 600_000,
      },
    );
    for (const p of packages) {
      const res = await fetch(new URL(p.name.replace('/', '%2f'), url));
      const versions = res.ok ? Object.keys((await res.json()).versions ?? {}) : [];
      if (!versions.includes(p.version))
        throw Object.assign(new Error(`${p.name}@${p.version} is not in the local registry (HTTP ${res.status})`), { output: published });
    }
    console.log(`  ${packages.length} packages in the local registry: ${packages.map((p) => `${p.name}@${p.version}`).join(', ')}`);
    // @tandem/* is never proxied: a name nobody published here is unknown, whatever the uplink holds.
    const missing = await fetch(new URL('@tandem%2fnot-published-here', url));
    if (missing.status !== 404)
      throw new Error(`@tandem/not-published-here should be a 404 in the local registry, got HTTP ${missing.status}`);
    console.log('  @tandem/* is local only (an unpublished @tandem name is a 404, not proxied)');

    const kvDir = consumerFolder(work, 'kv-user', url);
    await npmInstallFromLocal(kvDir, work, url, ['@tandem/kv']);
    step('npx tandem-kv demo --duration 2 (from the installed package)');
    const demo = await run('npx', ['--no', 'tandem-kv', 'demo', '--duration', '2'], kvDir, {
      env: { npm_config_userconfig: join(work, 'consumer.npmrc') },
      timeoutMs: 180_000,
    });
    process.stdout.write(indent(demo));
    if (!/tandem-kv demo PASSED/.test(demo) || !/^\s*lost\s+0\b/m.test(demo) || !/^\s*duplicated\s+0\b/m.test(demo))
      throw new Error('the demo did not report PASSED with nothing lost and nothing duplicated');

    const coreDir = consumerFolder(work, 'core-user', url);
    const lock = await npmInstallFromLocal(coreDir, work, url, ['@tandem/core', '@tandem/transport-tcp']);
    const zods = Object.keys(lock.packages).filter((p) => /(^|\/)node_modules\/zod$/.test(p));
    if (zods.length !== 1) throw new Error(`expected one zod (core's peer dependency), found ${zods.length}: ${zods.join(', ')}`);
    console.log(`  zod installed once, as @tandem/core's peer dependency (${lock.packages[zods[0]].version})`);
    // A user on another zod major gets npm's peer conflict, not a second zod under @tandem/core whose schema
    // types do not match theirs (what a regular dependency did).
    const zod3Dir = consumerFolder(work, 'zod3-user', url);
    step('npm install zod@3 @tandem/core must refuse (zod is a peer dependency: ^4.1.0)');
    const conflict = await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--loglevel=error', '--cache', join(work, 'npm-cache'), 'zod@3', '@tandem/core'],
      zod3Dir,
      {
        env: { npm_config_userconfig: join(work, 'consumer.npmrc'), npm_config_registry: url },
      },
    ).then(
      () => 'installed',
      (err) => `${err.message}\n${err.output}`,
    );
    if (!/ERESOLVE/.test(conflict)) throw new Error(`zod@3 next to @tandem/core should be an ERESOLVE peer conflict, got: ${conflict}`);
    console.log('  refused with ERESOLVE (conflicting peer dependency zod)');
    copyFileSync(join(root, 'tools', 'release', 'two-replicas.mjs'), join(coreDir, 'two-replicas.mjs'));
    step('node two-replicas.mjs (two replica processes on tcp, SIGKILL the primary)');
    const example = await run(process.execPath, ['two-replicas.mjs'], coreDir, { timeoutMs: 120_000 });
    process.stdout.write(indent(example));
    if (!/two-replica example OK/.test(example)) throw new Error('the two-replica example did not report OK');

    step(`OK in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await registry?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (args.has('--keep')) console.log(`check:publish: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`check:publish: FAIL — ${err?.message ?? err}${err?.output ? `\n${err.output}` : ''}`);
  process.exit(1);
});
