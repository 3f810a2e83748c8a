// etcds:// — the witness and the shard map over TLS with client certificates, against a real etcd.
import { type EtcdServer, startEtcd } from '@tandem/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdShardMap, EtcdWitness, isWitnessEtcdError, writeShardMap } from '../src/index.js';
import { requireEtcd } from './etcd-harness.js';
import { type EtcdTlsFixtures, makeEtcdTlsFixtures } from './tls-fixtures.js';

const haveEtcd = requireEtcd('witness-etcd TLS');

describe.skipIf(!haveEtcd)('EtcdWitness over TLS (etcds://)', () => {
  let etcd: EtcdServer;
  let certs: EtcdTlsFixtures;
  const closing: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    certs = makeEtcdTlsFixtures();
    etcd = await startEtcd({
      tls: {
        certFile: certs.serverCert,
        keyFile: certs.serverKey,
        caFile: certs.ca,
        clientCertAuth: true,
        clientCertFile: certs.clientCert,
        clientKeyFile: certs.clientKey,
      },
    });
  });
  afterAll(async () => {
    await Promise.all(closing.map((c) => c.close()));
    await etcd?.stop();
    certs?.dispose();
  });

  it('grants with the CA and a client certificate; refuses to talk without them', async () => {
    expect(etcd.endpoint).toMatch(/^https:/);
    const query = `ca=${encodeURIComponent(certs.ca)}&cert=${encodeURIComponent(certs.clientCert)}&key=${encodeURIComponent(certs.clientKey)}`;
    const good = EtcdWitness.fromUrl(`etcds://${etcd.hostPort}/tandem/tls?${query}`);
    const noClientCert = EtcdWitness.fromUrl(`etcds://${etcd.hostPort}/tandem/tls?ca=${encodeURIComponent(certs.ca)}`, {
      dialTimeoutMs: 500,
    });
    const plain = EtcdWitness.fromUrl(`etcd://${etcd.hostPort}/tandem/tls`, { dialTimeoutMs: 500 });
    closing.push(good, noClientCert, plain);

    expect(await good.mayServeAlone({ nodeId: 'a', epoch: 1, reason: 'startup' })).toBe(true);
    expect(good.holds()).toBe(true);
    for (const w of [noClientCert, plain]) {
      const err = await w.mayServeAlone({ nodeId: 'b', epoch: 2, reason: 'takeover' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWitnessEtcdError(err, 'WitnessUnavailableError')).toBe(true);
    }
    await good.release({ nodeId: 'a', epoch: 1 });
  });

  it('the shard map over TLS', async () => {
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const key = '/tandem/tls/shards';
    const map = { version: 1, shards: [{ name: 's1', servers: ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:2'] as [string, string] }] };
    await writeShardMap([etcd.hostPort], key, map, { tls });
    const source = await EtcdShardMap.open({ endpoints: [etcd.hostPort], key, tls });
    closing.push(source);
    expect(source.current()).toEqual(map);
  });
});
