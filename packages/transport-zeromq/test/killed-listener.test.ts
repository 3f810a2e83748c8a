// A real listener process killed with SIGKILL: the dialler's connection must close promptly (remote).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { isTransportError } from '@tandem/transport';
import { zeromq } from '../src/index.js';

const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

it('notices a SIGKILLed listener process on the dialling side', async () => {
  const script = fileURLToPath(new URL('./listener-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (s: string) => resolve(s.trim()));
    child.once('exit', () => reject(new Error('listener process exited early')));
  });
  const conn = await zeromq().dial(address);
  await conn.send(new Uint8Array([1]));
  const it = conn[Symbol.asyncIterator]();
  expect([...((await it.next()).value as Uint8Array)]).toEqual([1]);
  child.kill('SIGKILL');
  const info = await conn.closed;
  expect(info.by).toBe('remote');
  expect((await it.next()).done).toBe(true);
  expect(isTransportError(await conn.send(new Uint8Array(1)).catch((e: unknown) => e), 'ConnectionClosedError')).toBe(true);
});
