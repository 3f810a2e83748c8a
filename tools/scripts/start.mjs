#!/usr/bin/env node
// `npm start [-- demo args]`: build the kv app and what it depends on (Nx; cached when unchanged), then run
// the failover demo: `tandem-kv demo` (primary + backup as child processes, SIGKILL mid-load, rejoin,
// verification). Extra arguments are passed through, e.g. `npm start -- --json --clients 16`.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);

process.stderr.write('Building tandem-kv (npx nx run kv:build)…\n');
const build = spawnSync('npx', ['nx', 'run', 'kv:build', '--output-style=static'], {
  cwd: root,
  // keep stdout clean for `--json`: the build's output goes to stderr
  stdio: ['ignore', 2, 2],
  env: { ...process.env, NX_DAEMON: 'false' },
});
if (build.status !== 0) {
  process.stderr.write(`Build failed (exit ${build.status ?? build.signal}); see the output above.\n`);
  process.exit(build.status ?? 1);
}
const demo = spawnSync(process.execPath, [join(root, 'apps/kv/dist/cli.js'), 'demo', ...args], { cwd: root, stdio: 'inherit' });
process.exit(demo.status ?? 1);
