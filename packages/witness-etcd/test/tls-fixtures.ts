// Test certificates for a TLS etcd: the transports' fixtures (openssl CLI, EC P-256: a CA, a server
// certificate for 127.0.0.1 and a client certificate signed by the CA), as the file paths etcd and
// EtcdWitness take.
import { join } from 'node:path';
import { generateTlsFixtures } from '../../transport-tcp/test/tls-fixtures.js';

export interface EtcdTlsFixtures {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  dispose(): void;
}

export function makeEtcdTlsFixtures(): EtcdTlsFixtures {
  const f = generateTlsFixtures();
  return {
    ca: join(f.dir, 'ca.crt'),
    serverCert: join(f.dir, 'server.crt'),
    serverKey: join(f.dir, 'server.key'),
    clientCert: join(f.dir, 'client.crt'),
    clientKey: join(f.dir, 'client.key'),
    dispose: f.dispose,
  };
}
