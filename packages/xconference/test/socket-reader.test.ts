import { createServer, connect, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readSocket } from '../src/session/socket-reader.js';

describe('readSocket', () => {
  let server: Server | null = null;
  afterEach(() => {
    server?.close();
    server = null;
  });

  /** A connected pair of real sockets on 127.0.0.1. */
  async function pair(): Promise<{ client: Socket; accepted: Socket }> {
    const acceptedP = new Promise<Socket>((res) => {
      server = createServer((s) => res(s));
    });
    await new Promise<void>((res) => server!.listen(0, '127.0.0.1', () => res()));
    const port = (server!.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    await new Promise<void>((res) => client.once('connect', () => res()));
    return { client, accepted: await acceptedP };
  }

  it('switches a real socket to slab reads: every byte arrives in order, and kept chunks are never overwritten', async () => {
    const { client, accepted } = await pair();
    const chunks: Buffer[] = [];
    expect(readSocket(accepted, (c) => chunks.push(c))).toBe(true);
    expect(accepted.listenerCount('data')).toBe(0);
    // 2 MiB in writes of varying sizes: several slabs are used up; the chunks are kept without copying.
    const sent: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const b = Buffer.alloc(1 + ((i * 7919) % 7000), i & 0xff);
      sent.push(b);
      client.write(b);
    }
    const total = sent.reduce((n, b) => n + b.length, 0);
    expect(total).toBeGreaterThan(2 * 256 * 1024);
    client.end();
    await new Promise<void>((res) => accepted.once('close', () => res()));
    expect(Buffer.concat(chunks).equals(Buffer.concat(sent))).toBe(true);
  });

  it('end of stream and close still reach the socket’s listeners', async () => {
    const { client, accepted } = await pair();
    const got: string[] = [];
    readSocket(accepted, (c) => got.push(c.toString()));
    const ended = new Promise<void>((res) => accepted.once('end', () => res()));
    client.end('bye');
    await ended;
    await new Promise<void>((res) => accepted.once('close', () => res()));
    expect(got.join('')).toBe('bye');
  });

  it('falls back to a data listener for a stream without a socket handle', async () => {
    const stream = new PassThrough() as unknown as Socket;
    const got: Buffer[] = [];
    expect(readSocket(stream, (c) => got.push(c))).toBe(false);
    (stream as unknown as PassThrough).write(Buffer.from('abc'));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(got).toString()).toBe('abc');
  });
});
