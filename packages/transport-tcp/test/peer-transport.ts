// Loaded by the compliance suite's child-process peer: the transport the peer dials with.
// For tls, the test passes the client credentials through TANDEM_TEST_TLS_* environment variables.
import { tcp } from '@tandem/transport-tcp';

export function createTransport() {
  const ca = process.env.TANDEM_TEST_TLS_CA;
  if (!ca) return tcp();
  return tcp({ tls: { ca, key: process.env.TANDEM_TEST_TLS_KEY, cert: process.env.TANDEM_TEST_TLS_CERT } });
}
