/**
 * Compliance cases, the per-connection limits: a peer stuck inside a frame, a frame header announcing
 * too much, a send queue past its bound.
 * (Registered by describeTransportCompliance, in this order: see index.ts.)
 */
import { expect, it } from 'vitest';
import { isTransportError } from '../errors.js';
import { encodeFrameHeader, STREAM_PREAMBLE } from '../framing.js';
import {
  text,
  str,
  within,
  sleep,
  rejection,
  expectTransportError,
  Reader,
  Acceptor,
  concat,
  DEFAULT_PARTIAL_FRAME,
  collect,
  type SuiteContext,
} from './suite-kit.js';

export function limitCases(ctx: SuiteContext): void {
  const { harness, transports, connectedPair } = ctx;
  it('cuts off a peer that stops inside a frame (or the handshake) after partialFrameTimeoutMs, with TimeoutError; idle connections stay', async () => {
    const t = await transports();
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress(), { partialFrameTimeoutMs: 300 }));
    const acceptor = new Acceptor(listener, ctx.scope);
    const client = ctx.scope.conn(await t.client.dial(listener.address));
    const server = await acceptor.next();
    const { accepted, stop } = collect(listener, acceptor);
    const raw = await (harness.openSession ?? harness.openRaw)(listener.address);
    ctx.scope.cleanups.push(() => raw.destroy());
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
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress(), { maxMessageSize: limit }));
    const { accepted, stop } = collect(listener, new Acceptor(listener, ctx.scope));
    const raw = await (harness.openSession ?? harness.openRaw)(listener.address);
    ctx.scope.cleanups.push(() => raw.destroy());
    raw.write(harness.oversizedFrame ? harness.oversizedFrame(limit) : concat(STREAM_PREAMBLE, encodeFrameHeader(limit + 1)));
    // no payload follows: a receiver that waited for (or buffered) it would keep the stream open (and
    // liveness checks, zeromq's heartbeats among them, would only close it after several seconds)
    await within(raw.closed, 4_000, 'the listener to drop the stream at the oversized header');
    for (const conn of accepted) {
      const info = await within(conn.closed, 10_000, 'the connection to close');
      expectTransportError(info.error, 'MessageTooLargeError');
    }
    // still serving
    const good = ctx.scope.conn(await t.client.dial(listener.address));
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
}
