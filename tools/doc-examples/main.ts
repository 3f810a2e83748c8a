/**
 * `npm run docs:examples`: extracts every fenced code block of README.md, docs/ (not docs/api: generated;
 * not docs/perf: dated measurement records, see SOURCES below) and the package/app READMEs, and runs it.
 *
 *   ts / js   an ES module in a per-document work folder (node --conditions=@tandem/source --import tsx:
 *             the workspace packages from their sources); ts blocks also pass `tsc --strict --noEmit`
 *             (one program over all of them). Must exit on its own within the timeout (default 60 s),
 *             with status 0, printing every `// expect: TEXT` line of the block in order.
 *   sh        bash -e in the work folder (or the repository root with cwd="repo"), node_modules/.bin on
 *             PATH (tandem-kv, tandem-xconf: the built CLIs). Same rules, `# expect: TEXT`.
 *   json      parsed; with schema="NAME" validated by tools/doc-examples/schemas.ts.
 *   yaml      parsed (the `yaml` package); with schema="NAME" validated like json.
 *   ini       schema="systemd-unit" and file="NAME.service": `systemd-analyze verify` must be silent
 *             (not run, with that reason, where systemd-analyze is not installed).
 *   text      diagrams, formulas, sample output: not code (counted); with `output` above it, the lines
 *             the previous code block must print (added to its expectations).
 * A block that cannot run as written carries `<!-- doc-example: not-run reason="…" -->`: it is listed with
 * its reason. A block without a language, or with an annotation the runner cannot read, fails.
 * A block that leaves processes behind fails (they are killed: each block runs in its own process group).
 * `needs="xvfb:N,etcd"`: Xvfb servers and an etcd started for the block (tools/doc-examples/fixtures.ts); where
 * their system package is missing the block fails under CI=true and is listed as not run (with the install
 * command) otherwise. `typecheck-only` (ts): an option listing or a skeleton, type-checked but not run.
 *
 * Options: --jobs N (default 2) · --only PATH[:LINE] (repeatable) · --list · --verbose · --keep (work folders)
 *          · --files A.md,B.md (instead of the documentation: tools/doc-examples/test/runner.test.ts)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Block, expectationsOf, extractBlocks } from './extract.js';
import { type Fixtures, fixturesMissing, startFixtures } from './fixtures.js';
import { checkExpectations } from './expect.js';
import { notShipped } from './shipped.js';
import { SCHEMAS } from './schemas.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Which Markdown files hold examples. docs/perf is left out: its notes are dated records of one
 * measurement (commands that take minutes and numbers from one machine), not instructions to follow. */
export function sourceFiles(): string[] {
  const out = ['README.md'];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (p !== 'docs/api' && p !== 'docs/perf') walk(p);
      } else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk('docs');
  for (const top of ['packages', 'apps']) {
    for (const d of readdirSync(join(root, top)).sort()) {
      if (existsSync(join(root, top, d, 'README.md'))) out.push(`${top}/${d}/README.md`);
    }
  }
  return out;
}

interface Result {
  block: Block;
  status: 'pass' | 'fail' | 'not-run' | 'text';
  ms: number;
  detail: string;
}

const args = process.argv.slice(2);
const opt = (name: string): string[] => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1] as string] : []));
const jobs = Math.max(1, Number(opt('--jobs')[0] ?? 2));
const only = opt('--only');
const verbose = args.includes('--verbose');
const keep = args.includes('--keep');

function selected(b: Block): boolean {
  if (only.length === 0) return true;
  return only.some((o) => {
    const [f, l] = o.split(':');
    return b.file === f && (l === undefined || Number(l) === b.line);
  });
}

// --files A.md,B.md (relative to the repository root): other Markdown files instead (the runner's own test).
const files = opt('--files')[0]?.split(',') ?? sourceFiles();
const allBlocks = files.flatMap((f) => extractBlocks(f, readFileSync(join(root, f), 'utf8')));
const blocks = allBlocks.filter(selected);

