#!/usr/bin/env node
// `npm run chaos -- [options]`: build tandem-kv (its replicas run from apps/kv/dist; skip with --no-build),
// then run main.ts. Build output goes to stderr so --json stays clean. main.ts runs in its own process
// group, so a terminal's Ctrl-C reaches it once, forwarded from here, and never reaches the replicas
// directly: the runner stops them itself (by pid, also a SIGSTOPped one) and still reports.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const extraAt = args.indexOf('--extra-serve-args');
const own = extraAt >= 0 ? args.slice(0, extraAt) : args;
if (!own.includes('--no-build') && !own.includes('--help') && !own.includes('-h')) {
  const build = spawnSync('npx', ['nx', 'run', 'kv:build', '--output-style=static'], {
    cwd: root,
    stdio: ['ignore', 2, 2],
    env: { ...process.env, NX_DAEMON: 'false' },
  });
  if (build.status !== 0) {
    process.stderr.write(`chaos: building tandem-kv failed (exit ${build.status ?? build.signal})\n`);
    process.exit(build.status ?? 1);
  }
}
// No @tandem/source condition: the clients run the built @tandem/core, as the replicas do.
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'tools/chaos/main.ts'), ...args], {
  cwd: root,
  stdio: 'inherit',
  detached: true,
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    try {
      process.kill(child.pid, sig === 'SIGHUP' ? 'SIGTERM' : sig);
    } catch {
      /* already gone */
    }
  });
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
