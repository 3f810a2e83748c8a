// TCP-specific behaviour beyond the compliance suite: addresses, the framing over real sockets fed by a
// raw (hand-written) peer, and the resource bounds seen from the socket.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrameHeader, isTransportError, STREAM_PREAMBLE, type Connection, type ListenOptions } from '@tandem/transport';
import { formatTcpAddress, parseTcpAddress, tcp } from '@tandem/transport-tcp';

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));
}

/** A listener plus a raw socket connected to it, and the accepted connection. */
async function rawPair(
  maxMessageSize?: number,
): Promise<{ raw: net.Socket; conn: Connection; rawClosed: Promise<void>; close: () => Promise<void> }> {
  return rawPairWith(maxMessageSize ? { maxMessageSize } : {});
}

async function rawPairWith(
  options: ListenOptions,
): Promise<{ raw: net.Socket; conn: Connection; rawClosed: Promise<void>; close: () => Promise<void> }> {
  const listener = await tcp().listen('tcp://127.0.0.1:0', options);
  const { port } = parseTcpAddress(listener.address);
  const raw = net.connect({ host: '127.0.0.1', port });
  raw.on('error', () => undefined);
  raw.resume();
  const rawClosed = new Promise<void>((r) => raw.once('close', () => r()));
  const { value: conn } = await listener[Symbol.asyncIterator]().next();
  return {
    raw,
    conn: conn as Connection,
    rawClosed,
    close: async () => {
      raw.destroy();
      (conn as Connection).abort();
      await listener.close();
    },
  };
}

describe('tcp addresses', () => {
  it('parses tcp:// and tls:// with IPv4, names and IPv6', () => {
    expect(parseTcpAddress('tcp://127.0.0.1:7000')).toEqual({ scheme: 'tcp', host: '127.0.0.1', port: 7000 });
    expect(parseTcpAddress('TLS://example.org:443')).toEqual({ scheme: 'tls', host: 'example.org', port: 443 });
    expect(parseTcpAddress('tcp://[::1]:0')).toEqual({ scheme: 'tcp', host: '::1', port: 0 });
    expect(formatTcpAddress('tcp', '::1', 80)).toBe('tcp://[::1]:80');
  });

  it('rejects addresses without a port, with a path, or of another scheme with InvalidAddressError', async () => {
    for (const bad of ['tcp://127.0.0.1', 'tcp://127.0.0.1:80/x', 'http://127.0.0.1:80', 'tcp//x:1', 'tcp://:80']) {
      const err = await tcp()
        .dial(bad)
        .catch((e: unknown) => e);
      expect(isTransportError(err, 'InvalidAddressError'), `${bad}: ${String(err)}`).toBe(true);
    }
  });
});

describe('tcp framing over a real socket', () => {
  it('reassembles frames a raw peer writes one byte at a time', async () => {
    const p = await rawPair();
    const stream = concat([
      STREAM_PREAMBLE,
      encodeFrame(new TextEncoder().encode('split')),
      encodeFrame(new Uint8Array(0)),
      encodeFrame(Uint8Array.of(1, 2, 3)),
    ]);
    for (const byte of stream) {
      p.raw.write(Uint8Array.of(byte));
      await new Promise((r) => setImmediate(r));
    }
    const it = p.conn[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await it.next()).value)).toBe('split');
    expect((await it.next()).value!.byteLength).toBe(0);
    expect([...(await it.next()).value!]).toEqual([1, 2, 3]);
    await p.close();
  });

  it('closes with ProtocolError when the stream ends inside a frame', async () => {
    const p = await rawPair();
    p.raw.end(concat([STREAM_PREAMBLE, encodeFrame(new Uint8Array(100)).subarray(0, 50)]));
    const info = await p.conn.closed;
    expect(isTransportError(info.error, 'ProtocolError')).toBe(true);
    expect(info.by).toBe('remote');
    await p.close();
  });

  it('resets the connection when a header announces more than the limit, without waiting for the payload', async () => {
    const p = await rawPair(1024);
    p.raw.write(concat([STREAM_PREAMBLE, Uint8Array.of(0x7f, 0xff, 0xff, 0xff)]));
    const info = await p.conn.closed;
    expect(isTransportError(info.error, 'MessageTooLargeError')).toBe(true);
    await p.rawClosed; // the raw peer is disconnected
    await p.close();
  });

  it('fails a dial to a server that does not speak the framing with ProtocolError', async () => {
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const err = await tcp()
      .dial(`tcp://127.0.0.1:${port}`, { timeoutMs: 5000 })
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'ProtocolError'), String(err)).toBe(true);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('a dialled connection reads large messages straight into place and copies small ones out of its read buffer', async () => {
    for (const directReads of [true, false]) {
      const listener = await tcp().listen('tcp://127.0.0.1:0');
      const accepted = listener[Symbol.asyncIterator]().next();
      const client = await tcp({ directReads }).dial(listener.address);
      const server = (await accepted).value as Connection;
      const sizes = [3, 70_000, 1, 0, 600_000, 17, 2_000_000, 5, 64 * 1024 - 4, 64 * 1024, 9];
      const sent = sizes.map((n, i) => new Uint8Array(n).map((_, j) => (i * 31 + j * 7) & 255));
      void (async () => {
        for (const m of sent) await server.send(m);
      })();
      const got: Uint8Array[] = [];
      const it = client[Symbol.asyncIterator]();
      for (let i = 0; i < sent.length; i++) got.push((await it.next()).value!);
      // Messages kept while later ones were read are intact (not views of a reused buffer).
      expect(
        got.map((m) => m.byteLength),
        `directReads ${directReads}`,
      ).toEqual(sizes);
      const differing = got.flatMap((m, i) => (Buffer.from(m).equals(Buffer.from(sent[i]!)) ? [] : [i]));
      expect(differing, `directReads ${directReads}: messages whose bytes differ`).toEqual([]);
      client.abort();
      server.abort();
      await listener.close();
    }
  });
});