if (args.includes('--list')) {
  for (const b of blocks) {
    const what = b.annotation.notRun !== undefined ? `not-run: ${b.annotation.notRun}` : b.kind;
    console.log(`${b.file}:${b.line} [${b.lang || '—'}] ${what}`);
  }
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'tandem-doc-examples-'));
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));
const binPath = `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;

const slug = (file: string): string => file.replace(/\.md$/, '').replace(/[^\w]+/g, '-');
const fileName = (b: Block): string => b.annotation.file ?? `block-${b.line}.${b.kind}`;
const dirOf = (b: Block): string => join(work, slug(b.file));

/** Runs one command in its own process group; kills the group on timeout and when it leaves processes behind. */
function runProcess(
  cmd: string,
  argv: string[],
  cwd: string,
  timeoutMs: number,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string; timedOut: boolean; leftovers: boolean }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(cmd, argv, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...extraEnv, PATH: binPath, TANDEM_REPO: root, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    let timedOut = false;
    const killGroup = (): boolean => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
        return true;
      } catch {
        return false; // no process left in the group
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // Let the output drain and helpers wind down (tsx's esbuild service exits with its parent), then see
      // whether the block left anything running in its process group.
      const alive = (): boolean => {
        try {
          process.kill(-(child.pid as number), 0);
          return true;
        } catch {
          return false;
        }
      };
      let waited = 0;
      const settle = (): void => {
        if (alive() && waited < 2000) {
          waited += 50;
          setTimeout(settle, 50);
          return;
        }
        const leftovers = alive() && killGroup();
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ code, out, err, timedOut, leftovers });
      };
      setTimeout(settle, 50);
    });
  });
}

/** Lines written before a typecheck-only block's code (its prelude): tsc's line numbers are shifted by them. */
const preludeLines = (b: Block): number =>
  b.annotation.typecheckOnly && b.annotation.prelude !== undefined ? b.annotation.prelude.split('\n').length : 0;
const tail = (s: string, n = 25): string => s.trimEnd().split('\n').slice(-n).join('\n');

async function runCode(b: Block): Promise<Result> {
  if (b.annotation.typecheckOnly) return { block: b, status: 'pass', ms: 1, detail: 'type-checked only (not run)' };
  const needs = b.annotation.needs ?? [];
  const missing = needs.length > 0 ? fixturesMissing(needs) : undefined;
  if (missing !== undefined) {
    if (process.env.CI === 'true') return { block: b, status: 'fail', ms: 1, detail: `CI=true and a fixture is missing: ${missing}` };
    console.log(`\n*** NOT RUNNING ${b.file}:${b.line}: ${missing}\n`);
    return { block: b, status: 'not-run', ms: 0, detail: `fixture missing here: ${missing}` };
  }
  let fixtures: Fixtures | undefined;
  try {
    if (needs.length > 0) fixtures = await startFixtures(needs);
    return await runCodeWith(b, fixtures?.env ?? {});
  } catch (e) {
    return { block: b, status: 'fail', ms: 1, detail: `could not start its fixtures: ${(e as Error).message}` };
  } finally {
    await fixtures?.stop();
  }
}

async function runCodeWith(b: Block, env: Record<string, string>): Promise<Result> {
  const started = Date.now();
  const dir = b.kind === 'sh' && b.annotation.cwd === 'repo' ? root : dirOf(b);
  const file = join(dirOf(b), fileName(b));
  const timeoutMs = (b.annotation.timeoutS ?? 60) * 1000;
  const r =
    b.kind === 'sh'
      ? await runProcess('bash', ['-e', '-o', 'pipefail', file], dir, timeoutMs, env)
      : b.kind === 'ini'
        ? await runProcess('systemd-analyze', ['verify', file], dir, timeoutMs)
        : await runProcess(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', file], dir, timeoutMs, env);
  if (b.kind === 'ini' && r.code === 0 && r.err.trim() !== '') r.code = 1; // a warning is a mistake in the unit
  const ms = Date.now() - started;
  const problems: string[] = [];
  if (r.timedOut) problems.push(`did not exit within ${timeoutMs / 1000} s (killed)`);
  else if (r.code !== 0) problems.push(`exit status ${r.code}`);
  if (r.leftovers && !r.timedOut) problems.push('left processes running after it exited (killed them)');
  problems.push(...checkExpectations(b.expects, r.out));
  if (problems.length === 0) return { block: b, status: 'pass', ms, detail: verbose ? tail(r.out) : '' };
  return { block: b, status: 'fail', ms, detail: `${problems.join('; ')}\n--- stdout\n${tail(r.out)}\n--- stderr\n${tail(r.err)}` };
}

// YAML blocks (e.g. a Prometheus scrape config) need a parser: the `yaml` package of the workspace's tree.
const parseYaml: ((text: string) => unknown) | undefined = await import('yaml').then(
  (m: { parse: (text: string) => unknown }) => m.parse,
  () => undefined,
);

function checkJson(b: Block): Result {
  let value: unknown;
  const format = b.kind === 'yaml' ? 'YAML' : 'JSON';
  try {
    if (b.kind === 'yaml') {
      if (parseYaml === undefined)
        return { block: b, status: 'not-run', ms: 0, detail: 'no YAML parser (the yaml package) is installed here' };
      value = parseYaml(b.code);
    } else value = JSON.parse(b.code);
  } catch (e) {
    return { block: b, status: 'fail', ms: 0, detail: `not valid ${format}: ${(e as Error).message}` };
  }
  if (b.annotation.schema === undefined) return { block: b, status: 'pass', ms: 0, detail: `valid ${format} (no schema named)` };
  const schema = SCHEMAS[b.annotation.schema];
  if (schema === undefined)
    return {
      block: b,
      status: 'fail',
      ms: 0,
      detail: `unknown schema "${b.annotation.schema}" (known: ${Object.keys(SCHEMAS).join(', ')})`,
    };
  const problem = schema.check(value);
  return problem === undefined
    ? { block: b, status: 'pass', ms: 0, detail: `valid ${b.annotation.schema}` }
    : { block: b, status: 'fail', ms: 0, detail: `${b.annotation.schema}: ${problem}` };
}

function classify(b: Block): Result | undefined {
  if (b.annotationErrors.length > 0) return { block: b, status: 'fail', ms: 0, detail: `annotation: ${b.annotationErrors.join('; ')}` };
  if (b.annotation.notRun !== undefined) return { block: b, status: 'not-run', ms: 0, detail: b.annotation.notRun };
  if (b.kind === 'text') return { block: b, status: 'text', ms: 0, detail: '' };
  if (b.annotation.typecheckOnly && b.kind !== 'ts')
    return { block: b, status: 'fail', ms: 0, detail: 'typecheck-only is for ts blocks (tsc --strict)' };
  if (b.kind === 'unknown') {
    return {
      block: b,
      status: 'fail',
      ms: 0,
      detail: `no runnable language "${b.lang}": label it (\`\`\`ts, js, sh, json) or \`\`\`text for a diagram or output`,
    };
  }
  if (b.kind === 'json' || b.kind === 'yaml') return checkJson(b);
  if (b.kind === 'ini') {
    if (b.annotation.schema !== 'systemd-unit' || !b.annotation.file?.endsWith('.service')) {
      return {
        block: b,
        status: 'fail',
        ms: 0,
        detail: 'an ini block needs file="NAME.service" schema="systemd-unit" (or not-run with a reason)',
      };
    }
    if (!existsSync('/usr/bin/systemd-analyze') && !existsSync('/bin/systemd-analyze')) {
      return { block: b, status: 'not-run', ms: 0, detail: 'systemd-analyze is not installed here: the systemd unit was not verified' };
    }
  }
  return undefined;
}

