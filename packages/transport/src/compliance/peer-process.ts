/**
 * Child-process peer for the compliance suite: `node peer-process.js <module> <address>` imports the
 * module, creates its transport, dials the address, sends one message, and then stays connected until it
 * is killed. `node peer-process.js <module> listen <address>` listens instead, prints the address it
 * listens on and echoes until killed. Any failure exits with code 1 and a message on stderr.
 */
import { pathToFileURL } from 'node:url';
import type { Transport } from '../types.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const listen = args[1] === 'listen';
  const [moduleArg, address] = listen ? [args[0], args[2]] : args;
  if (!moduleArg || !address) throw new Error('usage: peer-process <module> <address> | peer-process <module> listen <address>');
  const url = moduleArg.startsWith('file:') ? moduleArg : pathToFileURL(moduleArg).href;
  const mod = (await import(url)) as {
    createTransport?: () => Transport | Promise<Transport>;
    default?: () => Transport | Promise<Transport>;
  };
  const factory = mod.createTransport ?? mod.default;
  if (typeof factory !== 'function') throw new Error(`${moduleArg} exports no createTransport()`);
  const transport = await factory();
  if (listen) {
    // Listens, prints its address, echoes every message, runs until killed.
    const listener = await transport.listen(address);
    process.stdout.write(`${listener.address}\n`);
    for await (const conn of listener) {
      void (async () => {
        for await (const m of conn) await conn.send(m);
      })().catch(() => undefined);
    }
    return;
  }
  const conn = await transport.dial(address);
  await conn.send(new TextEncoder().encode(`peer ${process.pid} ready`));
  process.stdout.write('ready\n');
  setInterval(() => {}, 60_000); // stay alive until killed
  for await (const _ of conn) {
    // drain whatever the parent sends
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`peer-process failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
