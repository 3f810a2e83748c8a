/** The runner end to end on a fixture: what passes, what fails and why, what is listed as not run. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const fixture = 'tools/doc-examples/test/fixtures/sample.md';

it('runs every block of a file and fails on each kind of mistake', () => {
  const r = spawnSync(process.execPath, [join(root, 'tools/scripts/doc-examples.mjs'), '--files', fixture], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = r.stdout;
  const line = (status: string, at: number): RegExp => new RegExp(`^${status}\\s+${fixture.replace(/[.]/g, '\\.')}:${at} `, 'm');
  expect(out).toMatch(line('PASS', 3)); // js, its expect printed
  expect(out).toMatch(line('PASS', 7)); // ts, strict-clean, its output block printed
  expect(out).toMatch(line('FAIL', 17)); // an expectation never printed
  expect(out).toMatch(/expected "a line that is never printed"/);
  expect(out).toMatch(line('FAIL', 22)); // never exits: killed at its timeout
  expect(out).toMatch(/did not exit within 2 s/);
  expect(out).toMatch(line('FAIL', 26)); // left `sleep 30` running
  expect(out).toMatch(/left processes running/);
  expect(out).toMatch(line('NOT-RUN', 32));
  expect(out).toMatch(/reason: a fixture's reason/);
  expect(out).toMatch(line('FAIL', 36)); // no language
  expect(out).toMatch(line('FAIL', 40)); // a type error
  expect(out).toMatch(/tsc --strict: .*sample\.md:41: error TS2322/);
  expect(out).toMatch(line('FAIL', 46)); // an annotation with a typo
  expect(out).toMatch(/unknown key "not-rn"/);
  expect(out).toMatch(line('FAIL', 51)); // a shard map without shards
  expect(out).toMatch(/doc examples: 2 passed, 7 failed, 1 not run \(reason given\), 1 text blocks/);
  expect(r.status).toBe(1);
}, 150_000);
