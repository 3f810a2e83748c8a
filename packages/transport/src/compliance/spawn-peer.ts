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

type PeerProcess = KillablePeer & { pid: number | undefined; exited: Promise<number | null> };

/** A peer process that dials `address`, says hello and stays connected until killed. */
export function spawnPeerProcess(peerModule: string, address: string): PeerProcess {
  const { peer, child } = startRunner(peerModule, [address]);
  child.stdout.resume();
  return peer;
}

/** A peer process that listens on `listenAddress` and echoes until killed; resolves with the address it listens on. */
export async function spawnListenerProcess(peerModule: string, listenAddress: string): Promise<PeerProcess & { address: string }> {
  const { peer, child } = startRunner(peerModule, ['listen', listenAddress]);
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').once('data', (s: string) => resolve(s.trim()));
    void peer.exited.then(() => reject(new Error('listener process exited before printing its address')));
  });
  child.stdout.resume();
  return { ...peer, address };
}

function startRunner(
  peerModule: string,
  runnerArgs: string[],
): { peer: PeerProcess; child: ReturnType<typeof spawn> & { stdout: NodeJS.ReadableStream } } {
  const runner = runnerPath();
  const modulePath = peerModule.startsWith('file:') ? fileURLToPath(peerModule) : peerModule;
  const needsTsx = runner.endsWith('.ts') || /\.[mc]?ts$/.test(modulePath);
  const args = [...(needsTsx ? ['--conditions=@tandem/source', '--import', 'tsx'] : []), runner, modulePath, ...runnerArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 10_000) stderr += s;
  });
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
  const peer: PeerProcess = {
    pid: child.pid,
    exited,
    kill,
    dispose: async () => {
      kill();
      await exited;
    },
  };
  return { peer, child };
}
