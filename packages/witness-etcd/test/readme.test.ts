// The README's first example, run as written in a child Node process against a real etcd (the example reads
// the etcd URL from $ETCD): a pair with a witness each; the backup takes over with etcd's grant.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EtcdServer, startEtcd } from '@tandem/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireEtcd } from './etcd-harness.js';

const pkg = join(import.meta.dirname, '..');
const haveEtcd = requireEtcd('witness-etcd README');

describe.skipIf(!haveEtcd)('README', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('the example runs: 2, then 5 from the backup that took over with the witness', async () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(example).toContain('witness: witness()');
    // Inside the package (ignored .tmp/) so that bare specifiers resolve through the workspace.
    mkdirSync(join(pkg, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(pkg, '.tmp', 'readme-'));
    try {
      const file = join(dir, 'example.mts');
      writeFileSync(file, example);
      const child = spawn(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', file], {
        cwd: pkg,
        // Plain output whatever the runner sets (CI and Nx set FORCE_COLOR, which colours console.log(2)).
        env: { ...withoutForceColor(process.env), NO_COLOR: '1', ETCD: `etcd://${etcd.hostPort}` },
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
      expect(stdout.trim().split('\n')).toEqual(['2', '5 solo-primary']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function withoutForceColor(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _forced, ...rest } = env;
  return rest;
}
