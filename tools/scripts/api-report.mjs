#!/usr/bin/env node
/**
 * API reports: one `docs/api/<package>.api.md` per public entry point of every published package
 * (`docs/api/<package>.<subpath>.api.md` for a subpath export such as `@tandem/transport/compliance`),
 * made by API Extractor from the built `.d.ts` (run `npm run build` first, or let this script do it).
 *
 *   npm run api                      build (cached by Nx), then rewrite the reports
 *   npm run api -- --check           build, then exit 1 if a report differs from the committed one
 *   npm run api -- --check --no-build  the same on the `dist/` already there (CI, right after `npm ci`)
 *
 * Settings shared by every report: api-extractor.base.json at the root. The packages and entry points
 * come from the workspaces' package.json files: every non-private package, every `exports` entry that
 * has a `types` condition, except `./internal` (explicitly unstable, for the repository's own packages).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import apiExtractor from '@microsoft/api-extractor';

const { Extractor, ExtractorConfig } = apiExtractor;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reportFolder = join(root, 'docs', 'api');
const tempFolder = join(root, '.tmp', 'api');
const REPORT_SUFFIX = '.api.md';
const QUIET = new Set([
  'console-preamble',
  'console-compiler-version-notice',
  'console-api-report-created',
  'console-api-report-copied',
  'console-api-report-not-copied',
  'console-api-report-unchanged',
  'console-api-report-folder-missing',
  'console-writing-api-report',
]);

/** Every public entry point: { pkg, dir, subpath, dts, report } (report: file name without suffix). */
export function entryPoints() {
  const out = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const dir = join(root, group, name);
      const pjPath = join(dir, 'package.json');
      if (!existsSync(pjPath)) continue;
      const pj = JSON.parse(readFileSync(pjPath, 'utf8'));
      if (pj.private) continue;
      const exportsMap = typeof pj.exports === 'object' && pj.exports !== null ? pj.exports : { '.': { types: pj.types } };
      for (const [subpath, target] of Object.entries(exportsMap)) {
        const types = typeof target === 'object' && target !== null ? target.types : undefined;
        // `./internal` entry points are explicitly unstable (shared between the repository's packages only): no report.
        if (typeof types !== 'string' || /^\.\/internal(\/|$)/.test(subpath)) continue;
        const suffix = subpath === '.' ? '' : `.${subpath.replace(/^\.\//, '').replaceAll('/', '.')}`;
        out.push({ pkg: pj.name, dir, subpath, dts: join(dir, types), report: `${basename(dir)}${suffix}` });
      }
    }
  }
  return out;
}

function build() {
  const r = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('api: the build failed; no report was checked or written');
    process.exit(1);
  }
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  if (!args.includes('--no-build')) build();
  const base = JSON.parse(readFileSync(join(root, 'api-extractor.base.json'), 'utf8'));
  mkdirSync(tempFolder, { recursive: true });
  if (!check) mkdirSync(reportFolder, { recursive: true });

  let failed = 0;
  const expected = new Set();
  for (const e of entryPoints()) {
    const label = e.subpath === '.' ? e.pkg : `${e.pkg}/${e.subpath.replace(/^\.\//, '')}`;
    expected.add(`${e.report}${REPORT_SUFFIX}`);
    if (!existsSync(e.dts)) {
      console.error(`api: ${relative(root, e.dts)} is missing (${label}): build first`);
      failed++;
      continue;
    }
    const configObject = {
      ...base,
      projectFolder: e.dir,
      mainEntryPointFilePath: e.dts,
      apiReport: { ...base.apiReport, reportFileName: e.report, reportFolder, reportTempFolder: tempFolder },
    };
    const config = ExtractorConfig.prepare({
      configObject,
      configObjectFullPath: join(root, 'api-extractor.base.json'),
      packageJsonFullPath: join(e.dir, 'package.json'),
    });
    const messages = [];
    const result = Extractor.invoke(config, {
      localBuild: !check,
      showVerboseMessages: false,
      printApiReportDiff: check,
      messageCallback: (m) => {
        // Whether a report changed is said once below, in our words; so is the bundled compiler's version.
        if (QUIET.has(m.messageId)) {
          m.handled = true;
          return;
        }
        if (m.logLevel === 'error' || m.logLevel === 'warning') messages.push(m.text);
      },
    });
    const file = `docs/api/${e.report}${REPORT_SUFFIX}`;
    if (result.errorCount > 0) {
      console.error(`api: ${label}: API Extractor failed (${result.errorCount} errors)\n  ${messages.join('\n  ')}`);
      failed++;
    } else if (result.apiReportChanged) {
      if (check) {
        console.error(`api: ${file} is not current for ${label}: run npm run api (the new report is in ${relative(root, tempFolder)}/)`);
        failed++;
      } else console.log(`api: wrote ${file}`);
    } else if (!check) console.log(`api: ${file} unchanged`);
  }

  // Reports of entry points that no longer exist.
  const present = existsSync(reportFolder) ? readdirSync(reportFolder).filter((f) => f.endsWith(REPORT_SUFFIX)) : [];
  for (const f of present) {
    if (expected.has(f)) continue;
    if (check) {
      console.error(`api: docs/api/${f} belongs to no entry point any more: run npm run api`);
      failed++;
    } else {
      rmSync(join(reportFolder, f));
      console.log(`api: removed docs/api/${f}`);
    }
  }
  if (check && failed === 0) console.log(`api: ${expected.size} reports are current`);
  if (failed > 0) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
