#!/usr/bin/env node
// `npm run docs:examples`: runs every code block of README.md, docs/ and the package READMEs
// (tools/doc-examples/main.ts says how; `-- --list`, `-- --only docs/TESTING.md:65`, `-- --verbose`).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const r = spawnSync(
  process.execPath,
  ['--conditions=@tandem/source', '--import', 'tsx', join(root, 'tools/doc-examples/main.ts'), ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
