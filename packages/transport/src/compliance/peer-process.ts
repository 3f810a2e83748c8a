/**
 * Child-process peer for the compliance suite: `node peer-process.js <module> <address>` imports the
 * module, creates its transport, dials the address, sends one message, and then stays connected until it
 * is killed. Any failure exits with code 1 and a message on stderr.
 */
import { pathToFileURL } from 'node:url';
import type { Transport } from '../types.js';

async function main(): Promise<void> {
  const [moduleArg, address] = process.argv.slice(2);
  if (!moduleArg || !address) throw new Error('usage: peer-process <module> <address>');
  const url = moduleArg.startsWith('file:') ? moduleArg : pathToFileURL(moduleArg).href;
  const mod = (await import(url)) as { createTransport?: () => Transport | Promise<Transport>; default?: () => Transport | Promise<Transport> };
  const factory = mod.createTransport ?? mod.default;
  if (typeof factory !== 'function') throw new Error(`${moduleArg} exports no createTransport()`);
  const transport = await factory();
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
