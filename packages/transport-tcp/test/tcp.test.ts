// TCP-specific behaviour beyond the compliance suite: addresses, and the framing over real sockets fed by a
// raw (hand-written) peer.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeFrame, isTransportError, STREAM_PREAMBLE, type Connection } from '@tandem/transport';
import { formatTcpAddress, parseTcpAddress, tcp } from '@tandem/transport-tcp';

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));
}

/** A listener plus a raw socket connected to it, and the accepted connection. */
async function rawPair(maxMessageSize?: number): Promise<{ raw: net.Socket; conn: Connection; rawClosed: Promise<void>; close: () => Promise<void> }> {
  const listener = await tcp().listen('tcp://127.0.0.1:0', maxMessageSize ? { maxMessageSize } : {});
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
      const err = await tcp().dial(bad).catch((e: unknown) => e);
      expect(isTransportError(err, 'InvalidAddressError'), `${bad}: ${String(err)}`).toBe(true);
    }
  });
});

describe('tcp framing over a real socket', () => {
  it('reassembles frames a raw peer writes one byte at a time', async () => {
    const p = await rawPair();
    const stream = concat([STREAM_PREAMBLE, encodeFrame(new TextEncoder().encode('split')), encodeFrame(new Uint8Array(0)), encodeFrame(Uint8Array.of(1, 2, 3))]);
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
    const err = await tcp().dial(`tcp://127.0.0.1:${port}`, { timeoutMs: 5000 }).catch((e: unknown) => e);
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
      expect(got.map((m) => m.byteLength), `directReads ${directReads}`).toEqual(sizes);
      const differing = got.flatMap((m, i) => (Buffer.from(m).equals(Buffer.from(sent[i]!)) ? [] : [i]));
      expect(differing, `directReads ${directReads}: messages whose bytes differ`).toEqual([]);
      client.abort();
      server.abort();
      await listener.close();
    }
  });
});
