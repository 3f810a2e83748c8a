// The README's example, run as written in a child Node process: an in-memory pair with replicaMetrics, three
// calls, a scrape of serveMetrics; it prints three series and exits on its own.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const pkg = join(import.meta.dirname, '..');

describe('README', () => {
  it('the example runs and prints the series it names', async () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(example).toContain('serveMetrics(registry');
    mkdirSync(join(pkg, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(pkg, '.tmp', 'readme-'));
    try {
      const file = join(dir, 'example.mts');
      writeFileSync(file, example);
      const { FORCE_COLOR: _forced, ...env } = process.env;
      const child = spawn(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', file], {
        cwd: pkg,
        env: { ...env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      clearTimeout(timer);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.trim().split('\n')).toEqual([
        'tandem_replica_requests_total{outcome="ok"} 3',
        'tandem_replica_is_primary 1',
        'tandem_replica_epoch 1',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
