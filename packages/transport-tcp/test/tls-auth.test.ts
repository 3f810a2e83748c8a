// Mutual TLS: a server with requestCert refuses clients without a certificate from its CA.
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { isTransportError, type Connection, type Listener } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { generateTlsFixtures } from './tls-fixtures.js';

const certs = generateTlsFixtures();
afterAll(() => certs.dispose());

async function mutualServer(): Promise<{ listener: Listener; accepted: Connection[] }> {
  const server = tcp({ tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true } });
  const listener = await server.listen('tls://127.0.0.1:0');
  const accepted: Connection[] = [];
  void (async () => {
    for await (const c of listener) {
      accepted.push(c);
      void (async () => {
        for await (const m of c) await c.send(m);
      })().catch(() => undefined);
    }
  })();
  return { listener, accepted };
}

describe('tls mutual authentication', () => {
  it('accepts a client with a certificate signed by the CA, and the bytes are encrypted end to end', async () => {
    const { listener, accepted } = await mutualServer();
    const client = tcp({ tls: { ca: certs.ca, key: certs.clientKey, cert: certs.clientCert } });
    const conn = await client.dial(listener.address);
    await conn.send(new TextEncoder().encode('secret'));
    const { value } = await conn[Symbol.asyncIterator]().next();
    expect(new TextDecoder().decode(value)).toBe('secret');
    expect(accepted).toHaveLength(1);
    await conn.close();
    await listener.close();
  });

  it('refuses a client without a certificate: the dial fails with a typed error, nothing is accepted', async () => {
    const { listener, accepted } = await mutualServer();
    const client = tcp({ tls: { ca: certs.ca } });
    const err = await client.dial(listener.address, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isTransportError(err), String(err)).toBe(true);
    expect((err as Error).name, String(err)).toBe('ConnectionRefusedError');
    expect((err as { nothingListens?: boolean }).nothingListens, 'a TLS refusal is no proof that nothing listens').toBe(false);
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const { listener, accepted } = await mutualServer();
    const client = tcp({ tls: { ca: certs.ca, key: certs.rogueClientKey, cert: certs.rogueClientCert } });
    const err = await client.dial(listener.address, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isTransportError(err), String(err)).toBe(true);
    expect((err as Error).name, String(err)).toBe('ConnectionRefusedError');
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it('refuses a server whose certificate the client does not trust', async () => {
    const { listener, accepted } = await mutualServer();
    const client = tcp({ tls: { key: certs.clientKey, cert: certs.clientCert } }); // no ca: Node's roots only
    const err = await client.dial(listener.address, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isTransportError(err, 'ConnectionRefusedError'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/TLS/);
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it('will not listen on tls:// without a key and certificate', async () => {
    const err = await tcp()
      .listen('tls://127.0.0.1:0')
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'InvalidAddressError')).toBe(true);
  });
});

describe('tls handshake deadline', () => {
  it('cuts off a client that stops in the middle of its TLS handshake after tlsHandshakeTimeoutMs, and keeps serving', async () => {
    const server = tcp({
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true },
      tlsHandshakeTimeoutMs: 300,
    });
    const listener = await server.listen('tls://127.0.0.1:0');
    const url = new URL(listener.address);
    const raw = connect({ host: '127.0.0.1', port: Number(url.port) }, () => raw.write(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0xff, 0x01)));
    raw.on('error', () => undefined);
    raw.resume();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      new Promise<string>((r) => raw.once('close', () => r('closed'))),
      new Promise<string>((r) => (timer = setTimeout(() => r('still open'), 5_000))),
    ]);
    clearTimeout(timer);
    raw.destroy();
    expect(outcome).toBe('closed');
    const it = listener[Symbol.asyncIterator]();
    const conn = await tcp({ tls: { ca: certs.ca, key: certs.clientKey, cert: certs.clientCert } }).dial(listener.address);
    await conn.send(Uint8Array.of(1));
    const accepted = (await it.next()).value as Connection;
    expect([...((await accepted[Symbol.asyncIterator]().next()).value as Uint8Array)]).toEqual([1]);
    await conn.close();
    await listener.close();
  });
});
