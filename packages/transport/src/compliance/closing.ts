/**
 * Compliance cases, refused dials and the end of a connection: a killed peer, close by either side,
 * sends after close, abort, and a paused reader while 200 MB are sent.
 * (Registered by describeTransportCompliance, in this order: see index.ts.)
 */
import { expect, it } from 'vitest';
import { spawnPeerProcess } from './spawn-peer.js';
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
  pattern,
  sameBytes,
  type SuiteContext,
} from './suite-kit.js';

export function closingCases(ctx: SuiteContext): void {
  const { harness, transports, connectedPair } = ctx;
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
    const listener = ctx.scope.listener(await t.listen(harness.listenAddress()));
    const acceptor = new Acceptor(listener, ctx.scope);
    let peer;
    if (harness.startPeer) peer = await harness.startPeer(listener.address);
    else if (harness.peerModule) peer = spawnPeerProcess(harness.peerModule, listener.address);
    else throw new Error(`harness ${harness.name} gives neither startPeer nor peerModule`);
    ctx.scope.cleanups.push(() => peer.dispose());
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
}