/** One tsc program over every TypeScript block that runs: strict, the repository's compiler options. */
async function typecheck(tsBlocks: Block[]): Promise<Map<Block, string>> {
  const failures = new Map<Block, string>();
  if (tsBlocks.length === 0) return failures;
  const base = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
  const compilerOptions = {
    ...base.compilerOptions,
    strict: true,
    noEmit: true,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    customConditions: ['@tandem/source'],
  };
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({ compilerOptions, files: tsBlocks.map((b) => relative(work, join(dirOf(b), fileName(b)))) }, null, 2),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runProcess(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], work, 300_000);
  const byFile = new Map(tsBlocks.map((b) => [join(dirOf(b), fileName(b)), b]));
  const other: string[] = [];
  for (const line of r.out.split('\n')) {
    const m = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    if (!m) continue;
    const b = byFile.get(join(work, m[1] as string));
    if (b === undefined) {
      other.push(line);
      continue;
    }
    const at = `${b.file}:${b.line + Number(m[2]) - preludeLines(b)}: ${m[4]}`;
    failures.set(b, failures.has(b) ? `${failures.get(b)}\n${at}` : at);
  }
  if (r.code !== 0 && failures.size === 0) {
    const detail = `tsc failed outside the blocks:\n${tail(other.join('\n') || r.out + r.err)}`;
    for (const b of tsBlocks) failures.set(b, detail);
  }
  return failures;
}

