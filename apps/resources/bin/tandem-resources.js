#!/usr/bin/env node
// The tandem-resources command. It lives outside dist/ so that npm can link it at install time, before the
// build; it runs the built CLI (dist/ is built by `npm install` at the repository root, or `npm run build`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('tandem-resources: not built yet — run `npm run build` at the repository root\n');
  process.exit(1);
}
await import(cli.href);
