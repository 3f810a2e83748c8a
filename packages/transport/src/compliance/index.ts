/**
 * The transport compliance suite. Every adapter runs it from its own test file:
 *
 *   import { describeTransportCompliance } from '@tandem/transport/compliance';
 *   describeTransportCompliance({ name: 'tcp', createTransport: () => tcp(), ... });
 *
 * Every transport runs the same tests: where a capability does not exist (no sockets, no processes), the
 * harness supplies the transport's equivalent (see harness.ts) and the same assertions apply.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isTransportError, type TransportErrorName } from '../errors.js';
import { encodeFrameHeader, STREAM_PREAMBLE } from '../framing.js';
import { schemeOf } from '../registry.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type Connection, type Listener, type Transport } from '../types.js';
import type { ComplianceHarness } from './harness.js';
import { spawnPeerProcess } from './spawn-peer.js';

export type { ComplianceHarness, KillablePeer, RawPeer, SilentPeer } from './harness.js';
export { spawnListenerProcess, spawnPeerProcess } from './spawn-peer.js';
export { expectKilledListenerNoticed } from './killed-listener.js';
export { freePort, openRawTcp, silentTcpPeer } from './tcp-helpers.js';

/** Bound on the heavy tests (1,000 connections, 200 MB, 10,000 messages) on a busy machine. */
const HEAVY_TEST_TIMEOUT_MS = 90_000;

/** The number of tests `describeTransportCompliance` registers (the same for every transport). */
export const COMPLIANCE_TEST_COUNT = 25;

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (s: string): Uint8Array => enc.encode(s);
const str = (b: Uint8Array): string => dec.decode(b);

