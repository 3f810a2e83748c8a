#!/usr/bin/env node
/**
 * `npm run gen`: regenerate every generated file of the repository.
 * `npm run gen -- --check`: regenerate in memory and exit 1 if a committed output is not current (CI).
 *
 * The generators, each with its own --check:
 *   - tools/xproto-gen/generate.mjs   the X11 request/reply/event/error tables of @tandem/xconference,
 *                                     from xcb-proto's XML (Debian package xcb-proto, /usr/share/xcb/)
 *   - tools/scripts/gen-wasm.mjs      the WebAssembly modules (base64 in TypeScript) of @tandem/state-transfer,
 *                                     from their .wat sources (the wabt devDependency)
 * Generated files are excluded from formatting and linting (biome.json), so that what a generator writes is
 * exactly what is committed.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const check = process.argv.slice(2).includes('--check');

export const GENERATORS = [
  { name: 'X11 tables (xcb-proto)', script: 'tools/xproto-gen/generate.mjs' },
  { name: 'WebAssembly modules', script: 'tools/scripts/gen-wasm.mjs' },
];

let failed = 0;
for (const g of GENERATORS) {
  const r = spawnSync(process.execPath, [join(root, g.script), ...(check ? ['--check'] : [])], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) {
    console.log(`gen: ${g.name}: ${check ? 'current' : 'written'} (${g.script})`);
  } else {
    console.error(
      `gen: ${g.name}: ${check ? 'NOT current, or could not be checked' : 'FAILED'} (node ${g.script}${check ? ' --check' : ''} exited ${r.status ?? r.signal})`,
    );
    failed++;
  }
}
if (failed > 0) {
  if (check) console.error('gen: run `npm run gen` and commit the result');
  process.exit(1);
}
