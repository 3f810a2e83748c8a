// The fuzzer's own tests: every target runs a few hundred inputs and reports in the documented shape; the
// command line prints one JSON object and exits 0/1; and a deliberately broken decoder (a test-only hook of
// the harness, product code untouched) is caught, saved, and replayed — so the harness itself can fail.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCoreSecurity } from '../lib/core-security.js';
import { runTarget, type RunResult } from '../lib/runner.js';
import type { FuzzReport, TargetOptions } from '../lib/types.js';
import { framingTarget } from '../targets/framing.js';
import { brokenDecoder } from '../targets/framing-broken.js';
import { loadTarget, TARGET_INFO, TARGET_NAMES } from '../targets/index.js';
import { type Resolve, resolveSyms } from '../targets/state-transfer.js';

const here = dirname(fileURLToPath(import.meta.url));
const main = resolve(here, '..', 'main.ts');
const root = resolve(here, '..', '..', '..');
const out = mkdtempSync(join(tmpdir(), 'tandem-fuzz-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const options: TargetOptions = { seed: 7, coreSecurity: resolveCoreSecurity('auto') };
/** Inputs per target: a few hundred (the socket-based ctl target is slower per input). */
const RUNS: Record<string, number> = { framing: 400, core: 200, 'state-transfer': 300, x11: 300, 'xconf-ctl': 100 };

function checkShape(r: RunResult, runs: number): void {
  expect(r.runs).toBe(runs);
  for (const k of ['crashes', 'hangs', 'honestFailures', 'stateChanged', 'violations', 'restarts'] as const) {
    expect(Number.isInteger(r[k]) && r[k] >= 0 && r[k] <= runs, `${k} = ${r[k]}`).toBe(true);
  }
  expect(r.ms).toBeGreaterThan(0);
  expect(r.next).toBe(runs);
  for (const f of r.failures) {
    expect(['crash', 'hang', 'honest-failure', 'state-changed', 'violation']).toContain(f.kind);
    expect(typeof f.signature).toBe('string');
    expect(f.count).toBeGreaterThanOrEqual(1);
    expect(f.index).toBeGreaterThanOrEqual(0);
    expect(f.index).toBeLessThan(runs);
    expect(f.path).toMatch(/^\d+(:\d+)*$/);
    expect(typeof f.input).toBe('string');
  }
}

function fuzz(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', main, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fuzz targets', () => {
  for (const name of TARGET_NAMES) {
    it(`${name}: runs ${RUNS[name]} inputs and reports counts and failures in shape`, async () => {
      const r = await runTarget({ target: await loadTarget(name), options, seed: 7, from: 0, runs: RUNS[name]!, shrink: 0 });
      checkShape(r, RUNS[name]!);
      if (name !== 'core') expect(r.failures.map((f) => `${f.kind}: ${f.message}`)).toEqual([]); // fixed so far; core: until auth lands
    }, 120_000);
  }

  it('state-transfer: a mutated message that contains itself is cut at the cycle, not recursed into', () => {
    // Found by an on-demand 1M run (input 25,948): a replace mutation inserted an ancestor into a message and
    // the harness overflowed its stack resolving it. Bytes on the wire cannot be cyclic: the cycle becomes null.
    const msg: Record<string, unknown> = { t: 'ack', transferId: { $sym: 'tid' }, nextChunk: 1024 };
    msg['inner'] = [[msg]];
    const r = { tid: 'T1', seq: 5, digest: 'd', nextSeq: 1, chunks: 0 } as unknown as Resolve;
    expect(resolveSyms(msg, r)).toEqual({ t: 'ack', transferId: 'T1', nextChunk: 1024, inner: [[null]] });
    const shared = { a: 1 };
    expect(resolveSyms({ x: shared, y: [shared] }, r)).toEqual({ x: { a: 1 }, y: [{ a: 1 }] });
  });

  it('x11: a mutated GetImage of 65535×65535 is refused by the fake server, not built (CI run, input 7,264)', () => {
    // Found by .ci/run's 20k run: the fake X server built a 17 GB reply and the input "hung" past 10 s.
    const r = fuzz(['--target', 'x11', '--seed', '1749076171', '--path', '7264', '--input-timeout-ms', '5000']);
    expect(r.stdout + r.stderr).toMatch(/nothing found/);
    expect(r.status).toBe(0);
  }, 120_000);

  it('the same seed gives the same inputs (replayable)', async () => {
    const seen: string[][] = [[], []];
    for (const i of [0, 1]) {
      await runTarget({
        target: framingTarget(),
        options,
        seed: 99,
        from: 5,
        runs: 20,
        shrink: 0,
        onInput: (index, input) =>
          seen[i]!.push(`${index}:${JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v))}`),
      });
    }
    expect(seen[0]).toHaveLength(20);
    expect(seen[0]).toEqual(seen[1]);
  });
});

describe('the harness can fail', () => {
  it('a decoder that corrupts messages is caught (honest failures) and shrunk to a small input', async () => {
    const r = await runTarget({
      target: framingTarget(brokenDecoder('corrupt')),
      options,
      seed: 1,
      from: 0,
      runs: 400,
      shrink: 1,
      shrinkMs: 5000,
    });
    expect(r.honestFailures).toBeGreaterThan(0);
    const f = r.failures.find((x) => x.kind === 'honest-failure')!;
    expect(f.reproducesAlone).toBe(true);
    expect(f.path).toMatch(/^\d+:/); // shrunk
  });

  it('a decoder that allocates before checking the limit is caught (violations)', async () => {
    const r = await runTarget({ target: framingTarget(brokenDecoder('alloc-first')), options, seed: 1, from: 0, runs: 300, shrink: 0 });
    expect(r.violations).toBeGreaterThan(0);
    expect(r.failures.some((f) => f.signature === 'allocation larger than the message limit')).toBe(true);
  });

  it('a decoder that throws untyped errors is caught (crashes)', async () => {
    const r = await runTarget({ target: framingTarget(brokenDecoder('untyped-error')), options, seed: 1, from: 0, runs: 300, shrink: 0 });
    expect(r.crashes).toBeGreaterThan(0);
  });
});

describe('npm run fuzz', () => {
  it('--json prints one report object and exits 0 when nothing is found', () => {
    const r = fuzz(['--target', 'framing,x11', '--runs', '300', '--seed', '3', '--json', '--no-save', '--workers', '2']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as FuzzReport;
    expect(Object.keys(report)).toEqual(['targets', 'ok']);
    expect(report.ok).toBe(true);
    for (const name of ['framing', 'x11'] as const) {
      const t = report.targets[name]!;
      expect(t).toMatchObject({ runs: 300, crashes: 0, hangs: 0, violations: 0, seed: 3, failures: [] });
      expect(t.honestFailures).toBe(TARGET_INFO[name].honest ? 0 : null);
      expect(t.stateChanged).toBe(TARGET_INFO[name].state ? 0 : null);
      expect(t.ms).toBeGreaterThan(0);
    }
    expect(r.stderr).toMatch(/\[fuzz\] seed 3/);
  }, 120_000);

  it('a broken decoder fails the run (exit 1), its input is saved with a replay command, and the replay reproduces it', () => {
    const r = fuzz([
      '--target',
      'framing',
      '--runs',
      '300',
      '--seed',
      '5',
      '--json',
      '--inject',
      'alloc-first',
      '--out',
      out,
      '--shrink',
      '1',
      '--shrink-ms',
      '3000',
    ]);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as FuzzReport;
    expect(report.ok).toBe(false);
    const t = report.targets['framing']!;
    expect(t.violations).toBeGreaterThan(0);
    const f = t.failures[0]!;
    expect(f.replay).toMatch(/^npm run fuzz -- --replay /);
    const files = readdirSync(join(out, 'failures'));
    expect(files.some((n) => n.startsWith('framing-5-'))).toBe(true);
    const saved = JSON.parse(readFileSync(join(root, f.file!), 'utf8')) as { seed: number; path: string; options: TargetOptions };
    expect(saved.seed).toBe(5);
    expect(saved.options.inject).toBe('alloc-first');
    const replay = fuzz(['--replay', join(root, f.file!)]);
    expect(replay.status).toBe(1);
    expect(replay.stdout).toMatch(/reproduced:/);
  }, 120_000);
});
