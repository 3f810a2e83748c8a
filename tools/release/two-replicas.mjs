// A replicated counter in two processes over TCP, written the way a user of the published packages writes it
// (plain ESM, only `@tandem/core`, `@tandem/transport-tcp` and what they bring: `@tandem/transport`, and zod
// as core's peer dependency). `npm run check:publish` copies this file into an empty folder where those two
// packages were installed from a local registry, and runs it.
//
//   node two-replicas.mjs                 the test: starts replica a (primary) and b (backup) as child
//                                         processes, calls the counter, SIGKILLs the primary, calls again
//                                         (b takes over), checks every sum, exits 0 — or 1 with the reason.
//   node two-replicas.mjs replica ID LISTEN PEER ROLE      one replica (what the test starts, twice).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createClient, createReplica, defineService, nodeEnv } from '@tandem/core';
import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { z } from 'zod';

const counter = defineService({
  name: 'counter',
  request: z.object({ by: z.number().int() }),
  reply: z.number(),
  initialState: () => ({ n: 0 }),
  apply: (state, request) => {
    state.n += request.by;
    return state.n;
  },
  snapshot: (state) => state.n,
  restore: (n) => ({ n }),
});

const env = () => nodeEnv({ network: createRegistry([tcp()]) });

if (process.argv[2] === 'replica') {
  const [, , , nodeId, listen, peer, roleHint] = process.argv;
  const replica = createReplica({ service: counter, env: env(), nodeId, listen, peer, roleHint });
  await replica.start();
  console.log(`READY ${nodeId} ${replica.status().role}`);
  const stop = async () => {
    await replica.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  await main();
}

/** A port nobody listens on right now (127.0.0.1). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts one replica process; resolves with it once it printed READY (its role). */
function startReplica(nodeId, listen, peer, roleHint) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'replica', nodeId, listen, peer, roleHint], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`replica ${nodeId} not ready after 20 s`)), 20_000);
    child.once('exit', (code, signal) => reject(new Error(`replica ${nodeId} exited early (${code ?? signal})`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const ready = /READY \S+ (\S+)/.exec(out);
      if (ready) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        console.log(`replica ${nodeId} (pid ${child.pid}) ready as ${ready[1]} at ${listen}`);
        resolve({ child, role: ready[1] });
      }
    });
  });
}

async function main() {
  const [portA, portB] = [await freePort(), await freePort()];
  const a = `tcp://127.0.0.1:${portA}`;
  const b = `tcp://127.0.0.1:${portB}`;
  const children = [];
  const killAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  try {
    const primary = await startReplica('a', a, b, 'primary');
    children.push(primary.child);
    const backup = await startReplica('b', b, a, 'backup');
    children.push(backup.child);
    assert.match(primary.role, /primary/); // solo-primary until b joins
    assert.equal(backup.role, 'backup');

    const client = createClient({ service: counter, env: env(), servers: [a, b] });
    let expected = 0;
    for (let i = 1; i <= 5; i++) {
      expected += i;
      assert.equal(await client.call({ by: i }), expected);
    }
    console.log(`5 calls answered by the primary: sum ${expected}`);

    primary.child.kill('SIGKILL');
    await new Promise((resolve) => primary.child.once('exit', resolve));
    console.log(`SIGKILL primary a (pid ${primary.child.pid})`);

    const started = Date.now();
    for (let i = 1; i <= 5; i++) {
      expected += i;
      assert.equal(await client.call({ by: i }), expected, 'an acknowledged increment was lost or applied twice');
    }
    console.log(`5 more calls answered after the failover (first ones within ${Date.now() - started} ms): sum ${expected}`);
    await client.close();

    backup.child.kill('SIGTERM');
    await new Promise((resolve) => backup.child.once('exit', resolve));
    console.log(`two-replica example OK: sum ${expected}, nothing lost across the SIGKILL`);
  } finally {
    killAll();
  }
}
