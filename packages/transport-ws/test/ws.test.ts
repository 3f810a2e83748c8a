// WebSocket-specific behaviour; the shared contract is checked by compliance.test.ts.
// Fixtures: a test CA, server and client certificates (P-256, valid 100 years, SAN 127.0.0.1), and a
// second unrelated CA, made with openssl; test-only keys.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { isTransportError, type CloseInfo, type Connection, type Listener } from '@tandem/transport';
import { websocket } from '../src/index.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(transport = websocket(), address = 'ws://127.0.0.1:0/tandem', options = {}): Promise<Listener> {
  const l = await transport.listen(address, options);
  cleanups.push(() => l.close());
  return l;
}

async function firstConnection(listener: Listener): Promise<Connection> {
  const it = listener[Symbol.asyncIterator]();
  const next = await it.next();
  if (next.done) throw new Error('listener ended');
  cleanups.push(() => next.value.abort());
  return next.value;
}

async function pair(transport = websocket(), listenOptions = {}, dialOptions = {}): Promise<[Connection, Connection, Listener]> {
  const listener = await listen(transport, 'ws://127.0.0.1:0/tandem', listenOptions);
  const accepted = firstConnection(listener);
  const dialed = await transport.dial(listener.address, dialOptions);
  cleanups.push(() => dialed.abort());
  return [dialed, await accepted, listener];
}

async function readOne(conn: Connection): Promise<Uint8Array> {
  for await (const m of conn) return m;
  throw new Error('connection ended without a message');
}

