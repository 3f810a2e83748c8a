/** The runner end to end on a fixture: what passes, what fails and why, what is listed as not run. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

it('starts the fixtures a block needs, stops them by pid, and type-checks typecheck-only blocks without running them', () => {
  const fixtures = 'tools/doc-examples/test/fixtures/fixtures.md';
  const r = spawnSync(process.execPath, [join(root, 'tools/scripts/doc-examples.mjs'), '--files', fixtures, '--jobs', '1', '--verbose'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CI: 'false' },
  });
  const out = r.stdout;
  const line = (status: string, at: number): RegExp => new RegExp(`^${status}\\s+${fixtures.replace(/[.]/g, '\\.')}:${at} `, 'm');
  expect(out).toMatch(line('PASS', 4)); // type-checked with its prelude; running it would throw
  expect(out).toMatch(line('FAIL', 10)); // a type error, reported at its line in the Markdown file
  expect(out).toMatch(/tsc --strict: .*fixtures\.md:11: error TS2322/);
  expect(out).toMatch(line('FAIL', 15)); // typecheck-only is for ts
  expect(out).toMatch(line('FAIL', 34)); // an unknown fixture
  expect(out).toMatch(/needs="redis"/);
  // Where the system packages are installed the fixtures run; otherwise a loud not-run with the install command.
  const etcd = existsSync('/usr/bin/etcd');
  expect(out).toMatch(line(etcd ? 'PASS' : 'NOT-RUN', 20));
  const x = existsSync('/usr/bin/Xvfb') && existsSync('/usr/bin/xdpyinfo');
  expect(out).toMatch(line(x ? 'PASS' : 'NOT-RUN', 26));
  if (x) {
    // The Xvfb servers are gone once the runner exits: no lock file of the display it used is left.
    const display = /name of display:\s*:(\d+)/.exec(out)?.[1];
    expect(display).toBeDefined();
    expect(existsSync(`/tmp/.X${display}-lock`)).toBe(false);
  } else expect(out).toMatch(/\*\*\* NOT RUNNING .*apt-get install/);
  expect(r.status).toBe(1);
}, 150_000);
