// Mutual TLS: a server with requestCert refuses clients without a certificate from its CA.
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
    const err = await tcp().listen('tls://127.0.0.1:0').catch((e: unknown) => e);
    expect(isTransportError(err, 'InvalidAddressError')).toBe(true);
  });
});
