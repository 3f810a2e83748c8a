// ZeroMQ-specific behaviour; the shared contract is checked by compliance.test.ts. "Raw" peers here are
// plain zeromq.js sockets speaking (or breaking) Tandem's frame protocol by hand.
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { isTransportError, type Connection, type Listener } from '@tandem/transport';
import { curveKeyPair, zeromq, type ZeroMqTransportOptions } from '../src/index.js';
import { Kind, PROTOCOL_VERSION, encodeGreeting } from '../src/wire.js';
import { zmtpGreeting } from './zmtp-raw.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(options: ZeroMqTransportOptions = {}, listenOptions = {}): Promise<Listener> {
  const l = await zeromq(options).listen('zmq+tcp://127.0.0.1:0', listenOptions);
  cleanups.push(() => l.close());
  return l;
}

async function nextConnection(it: AsyncIterator<Connection>): Promise<Connection> {
  const r = await it.next();
  if (r.done) throw new Error('listener ended');
  cleanups.push(() => r.value.abort());
  return r.value;
}

async function readOne(conn: Connection): Promise<Uint8Array> {
  for await (const m of conn) return m;
  throw new Error('connection ended without a message');
}

const endpoint = (address: string): string => address.replace('zmq+tcp://', 'tcp://');
const hello = (): Buffer[] => [
  Buffer.from([Kind.Hello]),
  encodeGreeting({ version: PROTOCOL_VERSION, maxMessageSize: 1 << 20, window: 1 << 20 }),
];

function rawDealer(address: string): zmq.Dealer {
  const d = new zmq.Dealer({ linger: 0 });
  d.connect(endpoint(address));
  cleanups.push(() => d.close());
  return d;
}

