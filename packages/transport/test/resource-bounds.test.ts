// Resource bounds of BaseConnection and the memory transport, on virtual time: the partial-frame deadline
// (slow loris), the send high-water mark, the send-queue limit, maxConnections; and the error convention.
import { describe, expect, it } from 'vitest';
import * as transport from '@tandem/transport';
import {
  createMemoryNetwork,
  encodeFrame,
  encodeFrameHeader,
  isTransportError,
  SEND_QUEUE_MESSAGE_OVERHEAD,
  STREAM_PREAMBLE,
  type BaseConnection,
  type Connection,
  type ListenOptions,
  type DialOptions,
} from '@tandem/transport';
import { ManualScheduler } from './manual-scheduler.js';

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

async function rawPeer(listenOptions: ListenOptions = {}) {
  const clock = new ManualScheduler();
  const net = createMemoryNetwork({ schedule: clock.schedule });
  const listener = await net.listen('mem://s', listenOptions);
  const accepting = listener[Symbol.asyncIterator]().next();
  const raw = net.dialRaw('mem://s');
  await clock.advance(0);
  const conn = (await accepting).value as Connection;
  let rawClosed = false;
  void raw.closed.then(() => (rawClosed = true));
  return { clock, net, raw, conn, isRawClosed: () => rawClosed };
}

async function pair(listenOptions: ListenOptions = {}, dialOptions: DialOptions = {}) {
  const clock = new ManualScheduler();
  const net = createMemoryNetwork({ schedule: clock.schedule });
  const listener = await net.listen('mem://s', listenOptions);
  const accepting = listener[Symbol.asyncIterator]().next();
  const dialing = net.dial('mem://s', dialOptions);
  await clock.advance(0);
  return { clock, net, listener, client: await dialing, server: (await accepting).value as Connection };
}

describe('partial-frame deadline (memory raw stream)', () => {
  it('closes a stream stopped inside a frame after partialFrameTimeoutMs of silence, with TimeoutError', async () => {
    const { clock, raw, conn, isRawClosed } = await rawPeer({ partialFrameTimeoutMs: 1_000 });
    raw.write(concat(STREAM_PREAMBLE, encodeFrameHeader(10), Uint8Array.of(1, 2)));
    await clock.advance(999);
    expect(conn.isClosed).toBe(false);
    // the deadline counts from the last byte: silence of at least the timeout, at most twice it
    await clock.advance(1_001);
    expect(conn.isClosed).toBe(true);
    const info = await conn.closed;
    expect(isTransportError(info.error, 'TimeoutError')).toBe(true);
    expect(info.reason).toBe('partial frame timeout');
    expect(info.by).toBe('remote');
    expect(isRawClosed()).toBe(true);
  });

  it('gives an accepted stream partialFrameTimeoutMs for its preamble (a silent peer is cut off too)', async () => {
    const { clock, conn } = await rawPeer({ partialFrameTimeoutMs: 1_000 });
    await clock.advance(2_000);
    expect(conn.isClosed).toBe(true);
    expect(isTransportError((await conn.closed).error, 'TimeoutError')).toBe(true);
  });

  it('resets the deadline on every byte, and keeps idle streams between frames open', async () => {
    const { clock, raw, conn } = await rawPeer({ partialFrameTimeoutMs: 1_000 });
    const frame = concat(STREAM_PREAMBLE, encodeFrame(new Uint8Array(20)));
    for (const byte of frame) {
      raw.write(Uint8Array.of(byte));
      await clock.advance(900); // a slow but steady sender
    }
    expect(conn.isClosed).toBe(false);
    const it = conn[Symbol.asyncIterator]();
    expect((await it.next()).value!.byteLength).toBe(20);
    await clock.advance(60_000); // between frames: idle is fine
    expect(conn.isClosed).toBe(false);
  });

  it('does not count time while this side has stopped reading (its receive queue is full)', async () => {
    const { clock, raw, conn } = await rawPeer({ partialFrameTimeoutMs: 1_000, receiveHighWaterMark: 100 });
    // two whole frames fill the receive queue (reading pauses), then half a frame
    raw.write(concat(STREAM_PREAMBLE, encodeFrame(new Uint8Array(200)), encodeFrame(new Uint8Array(200)), encodeFrameHeader(50)));
    await clock.advance(10_000);
    expect(conn.isClosed).toBe(false);
    const it = conn[Symbol.asyncIterator]();
    await it.next();
    await it.next(); // reading resumes; the peer still owes 50 bytes
    await clock.advance(2_000);
    expect(conn.isClosed).toBe(true);
    expect(isTransportError((await conn.closed).error, 'TimeoutError')).toBe(true);
  });

  it('partialFrameTimeoutMs 0 turns the deadline off', async () => {
    const { clock, raw, conn } = await rawPeer({ partialFrameTimeoutMs: 0 });
    raw.write(concat(STREAM_PREAMBLE, encodeFrameHeader(10)));
    await clock.advance(600_000);
    expect(conn.isClosed).toBe(false);
  });
});

