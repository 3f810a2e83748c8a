/**
 * Compliance cases, connecting and carrying messages: both directions byte for byte, order under load,
 * 1,000 connections, empty and maximum-size messages, oversized sends and frames, garbage from a raw peer.
 * (Registered by describeTransportCompliance, in this order: see index.ts.)
 */
import { expect, it } from 'vitest';
import { schemeOf } from '../registry.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type Connection } from '../types.js';
import {
  HEAVY_TEST_TIMEOUT_MS,
  text,
  str,
  within,
  sleep,
  rejection,
  expectTransportError,
  Reader,
  Acceptor,
  serveEcho,
  pattern,
  sameBytes,
  seq,
  seqOf,
  type SuiteContext,
} from './suite-kit.js';

export function messageCases(ctx: SuiteContext): void {
  const { harness, transports, connectedPair } = ctx;
  it('dials and accepts: both ends get an open connection with addresses in the scheme', async () => {
    const t = await transports();
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress()));
    const scheme = schemeOf(listener.address);
    expect(t.server.schemes).toContain(scheme);
    expect(listener.address, 'a port-0 listen must report the chosen port').not.toMatch(/:0(\/|$)/);
    const acceptor = new Acceptor(listener, ctx.scope);
    const client = ctx.scope.conn(await t.client.dial(listener.address));
    const server = await acceptor.next();
    expect(client.isClosed).toBe(false);
    expect(server.isClosed).toBe(false);
    expect(client.id).not.toBe(server.id);
    expect(schemeOf(client.remoteAddress)).toBe(scheme);
    expect(typeof server.remoteAddress).toBe('string');
    expect(client.maxMessageSize).toBe(DEFAULT_MAX_MESSAGE_SIZE);
  });

  it('carries messages in both directions, byte for byte', async () => {
    const { client, server } = await connectedPair();
    const cr = new Reader(client);
    const sr = new Reader(server);
    const up = pattern(1000, 1);
    await client.send(up);
    expect(sameBytes(await sr.next(), up)).toBe(true);
    const down = pattern(777, 2);
    await server.send(down);
    expect(sameBytes(await cr.next(), down)).toBe(true);
    await client.send(text('ping'));
    await server.send(text('pong'));
    expect(str(await sr.next())).toBe('ping');
    expect(str(await cr.next())).toBe('pong');
  });

  it(
    'keeps the order of 10,000 messages in each direction at once',
    async () => {
      const { client, server } = await connectedPair();
      const N = 10_000;
      const readAll = async (conn: Connection): Promise<number[]> => {
        const r = new Reader(conn);
        const got: number[] = [];
        for (let i = 0; i < N; i++) got.push(seqOf(await r.next(`message ${i}`)));
        return got;
      };
      const sendAll = async (conn: Connection): Promise<void> => {
        const sends: Promise<void>[] = [];
        for (let i = 0; i < N; i++) sends.push(conn.send(seq(i, i % 50)));
        await Promise.all(sends);
      };
      const [atServer, atClient] = await Promise.all([readAll(server), readAll(client), sendAll(client), sendAll(server)]);
      const expected = Array.from({ length: N }, (_, i) => i);
      expect(atServer).toEqual(expected);
      expect(atClient).toEqual(expected);
    },
    HEAVY_TEST_TIMEOUT_MS,
  );

  it(
    'serves 1,000 concurrent connections',
    async () => {
      const t = await transports();
      const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress()));
      serveEcho(listener, ctx.scope);
      const N = 1000;
      const results = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          // generous bounds: 1,000 simultaneous handshakes (TLS!) on two busy cores take a while
          const c = ctx.scope.conn(await t.client.dial(listener.address, { timeoutMs: 60_000 }));
          await c.send(text(`client ${i}`));
          const r = new Reader(c);
          const reply = str(await r.next('the echo', 60_000));
          r.release();
          return reply;
        }),
      );
      expect(results).toEqual(Array.from({ length: N }, (_, i) => `client ${i}`));
      await Promise.all(ctx.scope.conns.map((c) => c.close()));
    },
    HEAVY_TEST_TIMEOUT_MS,
  );

  it('carries empty messages as messages', async () => {
    const { client, server } = await connectedPair();
    const sr = new Reader(server);
    const cr = new Reader(client);
    await client.send(text('a'));
    await client.send(new Uint8Array(0));
    await client.send(new Uint8Array(0));
    await client.send(text('b'));
    expect((await sr.next()).byteLength).toBe(1);
    expect((await sr.next()).byteLength).toBe(0);
    expect((await sr.next()).byteLength).toBe(0);
    expect(str(await sr.next())).toBe('b');
    await server.send(new Uint8Array(0));
    expect((await cr.next()).byteLength).toBe(0);
  });

  it(
    'carries a message of exactly the maximum size intact',
    async () => {
      const { client, server } = await connectedPair();
      const big = pattern(client.maxMessageSize, 3);
      const sr = new Reader(server);
      const [, got] = await Promise.all([client.send(big), sr.next('the maximum-size message', 20_000)]);
      expect(got.byteLength).toBe(client.maxMessageSize);
      expect(sameBytes(got, big)).toBe(true);
    },
    HEAVY_TEST_TIMEOUT_MS,
  );

  it('rejects an oversized send with MessageTooLargeError and stays usable', async () => {
    const { client, server } = await connectedPair({ dial: { maxMessageSize: 4096 } });
    expect(client.maxMessageSize).toBe(4096);
    const err = await rejection(client.send(new Uint8Array(4097)), 'an oversized send');
    expectTransportError(err, 'MessageTooLargeError');
    expect((err as { size?: number }).size).toBe(4097);
    expect((err as { limit?: number }).limit).toBe(4096);
    expect(client.isClosed).toBe(false);
    await client.send(new Uint8Array(4096));
    await client.send(text('after'));
    const sr = new Reader(server);
    expect((await sr.next()).byteLength).toBe(4096);
    expect(str(await sr.next())).toBe('after');
  });

  it('closes a connection whose peer sends an oversized message, with MessageTooLargeError, and keeps serving others', async () => {
    const limit = 64 * 1024;
    const { listener, acceptor, client, server } = await connectedPair({ listen: { maxMessageSize: limit } });
    expect(server.maxMessageSize).toBe(limit);
    // the client's own limit is larger, so its send is legal on its side
    await client.send(new Uint8Array(limit + 1)).catch(() => undefined);
    const info = await within(server.closed, 10_000, 'the receiver to close the connection');
    expectTransportError(info.error, 'MessageTooLargeError');
    expect(info.by).toBe('remote');
    const clientInfo = await within(client.closed, 10_000, 'the sender to see the connection closed');
    expect(clientInfo.by).toBe('remote');
    // the listener keeps serving
    const t = await transports();
    const other = ctx.scope.conn(await t.client.dial(listener.address));
    const otherServer = await acceptor.next();
    await other.send(text('still here'));
    expect(str(await new Reader(otherServer).next())).toBe('still here');
  });

  it('survives garbage from a raw peer: the raw stream is dropped, with a ProtocolError on any accepted connection', async () => {
    const t = await transports();
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress()));
    const accepted: Connection[] = [];
    const acceptor = new Acceptor(listener, ctx.scope);
    let accepting = true;
    const acceptLoop = (async () => {
      while (accepting) {
        const r = await acceptor.step(60_000).catch(() => ({ done: true as const, value: undefined }));
        if (r.done) return;
        accepted.push(r.value);
      }
    })();
    const garbage = [text('GET / HTTP/1.1\r\nHost: example\r\nConnection: keep-alive\r\n\r\n'), new Uint8Array(64).fill(0xff)];
    for (const bytes of garbage) {
      const raw = await harness.openRaw(listener.address);
      ctx.scope.cleanups.push(() => raw.destroy());
      raw.write(bytes);
      await within(raw.closed, 10_000, 'the listener to drop the raw stream');
    }
    for (const conn of accepted) {
      const info = await within(conn.closed, 10_000, 'the garbage connection to close');
      expectTransportError(info.error, 'ProtocolError');
    }
    // still serving, and the good connection is the next one accepted
    const good = ctx.scope.conn(await t.client.dial(listener.address));
    await good.send(text('hello'));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !accepted.some((c) => !c.isClosed)) await sleep(5);
    const goodServer = accepted.find((c) => !c.isClosed);
    expect(goodServer, 'the listener must accept a proper connection after garbage').toBeDefined();
    expect(str(await new Reader(goodServer!).next())).toBe('hello');
    accepting = false;
    await listener.close();
    await acceptLoop;
  });
}
