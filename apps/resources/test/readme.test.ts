// The README's code example, run as written in a child Node process (from the sources): it must print
// "true 1 1" — the resource answered at once, then the use was sequenced after the initialisation.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const pkg = join(import.meta.dirname, '..');

it('README example: FIG. 4b with two replicated pairs in one process', () => {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(example).toContain('createCausalReplica');
  const file = join(pkg, `.readme-example-${process.pid}.mts`);
  writeFileSync(file, example);
  try {
    const run = spawnSync(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', file], {
      cwd: pkg,
      encoding: 'utf8',
      timeout: 30_000,
      // As a user's terminal-less run prints it: CI exports FORCE_COLOR, which makes console.log colour
      // booleans and numbers.
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('true 1 1');
  } finally {
    rmSync(file, { force: true });
  }
});