/** Rejects with a clear message when `p` has not settled after `ms` (a bound on waiting, not a timing assertion). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The error `p` rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error(`${what} should have failed but succeeded`);
}

function expectTransportError(err: unknown, name: TransportErrorName): void {
  expect(isTransportError(err), `expected a transport error ${name}, got ${String(err)}`).toBe(true);
  expect((err as Error).name).toBe(name);
}

/** Reads from one connection with a single long-lived iterator. */
class Reader {
  readonly #it: AsyncIterator<Uint8Array>;
  constructor(readonly conn: Connection) {
    this.#it = conn[Symbol.asyncIterator]();
  }
  /** The next message; fails if the connection ends first. */
  async next(what = 'a message', ms = 10_000): Promise<Uint8Array> {
    const r = await within(this.#it.next(), ms, `${what} on ${this.conn.id}`);
    if (r.done) throw new Error(`connection ${this.conn.id} ended while waiting for ${what}`);
    return r.value;
  }
  /** Resolves true when iteration ends (the connection closed and its queue is drained). */
  async end(ms = 10_000): Promise<true> {
    const r = await within(this.#it.next(), ms, `end of ${this.conn.id}`);
    if (!r.done) throw new Error(`expected the end of ${this.conn.id}, got a ${r.value.byteLength}-byte message`);
    return true;
  }
  release(): void {
    void this.#it.return?.();
  }
}

/** Takes connections from one listener with a single long-lived iterator. */
class Acceptor {
  readonly #it: AsyncIterator<Connection>;
  constructor(
    listener: Listener,
    private readonly scope: Scope,
  ) {
    this.#it = listener[Symbol.asyncIterator]();
  }
  async next(ms = 10_000): Promise<Connection> {
    const r = await within(this.#it.next(), ms, 'an accepted connection');
    if (r.done) throw new Error('listener ended while waiting for a connection');
    return this.scope.conn(r.value);
  }
  /** Resolves with `done` of the next iteration step. */
  async step(ms = 10_000): Promise<IteratorResult<Connection>> {
    const r = await within(this.#it.next(), ms, 'the listener');
    if (!r.done) this.scope.conn(r.value);
    return r;
  }
}

/** Everything a test opened, closed afterwards whatever happened. */
class Scope {
  readonly listeners: Listener[] = [];
  readonly conns: Connection[] = [];
  readonly cleanups: (() => unknown)[] = [];
  listener(l: Listener): Listener {
    this.listeners.push(l);
    return l;
  }
  conn(c: Connection): Connection {
    this.conns.push(c);
    return c;
  }
  async dispose(): Promise<void> {
    for (const c of this.conns) c.abort();
    await Promise.allSettled(this.listeners.map((l) => l.close()));
    await Promise.allSettled(this.cleanups.map((f) => f()));
  }
}

/** Echo every message back on every accepted connection (runs until the listener closes). */
function serveEcho(listener: Listener, scope: Scope): void {
  void (async () => {
    for await (const conn of listener) {
      scope.conn(conn);
      void (async () => {
        try {
          for await (const m of conn) await conn.send(m);
        } catch {
          // the connection closed under us: fine for an echo server
        }
      })();
    }
  })();
}

function pattern(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function seq(n: number, extra = 0): Uint8Array {
  const b = new Uint8Array(4 + extra);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
const seqOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** The stream framing's preamble, then the header of a 10-byte message and 3 of its bytes. */
const DEFAULT_PARTIAL_FRAME = concat(STREAM_PREAMBLE, encodeFrameHeader(10), Uint8Array.of(1, 2, 3));

/** Takes every further connection of `listener` (through its `acceptor`) into `accepted` until `stop()`. */
function collect(listener: Listener, acceptor: Acceptor): { accepted: Connection[]; stop: () => Promise<void> } {
  const accepted: Connection[] = [];
  let accepting = true;
  const loop = (async () => {
    while (accepting) {
      const r = await acceptor.step(60_000).catch(() => ({ done: true as const, value: undefined }));
      if (r.done) return;
      accepted.push(r.value);
    }
  })();
  return {
    accepted,
    stop: async () => {
      accepting = false;
      await listener.close();
      await loop;
    },
  };
}

/**
 * Register the compliance tests for one transport (call at the top level of a vitest file, or inside a
 * describe). Registers exactly COMPLIANCE_TEST_COUNT tests.
 */
export function describeTransportCompliance(harness: ComplianceHarness): void {
  describe(`transport compliance: ${harness.name}`, () => {
    let scope = new Scope();
    afterEach(async () => {
      const s = scope;
      scope = new Scope();
      await s.dispose();
    });

    const transports = async (): Promise<{ server: Transport; client: Transport }> => ({
      server: await harness.createTransport(),
      client: await harness.createTransport(),
    });

    /** A listener on the harness address, plus a connected (dialler, acceptor) pair. */
    async function connectedPair(
      options: { listen?: Parameters<Transport['listen']>[1]; dial?: Parameters<Transport['dial']>[1] } = {},
    ): Promise<{
      listener: Listener;
      acceptor: Acceptor;
      client: Connection;
      server: Connection;
      transports: { server: Transport; client: Transport };
    }> {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress(), options.listen));
      const acceptor = new Acceptor(listener, scope);
      const client = scope.conn(await t.client.dial(listener.address, options.dial));
      const server = await acceptor.next();
      return { listener, acceptor, client, server, transports: t };
    }

    it('dials and accepts: both ends get an open connection with addresses in the scheme', async () => {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress()));
      const scheme = schemeOf(listener.address);
      expect(t.server.schemes).toContain(scheme);
      expect(listener.address, 'a port-0 listen must report the chosen port').not.toMatch(/:0(\/|$)/);
      const acceptor = new Acceptor(listener, scope);
      const client = scope.conn(await t.client.dial(listener.address));
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
        const listener = scope.listener(await t.server.listen(harness.listenAddress()));
        serveEcho(listener, scope);
        const N = 1000;
        const results = await Promise.all(
          Array.from({ length: N }, async (_, i) => {
            // generous bounds: 1,000 simultaneous handshakes (TLS!) on two busy cores take a while
            const c = scope.conn(await t.client.dial(listener.address, { timeoutMs: 60_000 }));
            await c.send(text(`client ${i}`));
            const r = new Reader(c);
            const reply = str(await r.next('the echo', 60_000));
            r.release();
            return reply;
          }),
        );
        expect(results).toEqual(Array.from({ length: N }, (_, i) => `client ${i}`));
        await Promise.all(scope.conns.map((c) => c.close()));
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
      const other = scope.conn(await t.client.dial(listener.address));
      const otherServer = await acceptor.next();
      await other.send(text('still here'));
      expect(str(await new Reader(otherServer).next())).toBe('still here');
    });

    it('survives garbage from a raw peer: the raw stream is dropped, with a ProtocolError on any accepted connection', async () => {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress()));
      const accepted: Connection[] = [];
      const acceptor = new Acceptor(listener, scope);
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
        scope.cleanups.push(() => raw.destroy());
        raw.write(bytes);
        await within(raw.closed, 10_000, 'the listener to drop the raw stream');
      }
      for (const conn of accepted) {
        const info = await within(conn.closed, 10_000, 'the garbage connection to close');
        expectTransportError(info.error, 'ProtocolError');
      }
      // still serving, and the good connection is the next one accepted
      const good = scope.conn(await t.client.dial(listener.address));
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

    it('fails a dial where nothing listens with ConnectionRefusedError that says so (nothingListens)', async () => {
      const { client } = await transports();
      const address = await harness.refusedAddress();
      const err = await rejection(client.dial(address, { timeoutMs: 5_000 }), `dial ${address}`);
      expectTransportError(err, 'ConnectionRefusedError');
      // Replicas take this for proof that the peer process is gone (docs/TRANSPORTS.md).
      expect((err as { nothingListens?: unknown }).nothingListens, String(err)).toBe(true);
    });

    it('sees the connection close promptly when the peer is killed (SIGKILL or equivalent)', async () => {
      const { server: t } = await transports();
      const listener = scope.listener(await t.listen(harness.listenAddress()));
      const acceptor = new Acceptor(listener, scope);
      let peer;
      if (harness.startPeer) peer = await harness.startPeer(listener.address);
      else if (harness.peerModule) peer = spawnPeerProcess(harness.peerModule, listener.address);
      else throw new Error(`harness ${harness.name} gives neither startPeer nor peerModule`);
      scope.cleanups.push(() => peer.dispose());
      const conn = await acceptor.next(20_000);
      const r = new Reader(conn);
      expect(str(await r.next('the peer hello', 20_000))).toMatch(/ready/);
      await peer.kill();
      const info = await within(conn.closed, 10_000, 'the close of a killed peer');
      expect(info.by).toBe('remote');
      expect(await r.end()).toBe(true);
      const err = await rejection(conn.send(text('anyone?')), 'a send to a dead peer');
      expectTransportError(err, 'ConnectionClosedError');
    });

    it('close by the dialler: flushes sent messages, both sides see it (local/remote), the reader gets every message first', async () => {
      const { client, server } = await connectedPair();
      void client.send(text('one'));
      void client.send(text('two'));
      void client.send(pattern(100_000, 4));
      await within(client.close('done here'), 10_000, 'close()');
      expect(client.isClosed).toBe(true);
      expect((await client.closed).by).toBe('local');
      const info = await within(server.closed, 10_000, 'the acceptor to see the close');
      expect(info.by).toBe('remote');
      // reading only now: messages that arrived before the close are still delivered
      const sr = new Reader(server);
      expect(str(await sr.next())).toBe('one');
      expect(str(await sr.next())).toBe('two');
      expect(sameBytes(await sr.next(), pattern(100_000, 4))).toBe(true);
      expect(await sr.end()).toBe(true);
    });

    it('close by the acceptor: both sides see it (local/remote) and the dialler reads to the end', async () => {
      const { client, server } = await connectedPair();
      const cr = new Reader(client);
      void server.send(text('bye'));
      await within(server.close(), 10_000, 'close()');
      expect((await server.closed).by).toBe('local');
      const info = await within(client.closed, 10_000, 'the dialler to see the close');
      expect(info.by).toBe('remote');
      expect(str(await cr.next())).toBe('bye');
      expect(await cr.end()).toBe(true);
      expect(client.isClosed).toBe(true);
    });

    it('fails sends after close with ConnectionClosedError, on both sides; close is idempotent', async () => {
      const { client, server } = await connectedPair();
      await client.close();
      await client.close();
      expectTransportError(await rejection(client.send(text('x')), 'send after close'), 'ConnectionClosedError');
      await within(server.closed, 10_000, 'the peer to see the close');
      expectTransportError(await rejection(server.send(text('y')), 'send after remote close'), 'ConnectionClosedError');
      client.abort();
      expect((await client.closed).by).toBe('local');
    });

    it('abort: pending sends fail with ConnectionClosedError and the peer sees the connection end', async () => {
      // a send queue large enough for the 64 MiB below (its limit has a test of its own)
      const { client, server } = await connectedPair({
        listen: { receiveHighWaterMark: 64 * 1024 },
        dial: { maxSendQueueBytes: 256 * 1024 * 1024 },
      });
      // nobody reads on the server, so the sends back up behind the receive bound and the network buffers
      const chunk = new Uint8Array(1024 * 1024);
      const sends = Array.from({ length: 64 }, () =>
        client.send(chunk).then(
          () => 'sent' as const,
          (e: unknown) => e,
        ),
      );
      await sleep(50);
      client.abort(new Error('test abort'));
      const outcomes = await within(Promise.all(sends), 10_000, 'every pending send to settle');
      const failed = outcomes.filter((o) => o !== 'sent');
      expect(failed.length, 'some of 64 MiB to a paused reader must still be pending at abort').toBeGreaterThan(0);
      for (const e of failed) expectTransportError(e, 'ConnectionClosedError');
      const mine = await client.closed;
      expect(mine.by).toBe('local');
      // a reader that does not read cannot learn of the end of a byte stream (the socket is paused):
      // it reads on and sees the end after (at most) the messages that made it across
      const sr = new Reader(server);
      let ended = false;
      for (let i = 0; i < 64 && !ended; i++) {
        ended = await within(
          sr.next('the rest before the end', 10_000).then(
            () => false,
            () => true,
          ),
          10_000,
          'reading on',
        );
      }
      expect(ended, 'the peer must see the aborted connection end').toBe(true);
      const theirs = await within(server.closed, 10_000, 'the peer to see the abort');
      expect(theirs.by).toBe('remote');
    });

    it(
      'bounds memory while 200 MB go to a reader that pauses (the sender awaits each send)',
      async () => {
        const { client, server } = await connectedPair();
        const MB = 1024 * 1024;
        const total = 200 * MB;
        const chunk = pattern(MB, 5);
        let sent = 0;
        let read = 0;
        let maxUnread = 0;
        let rssBefore = process.memoryUsage().rss;
        let rssMax = rssBefore;
        const sample = (): void => {
          maxUnread = Math.max(maxUnread, sent - read);
          rssMax = Math.max(rssMax, process.memoryUsage().rss);
        };
        const sender = (async () => {
          while (sent < total) {
            await client.send(chunk);
            sent += chunk.byteLength;
            sample();
          }
        })();
        const sr = new Reader(server);
        read += (await sr.next()).byteLength;
        rssBefore = Math.min(rssBefore, process.memoryUsage().rss);
        // pause: read nothing until the sender has made no progress for a while
        let last = -1;
        let still = 0;
        while (still < 5 && sent < total) {
          await sleep(40);
          sample();
          still = sent === last ? still + 1 : 0;
          last = sent;
        }
        expect(sent, 'the sender must stall while the reader pauses').toBeLessThan(total);
        expect(sent - read).toBeLessThan(64 * MB);
        // resume and read everything
        while (read < total) {
          const m = await sr.next('the rest of the transfer', 20_000);
          read += m.byteLength;
          sample();
        }
        await sender;
        expect(read).toBe(total);
        if (process.env.TANDEM_COMPLIANCE_VERBOSE) {
          console.log(
            `[${harness.name}] max unread ${(maxUnread / MB).toFixed(1)} MB, RSS growth ${((rssMax - rssBefore) / MB).toFixed(1)} MB`,
          );
        }
        expect(maxUnread, 'sent-but-unread bytes').toBeLessThan(64 * MB);
        expect(rssMax - rssBefore, 'process RSS growth').toBeLessThan(128 * MB);
      },
      HEAVY_TEST_TIMEOUT_MS,
    );

    it('listener close: iteration ends, new dials are refused, accepted connections keep working', async () => {
      const { listener, acceptor, client, server } = await connectedPair();
      await listener.close();
      await listener.close();
      expect((await acceptor.step()).done).toBe(true);
      const t = await transports();
      expectTransportError(
        await rejection(t.client.dial(listener.address, { timeoutMs: 5_000 }), 'dial after listener close'),
        'ConnectionRefusedError',
      );
      await client.send(text('still open'));
      expect(str(await new Reader(server).next())).toBe('still open');
      await server.send(text('yes'));
      expect(str(await new Reader(client).next())).toBe('yes');
    });

    it('refuses to listen twice on the same address with AddressInUseError', async () => {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress()));
      const err = await rejection(
        t.client.listen(listener.address).then((l) => scope.listener(l)),
        `a second listen on ${listener.address}`,
      );
      expectTransportError(err, 'AddressInUseError');
    });

    it('times out a dial that gets no answer with TimeoutError', async () => {
      const { client } = await transports();
      const silent = await harness.silentPeer();
      scope.cleanups.push(() => silent.close());
      const err = await rejection(client.dial(silent.address, { timeoutMs: 300 }), 'a dial to a silent peer');
      expectTransportError(err, 'TimeoutError');
    });

    it('aborts a dial through its AbortSignal with AbortError (before and during the dial)', async () => {
      const { client } = await transports();
      const silent = await harness.silentPeer();
      scope.cleanups.push(() => silent.close());
      const pre = new AbortController();
      pre.abort();
      expectTransportError(await rejection(client.dial(silent.address, { signal: pre.signal }), 'a pre-aborted dial'), 'AbortError');
      const during = new AbortController();
      const dialing = client.dial(silent.address, { signal: during.signal, timeoutMs: 10_000 });
      setTimeout(() => during.abort(), 50);
      expectTransportError(await rejection(dialing, 'an aborted dial'), 'AbortError');
    });

    it('rejects a negative or non-numeric bound at listen and dial with RangeError (not later, in a socket callback)', async () => {
      const t = await transports();
      const bad = [
        { maxConnections: -1 },
        { partialFrameTimeoutMs: -5 },
        { maxSendQueueBytes: Number.NaN },
        { sendHighWaterMark: '1' as unknown as number },
      ];
      for (const options of bad) {
        const err = await rejection(
          t.server.listen(harness.listenAddress(), options).then((l) => scope.listener(l)),
          `listen with ${JSON.stringify(options)}`,
        );
        expect(err, JSON.stringify(options)).toBeInstanceOf(RangeError);
      }
      const listener = scope.listener(await t.server.listen(harness.listenAddress()));
      const err = await rejection(
        t.client.dial(listener.address, { maxSendQueueBytes: -1 }).then((c) => scope.conn(c)),
        'a dial with maxSendQueueBytes -1',
      );
      expect(err).toBeInstanceOf(RangeError);
    });

    it('refuses connections beyond maxConnections at once, keeps the open ones, and accepts again when one closes', async () => {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress(), { maxConnections: 2 }));
      const acceptor = new Acceptor(listener, scope);
      const c1 = scope.conn(await t.client.dial(listener.address));
      const s1 = await acceptor.next();
      const c2 = scope.conn(await t.client.dial(listener.address));
      const s2 = await acceptor.next();
      const err = await rejection(
        t.client.dial(listener.address, { timeoutMs: 10_000 }).then((c) => scope.conn(c)),
        'a third dial to a listener with maxConnections 2',
      );
      expectTransportError(err, 'ConnectionRefusedError');
      // A live listener's refusal proves nothing about the process behind it.
      expect((err as { nothingListens?: unknown }).nothingListens, String(err)).toBe(false);
      // the open connections are unaffected
      const r2 = new Reader(c2);
      await c1.send(text('one'));
      expect(str(await new Reader(s1).next())).toBe('one');
      await s2.send(text('two'));
      expect(str(await r2.next())).toBe('two');
      // once one closes (and the listener has seen it), a new dial is accepted
      await c1.close();
      await within(s1.closed, 10_000, 'the listener side to see the close');
      let c3: Connection | undefined;
      for (let i = 0; i < 200 && c3 === undefined; i++) {
        c3 = await t.client.dial(listener.address, { timeoutMs: 10_000 }).then(
          (c) => scope.conn(c),
          async (e: unknown) => {
            expectTransportError(e, 'ConnectionRefusedError');
            await sleep(25);
            return undefined;
          },
        );
      }
      expect(c3, 'a dial after a connection closed must be accepted').toBeDefined();
      const s3 = await acceptor.next();
      await c3!.send(text('three'));
      expect(str(await new Reader(s3).next())).toBe('three');
      await c2.send(text('still two'));
      expect(str(await new Reader(s2).next())).toBe('still two');
    });

    it('cuts off a peer that stops inside a frame (or the handshake) after partialFrameTimeoutMs, with TimeoutError; idle connections stay', async () => {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress(), { partialFrameTimeoutMs: 300 }));
      const acceptor = new Acceptor(listener, scope);
      const client = scope.conn(await t.client.dial(listener.address));
      const server = await acceptor.next();
      const { accepted, stop } = collect(listener, acceptor);
      const raw = await (harness.openSession ?? harness.openRaw)(listener.address);
      scope.cleanups.push(() => raw.destroy());
      raw.write(harness.partialFrame ?? DEFAULT_PARTIAL_FRAME);
      // well within the transports' own (longer) handshake deadlines: only the partial-frame deadline can do it
      await within(raw.closed, 5_000, 'the listener to cut off the peer that stopped mid-frame');
      for (const conn of accepted) {
        const info = await within(conn.closed, 5_000, 'the stalled connection to close');
        expectTransportError(info.error, 'TimeoutError');
      }
      // an idle connection (between frames) is not a slow loris
      expect(server.isClosed).toBe(false);
      await client.send(text('still here'));
      expect(str(await new Reader(server).next())).toBe('still here');
      await stop();
    });

    it('refuses a frame that announces more than maxMessageSize from its header, without waiting for the payload', async () => {
      const limit = 64 * 1024;
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress(), { maxMessageSize: limit }));
      const { accepted, stop } = collect(listener, new Acceptor(listener, scope));
      const raw = await (harness.openSession ?? harness.openRaw)(listener.address);
      scope.cleanups.push(() => raw.destroy());
      raw.write(harness.oversizedFrame ? harness.oversizedFrame(limit) : concat(STREAM_PREAMBLE, encodeFrameHeader(limit + 1)));
      // no payload follows: a receiver that waited for (or buffered) it would keep the stream open (and
      // liveness checks, zeromq's heartbeats among them, would only close it after several seconds)
      await within(raw.closed, 4_000, 'the listener to drop the stream at the oversized header');
      for (const conn of accepted) {
        const info = await within(conn.closed, 10_000, 'the connection to close');
        expectTransportError(info.error, 'MessageTooLargeError');
      }
      // still serving
      const good = scope.conn(await t.client.dial(listener.address));
      await good.send(text('fine'));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !accepted.some((c) => !c.isClosed)) await sleep(5);
      const goodServer = accepted.find((c) => !c.isClosed);
      expect(goodServer, 'the listener must accept a proper connection afterwards').toBeDefined();
      expect(str(await new Reader(goodServer!).next())).toBe('fine');
      await stop();
    });

    it('aborts a connection whose send queue passes maxSendQueueBytes (sends not awaited, the peer not reading) with SendQueueFullError', async () => {
      const limit = 1024 * 1024;
      const { client } = await connectedPair({ listen: { receiveHighWaterMark: 64 * 1024 }, dial: { maxSendQueueBytes: limit } });
      const chunk = new Uint8Array(64 * 1024);
      const outcomes: Promise<unknown>[] = [];
      // up to 256 MiB, in bursts, letting the transport hand on what it can in between
      for (let i = 0; i < 4096 && !client.isClosed; i++) {
        outcomes.push(
          client.send(chunk).then(
            () => 'sent' as const,
            (e: unknown) => e,
          ),
        );
        if (i % 16 === 15) await sleep(1);
      }
      expect(client.isClosed, 'a queue that only grows must hit its limit').toBe(true);
      const settled = await within(Promise.all(outcomes), 10_000, 'every send to settle');
      const failed = settled.filter((o) => o !== 'sent');
      const full = failed.filter((e) => isTransportError(e, 'SendQueueFullError'));
      expect(full, 'the send that overflowed').toHaveLength(1);
      expectTransportError(full[0], 'SendQueueFullError');
      expect((full[0] as { limit?: number }).limit).toBe(limit);
      for (const e of failed) if (e !== full[0]) expectTransportError(e, 'ConnectionClosedError');
      const info = await client.closed;
      expect(info.by).toBe('local');
      expectTransportError(info.error, 'SendQueueFullError');
      // what went out before is bounded by the network's buffers, not by the sender's persistence
      const sentBytes = (settled.length - failed.length) * chunk.byteLength;
      expect(sentBytes, 'bytes handed on before the abort').toBeLessThan(64 * 1024 * 1024);
      expectTransportError(await rejection(client.send(text('more')), 'a send after the abort'), 'ConnectionClosedError');
    });
  });
}
