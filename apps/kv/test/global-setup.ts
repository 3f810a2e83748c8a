/**
 * The fault tests run the built CLI (`node apps/kv/dist/cli.js serve …`) in child processes. `nx test`
 * builds first; when vitest is run directly, build here if dist is missing or older than the sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..', '..');
const SOURCES = [
  'apps/kv/src',
  'packages/core/src',
  'packages/metrics-prometheus/src',
  'packages/state-transfer/src',
  'packages/transport/src',
  'packages/transport-tcp/src',
  'packages/transport-ws/src',
  'packages/transport-zeromq/src',
];

function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const cli = join(root, 'apps/kv/dist/cli.js');
  // The stamp is written after a build from here; nx may restore dist from its cache with old mtimes.
  const stamp = join(root, 'apps/kv/dist/.build-stamp');
  const built = existsSync(cli) ? Math.max(statSync(cli).mtimeMs, existsSync(stamp) ? statSync(stamp).mtimeMs : 0) : 0;
  const src = Math.max(...SOURCES.map((d) => newest(join(root, d))));
  const depsBuilt = SOURCES.every((d) => !existsSync(join(root, d)) || existsSync(join(root, d, '..', 'dist', 'index.js')));
  if (built >= src && depsBuilt) return;
  process.stderr.write('[kv tests] building apps/kv and its dependencies (dist missing or stale)…\n');
  const r = spawnSync('npx', ['nx', 'run', 'kv:build'], { cwd: root, stdio: 'inherit', env: { ...process.env, NX_DAEMON: 'false' } });
  if (r.status !== 0) throw new Error(`building kv failed (exit ${r.status}); run "npx nx run kv:build" to see why`);
  writeFileSync(stamp, new Date().toISOString() + '\n');
}
