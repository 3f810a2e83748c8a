// The README's first example, run as written (only the package specifiers are pointed at the sources) in a
// child Node process: it must print Pro2's initialisation before Pro1's use, and exit by itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const pkg = join(import.meta.dirname, '..');

it('README example: FIG. 4b in miniature', () => {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const example = /```js\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(
    example
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '').length,
  ).toBeLessThanOrEqual(10);
  const source = example
    .replace("'@tandem/causal'", JSON.stringify(pathToFileURL(join(pkg, 'src/index.ts')).href))
    .replace("'@tandem/transport'", JSON.stringify(pathToFileURL(join(pkg, '../transport/src/index.ts')).href));
  const dir = mkdtempSync(join(tmpdir(), 'causal-readme-'));
  try {
    const file = join(dir, 'example.mts');
    writeFileSync(file, source);
    const run = spawnSync(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', file], {
      cwd: pkg,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual(['pro2 initialise', 'pro1 use resource']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
