#!/usr/bin/env node
// `npm run bench:replication [-- --json --quick --transport tcp]`: build tandem-kv (its replicas run as
// child processes from apps/kv/dist), then run bench.ts. Build output goes to stderr so --json stays clean.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = spawnSync('npx', ['nx', 'run', 'kv:build', '--output-style=static'], {
  cwd: root,
  stdio: ['ignore', 2, 2],
  env: { ...process.env, NX_DAEMON: 'false' },
});
if (build.status !== 0) {
  process.stderr.write(`bench:replication: building kv failed (exit ${build.status ?? build.signal})\n`);
  process.exit(build.status ?? 1);
}
const bench = spawnSync(
  process.execPath,
  ['--conditions=@tandem/source', '--import', 'tsx', join(root, 'tools/bench-replication/bench.ts'), ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
process.exit(bench.status ?? 1);