describe('zeromq transport specifics', () => {
  it('ignores frames from a routing id that never said HELLO, and keeps serving', async () => {
    const listener = await listen();
    const it = listener[Symbol.asyncIterator]();
    const stranger = rawDealer(listener.address);
    await stranger.send([Buffer.from([Kind.Data]), Buffer.from('sneaky')]);
    await stranger.send([Buffer.from('not even a kind byte')]);
    const conn = await zeromq().dial(listener.address);
    cleanups.push(() => conn.abort());
    const accepted = await nextConnection(it);
    await conn.send(new Uint8Array([1, 2]));
    // the first (and only) accepted connection is the proper one, and it carries the proper message
    expect([...(await readOne(accepted))]).toEqual([1, 2]);
  });

  it('drops raw garbage (and a truncated greeting, at the handshake deadline) while an open connection keeps working', async () => {
    const listener = await listen({ zmtpHandshakeTimeoutMs: 500 });
    const it = listener[Symbol.asyncIterator]();
    const conn = await zeromq().dial(listener.address);
    cleanups.push(() => conn.abort());
    const accepted = await nextConnection(it);
    const port = Number(new URL(listener.address).port);
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(64, 0xff),
      Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]),
    ];
    for (const bytes of garbage) {
      await new Promise<void>((resolve, reject) => {
        const s = netConnect(port, '127.0.0.1', () => s.write(bytes));
        s.on('error', () => {});
        s.resume();
        s.on('close', () => resolve());
        setTimeout(() => reject(new Error('the ROUTER kept a garbage stream open')), 10_000).unref();
      });
    }
    await conn.send(new Uint8Array([3]));
    expect([...(await readOne(accepted))]).toEqual([3]);
    expect(accepted.isClosed).toBe(false);
  });

  it('closes with ProtocolError on an unknown frame kind after HELLO, and tells the peer', async () => {
    const listener = await listen();
    const it = listener[Symbol.asyncIterator]();
    const raw = rawDealer(listener.address);
    await raw.send(hello());
    const [welcome] = await raw.receive();
    expect(welcome![0]).toBe(Kind.Welcome);
    const conn = await nextConnection(it);
    await raw.send([Buffer.from([0x7e]), Buffer.from('garbage')]);
    const info = await conn.closed;
    expect(info.error?.name).toBe('ProtocolError');
    expect(info.by).toBe('remote');
    const [kind, payload] = await raw.receive();
    expect(kind![0]).toBe(Kind.Close);
    expect(payload![0]).toBe(1); // CloseCode.ProtocolError
  });

  it('closes with ProtocolError when a peer ignores flow control', async () => {
    const window = 64 * 1024;
    const listener = await listen({}, { receiveHighWaterMark: window, maxMessageSize: 16 * 1024 });
    const it = listener[Symbol.asyncIterator]();
    const raw = rawDealer(listener.address);
    await raw.send(hello());
    await raw.receive();
    const conn = await nextConnection(it);
    // nobody reads, so no credit comes back; the raw peer keeps sending anyway
    const chunk = Buffer.alloc(16 * 1024);
    for (let i = 0; i < 16; i++) await raw.send([Buffer.from([Kind.Data]), chunk]);
    const info = await conn.closed;
    expect(info.error?.name).toBe('ProtocolError');
    expect(info.error?.message).toMatch(/flow control/);
  });

  it('closes with TimeoutError when the peer goes silent', async () => {
    const listener = await listen({ pingIntervalMs: 50, livenessTimeoutMs: 300 });
    const it = listener[Symbol.asyncIterator]();
    const raw = rawDealer(listener.address); // never answers pings
    await raw.send(hello());
    const conn = await nextConnection(it);
    const info = await conn.closed;
    expect(info.error?.name).toBe('TimeoutError');
    expect(info.reason).toBe('liveness timeout');
  });

  it('the dialler sees the connection reset when the listener socket goes away', async () => {
    const router = new zmq.Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:0');
    let routerOpen = true;
    cleanups.push(() => void (routerOpen && router.close()));
    const address = router.lastEndpoint!.replace('tcp://', 'zmq+tcp://');
    const dialing = zeromq().dial(address);
    const [id] = await router.receive();
    await router.send([
      id!,
      Buffer.from([Kind.Welcome]),
      encodeGreeting({ version: PROTOCOL_VERSION, maxMessageSize: 1 << 20, window: 1 << 20 }),
    ]);
    const conn = await dialing;
    cleanups.push(() => conn.abort());
    router.close();
    routerOpen = false;
    const info = await conn.closed;
    expect(info.by).toBe('remote');
    expect(info.error?.name).toBe('ConnectionClosedError');
    expect(isTransportError(await conn.send(new Uint8Array(1)).catch((e: unknown) => e), 'ConnectionClosedError')).toBe(true);
  });

  it('releases the port once a closed listener has no connections left', async () => {
    const listener = await zeromq().listen('zmq+tcp://127.0.0.1:0');
    const it = listener[Symbol.asyncIterator]();
    const conn = await zeromq().dial(listener.address);
    const accepted = await nextConnection(it);
    await listener.close();
    // still bound while a connection lives: a second listen fails
    const again = await zeromq()
      .listen(listener.address)
      .catch((e: unknown) => e);
    expect(isTransportError(again, 'AddressInUseError')).toBe(true);
    await conn.close();
    await accepted.closed;
    let relisten: Listener | undefined;
    for (let i = 0; i < 100 && !relisten; i++) {
      relisten = await zeromq()
        .listen(listener.address)
        .catch(() => undefined);
      if (!relisten) await new Promise((r) => setTimeout(r, 20));
    }
    expect(relisten).toBeDefined();
    await relisten?.close();
  });

  describe('CURVE', () => {
    const server = curveKeyPair();
    const client = curveKeyPair();

    it('carries messages between ends with matching keys', async () => {
      const listener = await listen({ curve: { publicKey: server.publicKey, secretKey: server.secretKey } });
      const it = listener[Symbol.asyncIterator]();
      const conn = await zeromq({ curve: { ...client, serverKey: server.publicKey } }).dial(listener.address);
      cleanups.push(() => conn.abort());
      const accepted = await nextConnection(it);
      await conn.send(new Uint8Array([42]));
      expect([...(await readOne(accepted))]).toEqual([42]);
      await accepted.send(new Uint8Array([43]));
      expect([...(await readOne(conn))]).toEqual([43]);
    });

    it('fails a dial with the wrong server key, or without CURVE, with a typed error', async () => {
      const listener = await listen({ curve: { publicKey: server.publicKey, secretKey: server.secretKey } });
      const wrongKey = await zeromq({ curve: { ...client, serverKey: curveKeyPair().publicKey } })
        .dial(listener.address, { timeoutMs: 3_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(wrongKey), String(wrongKey)).toBe(true);
      const plain = await zeromq()
        .dial(listener.address, { timeoutMs: 3_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(plain), String(plain)).toBe(true);
      // and a proper dial still works afterwards
      const it = listener[Symbol.asyncIterator]();
      const ok = await zeromq({ curve: { ...client, serverKey: server.publicKey } }).dial(listener.address);
      cleanups.push(() => ok.abort());
      await ok.send(new Uint8Array([1]));
      expect([...(await readOne(await nextConnection(it)))]).toEqual([1]);
    });

    it('rejects malformed keys when the transport is created', () => {
      expect(() => zeromq({ curve: { publicKey: 'short', secretKey: server.secretKey } })).toThrow(RangeError);
      const curve = { publicKey: server.publicKey, secretKey: server.secretKey };
      expect(() => zeromq({ curve: { ...curve, allowedClientKeys: ['short'] } })).toThrow(/allowedClientKeys/);
      expect(() => zeromq({ curve: { ...curve, allowedClientKeys: ['~'.repeat(40)] } })).toThrow(/allowedClientKeys/);
      expect(() => zeromq({ curve: { ...curve, allowedClientKeys: [client.publicKey] } })).not.toThrow();
    });
  });

  describe('CURVE client authentication (allowedClientKeys, checked by a ZAP handler)', () => {
    const server = curveKeyPair();
    const alice = curveKeyPair();
    const mallory = curveKeyPair();
    const serverCurve = { publicKey: server.publicKey, secretKey: server.secretKey };
    const dialAs = (keys: { publicKey: string; secretKey: string }, address: string, timeoutMs = 10_000) =>
      zeromq({ curve: { ...keys, serverKey: server.publicKey } }).dial(address, { timeoutMs });

    /** A listener that records what it accepts. */
    async function curveListener(allowedClientKeys: NonNullable<ZeroMqTransportOptions['curve']>['allowedClientKeys']) {
      const listener = await listen({ curve: { ...serverCurve, allowedClientKeys } });
      const accepted: Connection[] = [];
      const it = listener[Symbol.asyncIterator]();
      void (async () => {
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          cleanups.push(() => r.value.abort());
          accepted.push(r.value);
        }
      })();
      return { listener, accepted };
    }

    async function expectWorks(address: string, accepted: Connection[], keys = alice): Promise<void> {
      const before = accepted.length;
      const conn = await dialAs(keys, address);
      cleanups.push(() => conn.abort());
      await conn.send(new Uint8Array([7]));
      for (let i = 0; i < 200 && accepted.length === before; i++) await new Promise((r) => setTimeout(r, 10));
      expect([...(await readOne(accepted[accepted.length - 1]!))]).toEqual([7]);
    }

    it('accepts an allowed client key and refuses another with ConnectionRefusedError (not a timeout), then keeps serving', async () => {
      const { listener, accepted } = await curveListener([alice.publicKey]);
      await expectWorks(listener.address, accepted);
      const err = await dialAs(mallory, listener.address).catch((e: unknown) => e);
      expect(isTransportError(err, 'ConnectionRefusedError'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/handshake/);
      expect(accepted).toHaveLength(1);
      await expectWorks(listener.address, accepted);
      expect(accepted).toHaveLength(2);
    });

    it('asks a function with the client key and address, and may answer asynchronously', async () => {
      const asked: Array<{ key: string; address: string }> = [];
      const { listener, accepted } = await curveListener(async (key, peer) => {
        asked.push({ key, address: peer.address });
        await new Promise((r) => setTimeout(r, 5));
        return key === alice.publicKey;
      });
      await expectWorks(listener.address, accepted);
      expect(isTransportError(await dialAs(mallory, listener.address).catch((e: unknown) => e), 'ConnectionRefusedError')).toBe(true);
      expect(asked).toEqual([
        { key: alice.publicKey, address: '127.0.0.1' },
        { key: mallory.publicKey, address: '127.0.0.1' },
      ]);
      expect(accepted).toHaveLength(1);
    });

    it('refuses a client when the check throws', async () => {
      const { listener, accepted } = await curveListener(() => {
        throw new Error('database down');
      });
      expect(isTransportError(await dialAs(alice, listener.address).catch((e: unknown) => e), 'ConnectionRefusedError')).toBe(true);
      expect(accepted).toHaveLength(0);
    });

    it('refuses a dialler without CURVE (ProtocolError: the mechanisms differ) and one with the wrong server key', async () => {
      const { listener, accepted } = await curveListener([alice.publicKey]);
      const plain = await zeromq()
        .dial(listener.address, { timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(plain, 'ProtocolError'), String(plain)).toBe(true);
      const wrongServer = await zeromq({ curve: { ...alice, serverKey: curveKeyPair().publicKey } })
        .dial(listener.address, { timeoutMs: 3_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(wrongServer), String(wrongServer)).toBe(true);
      expect(accepted).toHaveLength(0);
      await expectWorks(listener.address, accepted);
    });

    it('keeps the allow-lists of several listeners apart, and works again after every listener has closed', async () => {
      const a = await curveListener([alice.publicKey]);
      const m = await curveListener([mallory.publicKey]);
      await expectWorks(a.listener.address, a.accepted, alice);
      await expectWorks(m.listener.address, m.accepted, mallory);
      expect(isTransportError(await dialAs(mallory, a.listener.address).catch((e: unknown) => e), 'ConnectionRefusedError')).toBe(true);
      expect(isTransportError(await dialAs(alice, m.listener.address).catch((e: unknown) => e), 'ConnectionRefusedError')).toBe(true);
      // close everything: the ZAP handler goes away with the last listener socket, and comes back
      for (const c of cleanups.splice(0).reverse()) await c();
      await new Promise((r) => setTimeout(r, 200));
      const again = await curveListener([alice.publicKey]);
      await expectWorks(again.listener.address, again.accepted, alice);
      expect(isTransportError(await dialAs(mallory, again.listener.address).catch((e: unknown) => e), 'ConnectionRefusedError')).toBe(true);
    });
  });

  describe('resource bounds', () => {
    it('holds at most sendHighWaterMark bytes in flight for a peer that announces a huge window and never credits', async () => {
      const sendHighWaterMark = 256 * 1024;
      const listener = await listen({ pingIntervalMs: 0 }, { sendHighWaterMark });
      const it = listener[Symbol.asyncIterator]();
      const raw = rawDealer(listener.address);
      await raw.send([
        Buffer.from([Kind.Hello]),
        encodeGreeting({ version: PROTOCOL_VERSION, maxMessageSize: 1 << 20, window: 0xffff_ffff }),
      ]);
      await raw.receive(); // WELCOME; the raw peer reads nothing more and grants no credit
      const conn = await nextConnection(it);
      const chunk = new Uint8Array(64 * 1024);
      let handedOn = 0;
      for (let i = 0; i < 2_000; i++) {
        const r = await Promise.race([conn.send(chunk).then(() => 'sent'), new Promise((res) => setTimeout(() => res('pending'), 300))]);
        if (r === 'pending') break;
        handedOn += chunk.byteLength;
      }
      expect(handedOn).toBeGreaterThan(0);
      expect(handedOn).toBeLessThanOrEqual(sendHighWaterMark + chunk.byteLength);
    });

    it('cuts off a ZMTP handshake that stops half-way at partialFrameTimeoutMs (shorter than zmtpHandshakeTimeoutMs)', async () => {
      const listener = await listen({ zmtpHandshakeTimeoutMs: 60_000 }, { partialFrameTimeoutMs: 200 });
      const port = Number(new URL(listener.address).port);
      const outcome = await new Promise<string>((resolve) => {
        const s = netConnect(port, '127.0.0.1', () => s.write(zmtpGreeting().subarray(0, 20)));
        s.on('error', () => {});
        s.resume();
        s.on('close', () => resolve('closed'));
        setTimeout(() => {
          s.destroy();
          resolve('still open');
        }, 5_000).unref();
      });
      expect(outcome).toBe('closed');
    });
  });
});
