#!/usr/bin/env node
// `npm test`: make sure system packages are there (or say loudly what is missing), run every project's
// tests through Nx, then print one plain summary line "N passed, N failed[, N skipped]" counted from the
// vitest JSON reports that each project writes to .reports/<project>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemPackages, installCommand } from './system-deps.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reports = join(root, '.reports');
const ci = process.env.CI === 'true';
const extraArgs = process.argv.slice(2);

const missing = ensureSystemPackages();
const env = { ...process.env };
if (missing.length > 0) {
  const line = '!'.repeat(100);
  console.error(`\n${line}\n!! Missing system packages: ${missing.join(', ')}\n!! Install them with:  sudo ${installCommand(missing)}`);
  if (ci) {
    console.error(`!! CI=true: the tests that need them (X conference, TLS fixtures, etcd witness) cannot run — failing.\n${line}\n`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  console.error(`!! The tests that need them will be SKIPPED (each prints why).\n${line}\n`);
  env.TANDEM_SKIP_X = `missing system packages: ${missing.join(', ')} — install with: ${installCommand(missing)}`;
}

rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

const nx = spawnSync('npx', ['nx', 'run-many', '-t', 'test', '--outputStyle=stream', ...extraArgs], {
  cwd: root,
  env,
  stdio: 'inherit',
});

let passed = 0;
let failed = 0;
let skipped = 0;
let suitesFailed = 0;
const projects = [];
for (const file of readdirSync(reports).filter((f) => f.endsWith('.json'))) {
  try {
    const r = JSON.parse(readFileSync(join(reports, file), 'utf8'));
    passed += r.numPassedTests ?? 0;
    failed += r.numFailedTests ?? 0;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    suitesFailed += r.numFailedTestSuites ?? 0;
    projects.push(`${file.replace(/\.json$/, '')}: ${r.numPassedTests ?? 0} passed, ${r.numFailedTests ?? 0} failed`);
  } catch (err) {
    console.error(`could not read test report ${file}: ${err.message}`);
    failed += 1;
  }
}
// A test file that failed to load counts as a failure even if no test inside it ran.
if (failed === 0 && suitesFailed > 0) failed = suitesFailed;
if (nx.status !== 0 && failed === 0) failed = 1; // nx failed before any test could report (build error…)

console.log('\nPer project:\n  ' + projects.sort().join('\n  '));
if (missing.length > 0) console.log(`(X tests skipped: missing ${missing.join(', ')})`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(nx.status === 0 && failed === 0 ? 0 : 1);
