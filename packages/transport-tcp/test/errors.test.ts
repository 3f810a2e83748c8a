// Node socket errors → typed transport errors (src/errors.ts).
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isTransportError } from '@tandem/transport';
import { mapSocketError, tcp } from '@tandem/transport-tcp';
import { generateTlsFixtures } from './tls-fixtures.js';

const nodeError = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('mapSocketError', () => {
  // These branches were unreachable while isTransportError accepted any error whose code began with ERR_:
  // Node's own error was handed back as if it were a transport error.
  it("maps Node's ERR_ codes to the typed errors", () => {
    for (const code of ['ERR_SOCKET_BAD_PORT', 'ERR_INVALID_ADDRESS']) {
      const err = mapSocketError(nodeError(code), 'tcp://h:1');
      expect(isTransportError(err, 'InvalidAddressError'), `${code}: ${String(err)}`).toBe(true);
      expect(err.cause).toBeInstanceOf(Error);
    }
    for (const code of ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_OSSL_EVP_BAD_DECRYPT']) {
      const err = mapSocketError(nodeError(code), 'tls://h:1');
      expect(isTransportError(err, 'ConnectionRefusedError'), `${code}: ${String(err)}`).toBe(true);
      expect(err.message).toMatch(/TLS handshake/);
    }
    expect(isTransportError(mapSocketError(nodeError('ERR_STREAM_DESTROYED'), 'tcp://h:1'), 'ConnectionClosedError')).toBe(true);
  });

  it('keeps a transport error as it is', () => {
    const first = mapSocketError(nodeError('ECONNREFUSED'), 'tcp://h:1');
    expect(mapSocketError(first, 'tcp://h:1')).toBe(first);
  });

  it('a tls:// dial to a peer that does not speak TLS fails with ConnectionRefusedError, not a raw Node error', async () => {
    const certs = generateTlsFixtures();
    // Answers every connection with bytes that are not a TLS record (the client's handshake fails: ERR_SSL_…).
    const server: Server = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      const err = await tcp({ tls: { ca: certs.ca } })
        .dial(`tls://127.0.0.1:${port}`, { timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(isTransportError(err, 'ConnectionRefusedError'), String(err)).toBe(true);
      expect((err as { cause?: { code?: string } }).cause?.code).toMatch(/^ERR_SSL_/);
    } finally {
      server.close();
      certs.dispose();
    }
  });
});