describe('send bounds', () => {
  it('a sender awaiting each send stalls at its sendHighWaterMark even when the receiver would take more', async () => {
    const { clock, net, client, server } = await pair({ receiveHighWaterMark: 1024 * 1024 }, { sendHighWaterMark: 1000 });
    expect((client as BaseConnection).sendHighWaterMark).toBe(1000);
    // a slow link keeps the messages in flight for a while
    net.setLinkFaults('*', '*', { delayMs: 100 });
    let settled = 0;
    const sending = (async () => {
      for (let i = 0; i < 100; i++) {
        await client.send(new Uint8Array(300));
        settled++;
      }
    })();
    await clock.advance(50);
    // in flight: at most the mark plus the message that crossed it (the receiver's 1 MiB does not matter)
    expect(settled * 300).toBeLessThanOrEqual(1000 + 300);
    expect(settled).toBeGreaterThan(0);
    // the receiver reads; everything arrives
    let got = 0;
    const it = server[Symbol.asyncIterator]();
    while (got < 100 * 300) {
      await clock.advance(100);
      const r = await it.next();
      got += r.value!.byteLength;
    }
    await sending;
    expect(settled).toBe(100);
  });

  it('counts queued send bytes; a send past maxSendQueueBytes aborts the connection with SendQueueFullError', async () => {
    const { clock, client, server } = await pair({ receiveHighWaterMark: 100 }, { maxSendQueueBytes: 2_000 });
    const c = client as BaseConnection;
    expect(c.maxSendQueueBytes).toBe(2_000);
    const outcomes: unknown[] = [];
    const send = (n: number) =>
      void client.send(new Uint8Array(n)).then(
        () => outcomes.push('sent'),
        (e: unknown) => outcomes.push(e),
      );
    // the receiver does not read (and pauses at 100 bytes): nothing is handed on for good
    send(500);
    await clock.advance(1);
    send(500);
    send(500);
    expect(c.queuedSendBytes).toBe(3 * (500 + SEND_QUEUE_MESSAGE_OVERHEAD));
    send(300); // 1596 + 332 = 1928: still fits
    expect(c.isClosed).toBe(false);
    send(100); // 1928 + 132 > 2000
    expect(c.isClosed).toBe(true);
    await clock.advance(1);
    const info = await client.closed;
    expect(info.by).toBe('local');
    expect(isTransportError(info.error, 'SendQueueFullError')).toBe(true);
    expect((info.error as transport.SendQueueFullError).queued).toBe(1928 + 132);
    const failures = outcomes.filter((o) => o !== 'sent');
    expect(failures.filter((e) => isTransportError(e, 'SendQueueFullError'))).toHaveLength(1);
    expect(failures.filter((e) => isTransportError(e, 'ConnectionClosedError'))).toHaveLength(4);
    await clock.advance(10);
    expect(server.isClosed).toBe(true);
  });

  it('accepts one message larger than maxSendQueueBytes when the queue is empty', async () => {
    const { clock, client, server } = await pair({}, { maxSendQueueBytes: 100 });
    const sent = client.send(new Uint8Array(1000));
    await clock.advance(1);
    await sent;
    expect(((await server[Symbol.asyncIterator]().next()).value as Uint8Array).byteLength).toBe(1000);
  });

  it('defaults maxSendQueueBytes to 64 MiB, or 4 × maxMessageSize when that is larger', async () => {
    const small = await pair();
    expect((small.client as BaseConnection).maxSendQueueBytes).toBe(transport.DEFAULT_MAX_SEND_QUEUE_BYTES);
    const big = await pair({}, { maxMessageSize: 32 * 1024 * 1024 });
    expect((big.client as BaseConnection).maxSendQueueBytes).toBe(128 * 1024 * 1024);
  });
});

describe('maxConnections (memory)', () => {
  it('refuses dials and raw pipes beyond the limit and accepts again once one closes', async () => {
    const { clock, net, listener, client } = await pair({ maxConnections: 1 });
    const refused = net.dial('mem://s').catch((e: unknown) => e);
    await clock.advance(0);
    expect(isTransportError(await refused, 'ConnectionRefusedError')).toBe(true);
    expect(() => net.dialRaw('mem://s')).toThrow(/maxConnections/);
    await client.close();
    await clock.advance(1);
    const again = net.dial('mem://s');
    await clock.advance(0);
    expect((await again).isClosed).toBe(false);
    void listener;
  });
});

describe('typed errors', () => {
  const classes = [
    transport.ConnectionRefusedError,
    transport.TimeoutError,
    transport.ConnectionClosedError,
    transport.ProtocolError,
    transport.AddressInUseError,
    transport.AbortError,
  ] as const;

  it('are flat classes with a static name equal to the instance name and an ERR_ code', () => {
    const instances: Error[] = [
      ...classes.map((C) => new C('x')),
      new transport.MessageTooLargeError(2, 1),
      new transport.UnsupportedSchemeError('x'),
      new transport.InvalidAddressError('x'),
      new transport.SendQueueFullError(2, 1),
    ];
    for (const err of instances) {
      const C = err.constructor as { name: string };
      expect(Object.getPrototypeOf(C)).toBe(Error);
      expect(err.name).toBe(C.name);
      expect(isTransportError(err, err.name as transport.TransportErrorName)).toBe(true);
      expect((err as unknown as { code: string }).code).toMatch(/^ERR_[A-Z_]+$/);
      expect(err).toBeInstanceOf(Error);
    }
    expect(new Set(instances.map((e) => e.name)).size).toBe(instances.length);
  });
});
