// tcp:// and tls:// (mutual authentication) run the shared transport compliance suite.
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { describeTransportCompliance } from '@tandem/transport/compliance';
import { tcpHarness } from './harness.js';
import { generateTlsFixtures } from './tls-fixtures.js';

const peerModule = fileURLToPath(new URL('./peer-transport.ts', import.meta.url));

describeTransportCompliance(tcpHarness('tcp', {}, peerModule));

const certs = generateTlsFixtures();
afterAll(() => certs.dispose());
// the child-process peer reads its client credentials from the environment it inherits
process.env.TANDEM_TEST_TLS_CA = certs.ca;
process.env.TANDEM_TEST_TLS_KEY = certs.clientKey;
process.env.TANDEM_TEST_TLS_CERT = certs.clientCert;

describeTransportCompliance(
  tcpHarness('tls', { tls: { ca: certs.ca, key: certs.serverKey, cert: certs.serverCert, requestCert: true } }, peerModule, {
    ca: certs.ca,
    key: certs.clientKey,
    cert: certs.clientCert,
  }),
);