async function pool<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
  return results;
}

const report = (r: Result): void => {
  const where = `${r.block.file}:${r.block.line}`;
  const label = r.status === 'pass' ? 'PASS' : r.status === 'fail' ? 'FAIL' : r.status === 'not-run' ? 'NOT-RUN' : 'TEXT';
  if (r.status === 'text' && !verbose) return;
  const time = r.ms > 0 ? ` (${(r.ms / 1000).toFixed(1)} s)` : '';
  const reason = r.status === 'not-run' ? `  reason: ${r.detail}` : '';
  console.log(`${label.padEnd(7)} ${where} ${r.block.lang || '(no language)'}${time}${reason}`);
  if (r.status === 'fail' || (verbose && r.detail && r.status === 'pass')) console.log(r.detail.replace(/^/gm, '        '));
};

const started = Date.now();
console.log(
  `doc examples: ${blocks.length} blocks from ${files.length} files${opt('--files').length > 0 ? '' : ' (README.md; docs/ except docs/api, generated, and docs/perf, dated measurement records; the package and app READMEs)'}, ${jobs} at a time`,
);
const results: Result[] = [];
const toRun: Block[] = [];
for (const b of blocks) {
  const r = classify(b);
  if (r === undefined) toRun.push(b);
  else results.push(r);
}
// A block that `continues` the previous code block of its document runs as one program with it.
const previous = new Map<string, Block>();
for (const b of allBlocks) {
  if (b.annotation.continues) {
    const before = previous.get(b.file);
    if (before === undefined) results.push({ block: b, status: 'fail', ms: 0, detail: 'continues, but no code block comes before it' });
    else {
      b.code = `${before.code}\n${b.code}`;
      b.expects = expectationsOf(b.code, b.kind);
    }
  }
  if (b.annotation.output) {
    const before = previous.get(b.file);
    if (b.kind !== 'text' || before === undefined) {
      const i = results.findIndex((r) => r.block === b);
      if (i >= 0) results.splice(i, 1);
      results.push({ block: b, status: 'fail', ms: 0, detail: 'output must be a text block after a code block' });
    } else before.expects.push(...b.code.split('\n').filter((l) => l.trim() !== ''));
  }
  if (b.kind === 'ts' || b.kind === 'js' || b.kind === 'sh') previous.set(b.file, b);
}
for (const b of toRun) {
  const src = b.annotation.source;
  if (src !== undefined && !b.annotation.continues) {
    const text = existsSync(join(root, src)) ? readFileSync(join(root, src), 'utf8') : undefined;
    const unshipped = notShipped(root, src);
    if (text === undefined || text.trimEnd() !== b.code.trimEnd() || unshipped !== undefined) {
      const detail = text === undefined ? `source ${src} does not exist` : (unshipped ?? `differs from ${src}: keep the two identical`);
      results.push({ block: b, status: 'fail', ms: 0, detail });
    }
  }
}
// Named blocks (file="…") are files the document's other blocks use (a module it imports, a config file):
// written even when only the blocks using them are selected (--only).
const docs = new Set(blocks.map((b) => b.file));
const jsonFiles = allBlocks.filter(
  (b) => docs.has(b.file) && b.annotation.file !== undefined && b.annotation.notRun === undefined && !toRun.includes(b),
);
for (const b of [...jsonFiles, ...toRun]) {
  if (!existsSync(dirOf(b))) {
    mkdirSync(dirOf(b), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(dirOf(b), 'node_modules'), 'dir'); // ./node_modules/.bin as in a project
  }
  const prelude = b.annotation.typecheckOnly && b.annotation.prelude !== undefined ? `${b.annotation.prelude}\n` : '';
  writeFileSync(join(dirOf(b), fileName(b)), `${prelude}${b.code}\n`);
}
for (const r of results) if (r.status !== 'not-run') report(r);
const failedEarly = new Set(results.filter((r) => r.status === 'fail').map((r) => r.block));
toRun.splice(0, toRun.length, ...toRun.filter((b) => !failedEarly.has(b)));

