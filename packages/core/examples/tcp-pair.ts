// Two replica processes and a client over TCP (docs/WRITING-A-SERVICE.md, "Two processes over TCP").
// Run: node --import tsx tcp-pair.ts (or compile it). It starts the two replicas of ./counter.js as child
// processes (this file, with `replica` arguments), calls, SIGKILLs the primary, calls again (the backup
// took over), restarts the crashed replica (it rejoins as backup with a copy of the state), SIGKILLs the
// other one, calls once more (the restarted one took over and holds everything), and stops all.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient, createReplica, nodeEnv } from '@tandem/core';
import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { counter } from './counter.js';

const network = createRegistry([tcp()]); // tcp:// (and tls:// with tcp({ tls })); add ws(), zeromq() as needed
const A = 'tcp://127.0.0.1:7401';
const B = 'tcp://127.0.0.1:7402';

if (process.argv[2] === 'replica') {
  // One replica process: tcp-pair.ts replica LISTEN PEER primary|backup — on its own host in production.
  const [listen, peer, role] = process.argv.slice(3);
  if (listen === undefined || peer === undefined || (role !== 'primary' && role !== 'backup'))
    throw new Error('usage: replica LISTEN PEER primary|backup');
  const replica = createReplica({ service: counter, env: nodeEnv({ network }), listen, peer, roleHint: role });
  replica.on((e) => {
    if (e.type === 'role') console.log(`role ${e.role} epoch ${e.epoch}`); // the parent waits for these lines
  });
  process.on('SIGTERM', () => void replica.stop().then(() => process.exit(0)));
  await replica.start();
} else {
  const children = new Set<ChildProcess>();
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL'); // never leave a replica behind, even on an error
  });
  /** Starts a replica process; `role(r)` resolves once it reports role `r` on its stdout. */
  const startReplica = (listen: string, peer: string, hint: 'primary' | 'backup') => {
    const self = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, [...process.execArgv, self, 'replica', listen, peer, hint], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    child.on('exit', () => children.delete(child));
    const seen: string[] = [];
    const waiting: (() => void)[] = [];
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      seen.push(line);
      for (const w of waiting.splice(0)) w();
    });
    const role = (r: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (seen.some((l) => l.startsWith(`role ${r} `))) resolve();
          else if (child.exitCode !== null) reject(new Error(`replica ${listen} exited before role ${r}`));
          else waiting.push(check);
        };
        check();
      });
    return { child, role };
  };
  const stop = async (child: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal); // by pid: this child only
    await exited;
  };

  const a = startReplica(A, B, 'primary');
  const b = startReplica(B, A, 'backup');
  await Promise.all([a.role('primary'), b.role('backup')]); // b joined a: a pair
  const client = createClient({ service: counter, env: nodeEnv({ network }), servers: [A, B] });
  console.log(`add 5 → ${(await client.call({ op: 'add', by: 5 })).value}`);

  await stop(a.child, 'SIGKILL'); // the primary process dies; the backup takes over
  console.log(`add 2 after the primary's SIGKILL → ${(await client.call({ op: 'add', by: 2 })).value}`);

  // Restart the crashed replica with the same addresses and roleHint 'backup': it finds the serving
  // replica, receives a copy of its state and becomes its backup.
  const a2 = startReplica(A, B, 'backup');
  await a2.role('backup');
  console.log('the restarted replica rejoined as backup');
  await stop(b.child, 'SIGKILL'); // now the other one dies: the restarted replica takes over with every write
  console.log(`get after the second SIGKILL → ${(await client.call({ op: 'get' })).value}`);

  await client.close();
  await stop(a2.child, 'SIGTERM');
}
