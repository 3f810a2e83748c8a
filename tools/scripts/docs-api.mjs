#!/usr/bin/env node
/**
 * API reference: HTML made by TypeDoc from the sources of every public entry point, into dist-docs/api/
 * (not committed; open dist-docs/api/index.html).
 *
 *   npm run docs:api              build the reference; exit 1 on any TypeDoc warning, e.g. an exported
 *                                 symbol without a doc comment (each one is listed with its file and line)
 *   npm run docs:api -- --check   the same checks without writing the HTML (CI)
 *
 * The entry points are the ones the API reports cover (tools/scripts/api-report.mjs): every `exports` entry
 * of every non-private workspace package, except `./internal` (explicitly unstable, for the repository's own
 * packages). TypeDoc reads each entry's `@tandem/source` file (the TypeScript source), so no build is needed.
 * Each module is named after its import specifier (`@tandem/transport/compliance`), not its file path.
 * Settings: typedoc.json at the root (validation, which kinds must be documented, output folder); it has no
 * entry points of its own, so run TypeDoc through this script, not `npx typedoc`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, ReflectionKind, TSConfigReader, TypeDocReader } from 'typedoc';
import { entryPoints } from './api-report.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The entry points as source files: [{ specifier: '@tandem/transport/compliance', source: '/abs/.../src/compliance/index.ts' }]. */
export function sourceEntryPoints() {
  const out = [];
  for (const e of entryPoints()) {
    const pj = JSON.parse(readFileSync(join(e.dir, 'package.json'), 'utf8'));
    const target = pj.exports?.[e.subpath];
    const src = typeof target === 'object' && target !== null ? target['@tandem/source'] : undefined;
    if (typeof src !== 'string') throw new Error(`docs:api: ${e.pkg} exports ${e.subpath} without an @tandem/source condition`);
    const source = resolve(e.dir, src);
    if (!existsSync(source)) throw new Error(`docs:api: ${relative(root, source)} (${e.pkg} ${e.subpath}) does not exist`);
    out.push({ specifier: e.subpath === '.' ? e.pkg : `${e.pkg}/${e.subpath.replace(/^\.\//, '')}`, source });
  }
  return out;
}

/**
 * Where the symbols TypeDoc's notDocumented check flags are (its own message names the file, not the line):
 * `file:line kind name`.
 * A simplified copy of TypeDoc's rule: a signature is documented when it or its declaration has a comment.
 */
function undocumented(project, kindNames, packages) {
  let kinds = 0;
  for (const k of kindNames) kinds |= ReflectionKind[k];
  if (kinds & ReflectionKind.FunctionOrMethod) kinds |= ReflectionKind.CallSignature;
  if (kinds & ReflectionKind.Accessor) kinds |= ReflectionKind.GetSignature | ReflectionKind.SetSignature;
  const out = new Set();
  for (let r of project.getReflectionsByKind(kinds)) {
    if (r.kindOf(ReflectionKind.FunctionOrMethod | ReflectionKind.Accessor)) continue; // checked through their signatures
    let p = r.parent;
    while (p && !p.kindOf(ReflectionKind.Parameter)) p = p.parent;
    if (p) continue;
    // A function type (`log?: (line: string) => void`): its property or variable needs the comment.
    if (r.kindOf(ReflectionKind.CallSignature) && r.parent?.kindOf(ReflectionKind.TypeLiteral) && r.parent.parent) r = r.parent.parent;
    if (r.hasComment() || (r.kindOf(ReflectionKind.SomeSignature) && r.parent?.hasComment())) continue;
    const id = project.getSymbolIdFromReflection(r);
    if (!id || !packages.includes(id.packageName)) continue;
    const src = r.sources?.[0] ?? r.parent?.sources?.[0];
    const where = src ? `${relative(root, src.fullFileName)}:${src.line}` : '?';
    out.add(`${where} ${ReflectionKind[r.kind]} ${r.getFriendlyFullName()}`);
  }
  return [...out].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

async function main() {
  const check = process.argv.slice(2).includes('--check');
  process.chdir(root);
  const entries = sourceEntryPoints();
  // TypeDoc checks doc comments only in the packages named here (by default: the root package, `tandem`).
  const packages = [...new Set(entryPoints().map((e) => e.pkg))];
  const options = { entryPoints: entries.map((e) => e.source), packagesRequiringDocumentation: packages };
  const app = await Application.bootstrapWithPlugins(options, [new TypeDocReader(), new TSConfigReader()]);
  const project = await app.convert();
  if (!project) {
    console.error('docs:api: TypeDoc could not convert the sources (see above)');
    process.exit(1);
  }
  // Name each module after its import specifier: TypeDoc would name it after its path (packages/core/src).
  const bySource = new Map(entries.map((e) => [e.source, e.specifier]));
  const modules = project.getChildrenByKind(ReflectionKind.Module);
  for (const m of modules) {
    const file = m.sources?.[0]?.fullFileName;
    const specifier = file === undefined ? undefined : bySource.get(resolve(file));
    if (specifier === undefined) {
      console.error(`docs:api: module ${m.name} (${file}) is not one of the entry points`);
      process.exit(1);
    }
    m.name = specifier;
  }
  project.children?.sort((a, b) => a.name.localeCompare(b.name));
  app.validate(project);
  const missing = undocumented(project, app.options.getValue('requiredToBeDocumented'), packages);
  if (missing.length > 0) console.error(`docs:api: without a doc comment:\n  ${missing.join('\n  ')}`);
  const out = app.options.getValue('out');
  if (app.logger.hasErrors() || app.logger.hasWarnings()) {
    console.error(
      `docs:api: ${app.logger.errorCount} errors, ${app.logger.warningCount} warnings (every exported symbol needs a doc comment: typedoc.json)`,
    );
    process.exitCode = 1; // not process.exit: the long list above must reach a piped stderr in full
    return;
  }
  if (check) {
    console.log(`docs:api: ${entries.length} entry points, 0 warnings (no HTML written: --check)`);
    return;
  }
  await app.generateDocs(project, out);
  if (app.logger.hasErrors() || app.logger.hasWarnings()) {
    process.exitCode = 1;
    return;
  }
  console.log(`docs:api: ${entries.length} entry points, 0 warnings; open ${relative(root, join(out, 'index.html'))}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