// Blocks of one document run in order (a later block may import an earlier one's file); documents and the
// type check run side by side, `jobs` at a time.
const byDoc = new Map<string, Block[]>();
for (const b of toRun) byDoc.set(b.file, [...(byDoc.get(b.file) ?? []), b]);
let typeFailures = new Map<Block, string>();
const tsBlocks = toRun.filter((b) => b.kind === 'ts');
const tasks: (() => Promise<void>)[] = [
  async () => {
    typeFailures = await typecheck(tsBlocks);
  },
  ...[...byDoc.values()].map((docBlocks) => async () => {
    for (const b of docBlocks) {
      const r = await runCode(b);
      results.push(r);
      if (b.kind !== 'ts') report(r); // a ts block is reported once the type check is done too
    }
  }),
];
await pool(tasks, jobs);
for (const r of results) {
  if (r.block.kind !== 'ts' || (r.status !== 'pass' && r.status !== 'fail') || r.ms === 0) continue;
  const detail = typeFailures.get(r.block);
  if (detail !== undefined) {
    r.status = 'fail';
    r.detail = `tsc --strict: ${detail}${r.detail ? `\n${r.detail}` : ''}`;
  }
  report(r);
}
if (tsBlocks.length > 0)
  console.log(
    `tsc --strict --noEmit over ${tsBlocks.length} TypeScript blocks: ${typeFailures.size === 0 ? 'clean' : `${typeFailures.size} with errors (FAIL above)`}`,
  );

const notRun = results.filter((r) => r.status === 'not-run');
if (notRun.length > 0) {
  console.log(`\nNot run (${notRun.length}), each with its reason:`);
  for (const r of notRun) report(r);
}
const count = (s: Result['status']): number => results.filter((r) => r.status === s).length;
const failed = results.filter((r) => r.status === 'fail');
console.log(
  `\ndoc examples: ${count('pass')} passed, ${failed.length} failed, ${notRun.length} not run (reason given), ${count('text')} text blocks (diagrams/output) — ${blocks.length} blocks in ${new Set(blocks.map((b) => b.file)).size} files, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
if (failed.length > 0) console.log(`failed: ${failed.map((r) => `${r.block.file}:${r.block.line}`).join(', ')}`);
if (!keep) rmSync(work, { recursive: true, force: true });
else console.log(`work folders kept in ${work}`);
process.exit(failed.length > 0 ? 1 : 0);