function rawClient(address: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(address, { perMessageDeflate: false, ...options });
  ws.on('error', () => {});
  cleanups.push(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('ws transport specifics', () => {
  it('serves ws:// on the given path and reports the concrete port', async () => {
    const [a, b, listener] = await pair();
    expect(listener.address).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/tandem$/);
    expect(listener.address).not.toContain(':0/');
    await a.send(new Uint8Array([1, 2, 3]));
    expect([...(await readOne(b))]).toEqual([1, 2, 3]);
    expect(b.remoteAddress).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/tandem$/);
  });

  it('refuses a dial to a path nobody serves with ConnectionRefusedError', async () => {
    const listener = await listen();
    const wrong = listener.address.replace('/tandem', '/other');
    const err = await websocket()
      .dial(wrong)
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'ConnectionRefusedError')).toBe(true);
  });

  it('closes with ProtocolError when the peer sends a text frame, and the listener keeps serving', async () => {
    const listener = await listen();
    const accepted = firstConnection(listener);
    const raw = await rawClient(listener.address);
    const conn = await accepted;
    raw.send('hello as text');
    const info = await conn.closed;
    expect(info.error?.name).toBe('ProtocolError');
    const rawClosed = await new Promise<number>((resolve) => raw.once('close', resolve));
    expect(rawClosed).toBe(1003);
    // still serving
    const again = await websocket().dial(listener.address);
    cleanups.push(() => again.abort());
    expect(again.isClosed).toBe(false);
  });

  it('closes with MessageTooLargeError (code 1009) when a frame exceeds maxMessageSize', async () => {
    const listener = await listen(websocket(), 'ws://127.0.0.1:0/tandem', { maxMessageSize: 1024 });
    const accepted = firstConnection(listener);
    const raw = await rawClient(listener.address);
    const conn = await accepted;
    const code = new Promise<number>((resolve) => raw.once('close', resolve));
    raw.send(new Uint8Array(1025));
    const info = await conn.closed;
    expect(info.error?.name).toBe('MessageTooLargeError');
    expect(await code).toBe(1009);
  });

  it('answers garbage bytes on the raw TCP port with an HTTP error, no crash, and keeps serving', async () => {
    const listener = await listen();
    const port = Number(new URL(listener.address).port);
    const reply = await new Promise<string>((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => s.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a])));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    const [a, b] = await Promise.all([websocket().dial(listener.address), firstConnection(listener)]);
    cleanups.push(() => a.abort());
    await a.send(new Uint8Array([9]));
    expect([...(await readOne(b))]).toEqual([9]);
  });

  it('closes with ProtocolError when garbage follows a valid upgrade', async () => {
    const listener = await listen();
    const accepted = firstConnection(listener);
    const port = Number(new URL(listener.address).port);
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => {});
    cleanups.push(() => void s.destroy());
    s.write(
      'GET /tandem HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const conn = await accepted;
    s.write(Buffer.from([0x8f, 0x80, 0, 0, 0, 0, 0xff, 0xff])); // reserved opcode 0xF
    const info = await conn.closed;
    expect(info.error?.name).toBe('ProtocolError');
  });

  it('closes with TimeoutError when the peer stops answering pings', async () => {
    const listener = await listen(websocket({ pingIntervalMs: 50, livenessTimeoutMs: 200 }));
    const accepted = firstConnection(listener);
    await rawClient(listener.address, { autoPong: false }); // sends nothing, answers nothing
    const conn = await accepted;
    const info: CloseInfo = await conn.closed;
    expect(info.error?.name).toBe('TimeoutError');
    expect(info.reason).toBe('liveness timeout');
  });

  it('keeps a connection whose reader is paused alive, and delivers everything after it resumes', async () => {
    const transport = websocket({ pingIntervalMs: 50, livenessTimeoutMs: 400 });
    const [a, b] = await pair(transport, { receiveHighWaterMark: 64 * 1024 });
    let settled = 0;
    const sending = (async () => {
      for (let i = 0; i < 400; i++) {
        const chunk = new Uint8Array(64 * 1024); // a fresh buffer: a sent buffer must not be modified
        chunk[0] = i & 0xff;
        await a.send(chunk);
        settled++;
      }
    })();
    // Wait until the sender is blocked: the number of settled sends stops growing.
    let last = -1;
    while (settled !== last) {
      last = settled;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(settled).toBeLessThan(400);
    expect(a.isClosed).toBe(false);
    expect(b.isClosed).toBe(false);
    let received = 0;
    for await (const m of b) {
      expect(m[0]).toBe(received & 0xff);
      if (++received === 400) break;
    }
    await sending;
    expect(received).toBe(400);
  });

  describe('wss', () => {
    const serverTls = { key: fixture('server.key'), cert: fixture('server.crt'), ca: fixture('ca.crt') };

    it('carries messages over TLS', async () => {
      const listener = await listen(websocket({ tls: serverTls }), 'wss://127.0.0.1:0/secure');
      expect(listener.address).toMatch(/^wss:\/\//);
      const accepted = firstConnection(listener);
      const a = await websocket({ tls: { ca: fixture('ca.crt') } }).dial(listener.address);
      cleanups.push(() => a.abort());
      await a.send(new Uint8Array([7]));
      expect([...(await readOne(await accepted))]).toEqual([7]);
    });

    it('rejects a server certificate from an unknown CA with ProtocolError', async () => {
      const listener = await listen(websocket({ tls: serverTls }), 'wss://127.0.0.1:0/secure');
      const err = await websocket({ tls: { ca: fixture('other-ca.crt') } })
        .dial(listener.address)
        .catch((e: unknown) => e);
      expect(isTransportError(err, 'ProtocolError')).toBe(true);
    });

    it('with mutual TLS, accepts a client with a certificate and refuses one without', async () => {
      const listener = await listen(websocket({ tls: { ...serverTls, requireClientCertificate: true } }), 'wss://127.0.0.1:0/secure');
      const accepted = firstConnection(listener);
      const withCert = await websocket({ tls: { ca: fixture('ca.crt'), key: fixture('client.key'), cert: fixture('client.crt') } }).dial(
        listener.address,
      );
      cleanups.push(() => withCert.abort());
      await withCert.send(new Uint8Array([5]));
      expect([...(await readOne(await accepted))]).toEqual([5]);
      const err = await websocket({ tls: { ca: fixture('ca.crt') } })
        .dial(listener.address, { timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(err)).toBe(true);
      expect((err as Error).name).not.toBe('TimeoutError');
    });
  });

  describe('resource bounds', () => {
    const UPGRADE =
      'GET /tandem HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    /** A masked client frame: FIN/opcode byte, then the payload (short lengths only). */
    const clientFrame = (first: number, payload: Uint8Array): Buffer =>
      Buffer.concat([Buffer.from([first, 0x80 | payload.byteLength, 0, 0, 0, 0]), payload]); // mask 0: bytes as they are

    async function upgradedRaw(listener: Listener): Promise<Socket> {
      const port = Number(new URL(listener.address).port);
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume();
      cleanups.push(() => void s.destroy());
      s.write(UPGRADE);
      return s;
    }

    it('closes with TimeoutError when the peer stops inside a frame after the upgrade', async () => {
      const listener = await listen(websocket(), 'ws://127.0.0.1:0/tandem', { partialFrameTimeoutMs: 200 });
      const accepted = firstConnection(listener);
      const raw = await upgradedRaw(listener);
      const conn = await accepted;
      const frame = clientFrame(0x82, new Uint8Array([1, 2, 3, 4, 5]));
      raw.write(frame.subarray(0, 8)); // header, mask and 2 of 5 payload bytes
      const info = await conn.closed;
      expect(info.error?.name).toBe('TimeoutError');
      expect(info.reason).toBe('partial frame timeout');
    });

    it('closes with TimeoutError when a fragmented message stops between its fragments, not when idle between messages', async () => {
      const listener = await listen(websocket(), 'ws://127.0.0.1:0/tandem', { partialFrameTimeoutMs: 200 });
      const accepted = firstConnection(listener);
      const raw = await upgradedRaw(listener);
      const conn = await accepted;
      raw.write(clientFrame(0x82, new Uint8Array([9]))); // one whole message
      expect([...(await readOne(conn))]).toEqual([9]);
      await new Promise((r) => setTimeout(r, 500)); // idle between messages: fine
      expect(conn.isClosed).toBe(false);
      raw.write(clientFrame(0x02, new Uint8Array([1]))); // first fragment (no FIN), then nothing
      const info = await conn.closed;
      expect(info.error?.name).toBe('TimeoutError');
      expect(info.reason).toBe('partial frame timeout');
    });

    it('a dialled connection follows frames from the bytes that came with the upgrade answer, and times out a partial one', async () => {
      // a hand-written server: the 101 answer, a whole binary message [7] and half a frame, in one write
      const server = createNetServer((s) => {
        s.on('error', () => {});
        let request = '';
        s.on('data', (d) => {
          request += d.toString('latin1');
          if (!request.includes('\r\n\r\n')) return;
          const key = /sec-websocket-key: *(\S+)/i.exec(request)![1]!;
          const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
          s.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
                'latin1',
              ),
              Buffer.from([0x82, 1, 7]),
              Buffer.from([0x82, 10, 1, 2]),
            ]),
          );
          request = '';
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      const port = (server.address() as AddressInfo).port;
      const conn = await websocket().dial(`ws://127.0.0.1:${port}/tandem`, { partialFrameTimeoutMs: 200 });
      cleanups.push(() => conn.abort());
      expect([...(await readOne(conn))]).toEqual([7]);
      const info = await conn.closed;
      expect(info.error?.name).toBe('TimeoutError');
      expect(info.reason).toBe('partial frame timeout');
    });

    it('hands on up to sendHighWaterMark bytes to a peer that does not read (ws buffer, beyond the kernel buffers)', async () => {
      const handedOn = async (sendHighWaterMark: number): Promise<number> => {
        const listener = await listen(websocket(), 'ws://127.0.0.1:0/tandem', { sendHighWaterMark });
        const accepted = firstConnection(listener);
        const raw = await rawClient(listener.address);
        (raw as unknown as { _socket: Socket })._socket.pause(); // never reads
        const sender = await accepted;
        const chunk = new Uint8Array(64 * 1024);
        let bytes = 0;
        for (let i = 0; i < 10_000; i++) {
          const r = await Promise.race([
            sender.send(chunk).then(() => 'sent'),
            new Promise((res) => setTimeout(() => res('pending'), 300)),
          ]);
          if (r === 'pending') break;
          bytes += chunk.byteLength;
        }
        return bytes;
      };
      const small = await handedOn(64 * 1024);
      const large = await handedOn(8 * 1024 * 1024);
      // the kernel buffers are the same for both; the difference is what ws was allowed to hold
      expect(large - small).toBeGreaterThan(4 * 1024 * 1024);
      expect(large - small).toBeLessThan(8 * 1024 * 1024 + 2 * 64 * 1024);
    });

    it('with wss, cuts off a client that stops inside its TLS handshake after tlsHandshakeTimeoutMs', async () => {
      const tls = { key: fixture('server.key'), cert: fixture('server.crt'), ca: fixture('ca.crt') };
      const listener = await listen(websocket({ tls, tlsHandshakeTimeoutMs: 300 }), 'wss://127.0.0.1:0/secure');
      const port = Number(new URL(listener.address).port);
      const raw = netConnect(port, '127.0.0.1', () => raw.write(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0xff, 0x01)));
      raw.on('error', () => {});
      raw.resume();
      cleanups.push(() => void raw.destroy());
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        new Promise<string>((r) => raw.once('close', () => r('closed'))),
        new Promise<string>((r) => (timer = setTimeout(() => r('still open'), 5_000))),
      ]);
      clearTimeout(timer);
      expect(outcome).toBe('closed');
    });
  });
});
