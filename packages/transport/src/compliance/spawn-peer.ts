/**
 * Runs the compliance peer (`peer-process`) in a real child process that the suite can SIGKILL.
 * TypeScript (source) runs through `node --conditions=@tandem/source --import tsx`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KillablePeer } from './harness.js';

function runnerPath(): string {
  for (const ext of ['.js', '.ts']) {
    const p = fileURLToPath(new URL(`./peer-process${ext}`, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('compliance peer-process runner not found next to spawn-peer');
}

export function spawnPeerProcess(peerModule: string, address: string): KillablePeer & { pid: number | undefined; exited: Promise<number | null> } {
  const runner = runnerPath();
  const modulePath = peerModule.startsWith('file:') ? fileURLToPath(peerModule) : peerModule;
  const needsTsx = runner.endsWith('.ts') || /\.[mc]?ts$/.test(modulePath);
  const args = [...(needsTsx ? ['--conditions=@tandem/source', '--import', 'tsx'] : []), runner, modulePath, address];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 10_000) stderr += s;
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      if (code !== null && code !== 0 && stderr) process.stderr.write(`[compliance peer ${child.pid}] ${stderr}`);
      resolve(code);
    });
    child.once('error', () => resolve(null));
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
  };
  return {
    pid: child.pid,
    exited,
    kill,
    dispose: async () => {
      kill();
      await exited;
    },
  };
}