describe('tcp resource bounds', () => {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('cuts off an accepted socket that never sends its preamble after partialFrameTimeoutMs, with TimeoutError', async () => {
    const listener = await tcp().listen('tcp://127.0.0.1:0', { partialFrameTimeoutMs: 200 });
    const { port } = parseTcpAddress(listener.address);
    const raw = net.connect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    raw.resume();
    const rawClosed = new Promise<void>((r) => raw.once('close', () => r()));
    const { value: conn } = await listener[Symbol.asyncIterator]().next();
    const info = await (conn as Connection).closed;
    expect(isTransportError(info.error, 'TimeoutError'), String(info.error)).toBe(true);
    expect(info.reason).toBe('partial frame timeout');
    await rawClosed;
    await listener.close();
  });

  it('does not blame the peer for a partial frame it completed while this process was too busy to read', async () => {
    const p = await rawPairWith({ partialFrameTimeoutMs: 300 });
    const frame = concat([STREAM_PREAMBLE, encodeFrame(new TextEncoder().encode('patience'))]);
    p.raw.write(frame.subarray(0, 12));
    // the deadline (armed when the connection was accepted) sees these bytes when it first fires and runs
    // again from then; this timer comes after that first firing (and long before the second is due)
    await sleep(350);
    await new Promise<void>((resolve) =>
      // in the event loop's check phase, so that its timers phase (with the deadline, due by then) comes
      // next, before the poll phase reads the socket
      setImmediate(() => {
        p.raw.write(frame.subarray(12)); // the rest reaches the kernel at once…
        const until = performance.now() + 800;
        while (performance.now() < until); // …while this process is too busy to read it
        resolve();
      }),
    );
    const it = p.conn[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await it.next()).value)).toBe('patience');
    expect(p.conn.isClosed).toBe(false);
    await p.close();
  });

  it('a dialled connection keeps receiving a large message that arrives slowly but steadily', async () => {
    const message = new Uint8Array(200_000).map((_, i) => i & 255);
    const wire = concat([STREAM_PREAMBLE, encodeFrame(message)]);
    const server = net.createServer(async (s) => {
      s.on('error', () => undefined);
      // a chunk every 60 ms, the deadline 150 ms: the reads land straight in the message (direct reads)
      for (let at = 0; at < wire.byteLength && !s.destroyed; at += 10_000) {
        s.write(wire.subarray(at, at + 10_000));
        await sleep(60);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const conn = await tcp().dial(`tcp://127.0.0.1:${port}`, { partialFrameTimeoutMs: 150 });
    const got = (await conn[Symbol.asyncIterator]().next()).value!;
    expect(Buffer.from(got).equals(Buffer.from(message))).toBe(true);
    expect(conn.isClosed).toBe(false);
    conn.abort();
    server.close();
  });

  it('a dialled connection whose server stops inside a frame closes with TimeoutError (small and large frames)', async () => {
    for (const [length, sent] of [
      [10, 3],
      [200_000, 70_000],
    ] as const) {
      const server = net.createServer((s) => {
        s.on('error', () => undefined);
        s.write(concat([STREAM_PREAMBLE, encodeFrame(Uint8Array.of(7)), encodeFrameHeader(length), new Uint8Array(sent)]));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as net.AddressInfo;
      const conn = await tcp().dial(`tcp://127.0.0.1:${port}`, { partialFrameTimeoutMs: 200 });
      const it = conn[Symbol.asyncIterator]();
      expect([...(await it.next()).value!]).toEqual([7]);
      const info = await conn.closed;
      expect(isTransportError(info.error, 'TimeoutError'), `${length}: ${String(info.error)}`).toBe(true);
      expect((await it.next()).done).toBe(true);
      server.close();
    }
  });

  it("holds at most sendHighWaterMark bytes in the socket for a peer that never reads (default: the socket's 16 KiB)", async () => {
    for (const sendHighWaterMark of [undefined, 1024 * 1024]) {
      const listener = await tcp().listen('tcp://127.0.0.1:0', sendHighWaterMark === undefined ? {} : { sendHighWaterMark });
      const { port } = parseTcpAddress(listener.address);
      const raw = net.connect({ host: '127.0.0.1', port }, () => raw.write(STREAM_PREAMBLE));
      raw.on('error', () => undefined);
      raw.pause(); // never reads
      const { value } = await listener[Symbol.asyncIterator]().next();
      const conn = value as Connection & { socket: net.Socket };
      const chunk = new Uint8Array(4096);
      // send, awaiting each, until a send stays pending (the kernel buffers are full and so is ours)
      for (let i = 0; i < 100_000; i++) {
        const r = await Promise.race([conn.send(chunk).then(() => 'sent'), sleep(300).then(() => 'pending')]);
        if (r === 'pending') break;
      }
      const buffered = conn.socket.writableLength;
      const limit = sendHighWaterMark ?? conn.socket.writableHighWaterMark;
      expect(buffered, `sendHighWaterMark ${sendHighWaterMark}`).toBeLessThanOrEqual(limit + chunk.byteLength + 4);
      if (sendHighWaterMark !== undefined) expect(buffered, 'a larger mark is used').toBeGreaterThan(sendHighWaterMark / 2);
      conn.abort();
      raw.destroy();
      await listener.close();
    }
  });
});
