/**
 * A real listener process killed with SIGKILL: the dialler's connection must close promptly ('remote'),
 * its iterator end, and a send fail with ConnectionClosedError. (The suite itself kills the dialling side;
 * this is the mirror case, for adapters whose liveness detection lives on the dialling side.)
 */
import { expect } from 'vitest';
import { isTransportError } from '../errors.js';
import type { Transport } from '../types.js';
import { spawnListenerProcess } from './spawn-peer.js';

/** Dials a listener in a child process, SIGKILLs it, and expects the connection to close (by remote) and later sends to fail. */
export async function expectKilledListenerNoticed(opts: {
  /** The dialling side's transport. */
  readonly transport: Transport;
  /** A module exporting `createTransport()` for the listener process (the suite's `peerModule`). */
  readonly peerModule: string;
  /** Where the listener process listens, e.g. 'ws://127.0.0.1:0/tandem'. */
  readonly listenAddress: string;
}): Promise<void> {
  const listener = await spawnListenerProcess(opts.peerModule, opts.listenAddress);
  try {
    const conn = await opts.transport.dial(listener.address);
    await conn.send(new Uint8Array([1]));
    const it = conn[Symbol.asyncIterator]();
    expect([...((await it.next()).value as Uint8Array)]).toEqual([1]);
    await listener.kill();
    const info = await conn.closed;
    expect(info.by).toBe('remote');
    expect((await it.next()).done).toBe(true);
    expect(isTransportError(await conn.send(new Uint8Array(1)).catch((e: unknown) => e), 'ConnectionClosedError')).toBe(true);
  } finally {
    await listener.dispose();
  }
}
