/**
 * Trust boundaries with real processes (docs/SECURITY.md): `tandem-kv serve` replicas on loopback with a
 * cluster key; forged replica-to-replica messages and garbage from unauthenticated connections change
 * nothing; a forged forward is not applied at takeover; safe defaults; client keys; TLS with client
 * certificates and CURVE on both ends, from flags and from the config file.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Message, ReplicationConfig } from '@tandem/core';
import { codec, encodeValue, packEncoded } from '@tandem/core/internal';
import { ReplicaPair } from '../src/harness/cluster.js';
import { freePort } from '../src/harness/free-port.js';
import { builtCliPath } from '../src/harness/replica-process.js';
import { KV_SERVICE_NAME } from '../src/service.js';
import { createTransportRegistry } from '../src/transports.js';
import { checkMarkers, MarkerClient, sleep, TEST_REPLICATION, until } from './fault-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'tandem-kv-sec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [builtCliPath(), ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function keygen(name: string, extra: string[] = []): string {
  const file = join(dir, name);
  const r = cli(['keygen', '--out', file, ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return file;
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups = [];
});

async function startPair(
  extraArgs: string[],
  config: Partial<ReplicationConfig> = TEST_REPLICATION,
  transport = 'tcp',
): Promise<ReplicaPair> {
  const pair = await ReplicaPair.start({ transport, replication: config, extraArgs });
  cleanups.push(() => pair.stop());
  return pair;
}

/** An unauthenticated connection speaking the framing, recording what comes back. */
async function rawConn(
  address: string,
): Promise<{ send(m: Message | Uint8Array): Promise<void>; got: Message[]; ended: Promise<void>; abort(): void }> {
  const conn = await createTransportRegistry().dial(address);
  const got: Message[] = [];
  const ended = (async () => {
    try {
      for await (const b of conn) {
        try {
          got.push(codec.decode(b));
        } catch {
          /* not a message */
        }
      }
    } catch {
      /* reset */
    }
  })();
  return {
    send: (m) => conn.send(m instanceof Uint8Array ? m : codec.encode(m)).catch(() => undefined),
    got,
    ended,
    abort: () => conn.abort(),
  };
}

/** Unframed bytes straight into the socket. */
function rawSocketGarbage(address: string): Promise<void> {
  const { port } = new URL(address);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => s.write(randomBytes(4096)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    setTimeout(() => {
      s.destroy();
      resolve();
    }, 3000);
  });
}

const peerHello = (epoch: number, extra: Record<string, unknown> = {}): Message =>
  ({ t: 'hello', kind: 'peer', service: KV_SERVICE_NAME, nodeId: 'mallory', epoch, role: 'solo-primary', ...extra }) as Message;

describe('forged replica-to-replica messages from unauthenticated connections (real processes)', () => {
  for (const target of ['primary', 'backup'] as const) {
    it(`to the ${target}: a peer hello with a high epoch, a flush, a drop, a status probe, garbage — the pair serves on, epoch unchanged`, async () => {
      const pair = await startPair(['--cluster-key-file', keygen(`cluster-${target}.key`)]);
      const honest = new MarkerClient(pair.addresses, 'honest', target, TEST_REPLICATION);
      cleanups.push(() => honest.close());
      await honest.appendMany(5);
      honest.startLoop();
      const addr = target === 'primary' ? pair.addresses[0] : pair.addresses[1];
      const attacks: [string, (Message | Uint8Array)[]][] = [
        ['peer hello, epoch 1000', [peerHello(1000)]],
        [
          'peer hello with a nonce, bogus proof',
          [peerHello(1000, { nonce: new Uint8Array(16) }), { t: 'authProof', proof: new Uint8Array(16) }],
        ],
        ['flush', [peerHello(1000), { t: 'flush', epoch: 1000, flushId: 1, entries: [] }]],
        [
          'flush as a client',
          [
            { t: 'hello', kind: 'client', service: KV_SERVICE_NAME, nodeId: 'm', epoch: 0 },
            { t: 'flush', epoch: 1000, flushId: 1, entries: [] },
          ],
        ],
        ['drop', [peerHello(1), { t: 'drop', epoch: 1, reason: 'forged' }]],
        [
          'drop as a client',
          [
            { t: 'hello', kind: 'client', service: KV_SERVICE_NAME, nodeId: 'm', epoch: 0 },
            { t: 'drop', epoch: 1, reason: 'forged' },
          ],
        ],
        ['status probe', [peerHello(1000), { t: 'status' }, { t: 'stateReq', nodeId: 'mallory' }]],
        ['framed garbage', [randomBytes(64), randomBytes(3000)]],
      ];
      for (const [name, messages] of attacks) {
        const before = honest.acked.size;
        const c = await rawConn(addr);
        for (const m of messages) await c.send(m);
        await Promise.race([c.ended, sleep(3000)]);
        c.abort();
        if (name.startsWith('peer hello') || name === 'flush' || name === 'drop' || name === 'status probe') {
          expect(
            c.got.find((m) => m.t === 'authRefused'),
            name,
          ).toBeDefined();
        }
        await until(`honest writes continue after "${name}"`, () => honest.acked.size >= before + 3, 10_000);
      }
      await rawSocketGarbage(addr);
      const before = honest.acked.size;
      await until('honest writes continue after raw garbage', () => honest.acked.size >= before + 3, 10_000);
      await sleep(300); // more than a takeover period: a wrongly adopted epoch would have shown by now
      await honest.stopLoop();
      const [a, b] = await Promise.all([pair.a.status(), pair.b.status()]);
      expect({ a: [a.role, a.epoch], b: [b.role, b.epoch] }).toEqual({ a: ['primary', 1], b: ['backup', 1] });
      expect(a.authFailures + b.authFailures).toBeGreaterThanOrEqual(5);
      expect(honest.lastEpoch).toBe(1);
      for (const p of [pair.a, pair.b])
        expect(p.events.filter((e) => e.event === 'step-down' || e.event === 'takeover' || e.event === 'peer-faulty')).toEqual([]);
      const check = await checkMarkers(pair.a, ['honest'], honest.acked.keys(), honest.issued);
      expect({ lost: check.lost, duplicated: check.duplicated }).toEqual({ lost: [], duplicated: [] });
    }, 90_000);
  }
});

describe('forwarded state information', () => {
  it('a forward with a valid shape but no valid MAC, then SIGKILL of the primary before its flush: the backup takes over without it, reports it, and every honest write is there once', async () => {
    const slow = { ...TEST_REPLICATION, flushIntervalMs: 1000, heartbeatTimeoutMs: 2000, flushMaxEntries: 1000 };
    const pair = await startPair(['--cluster-key-file', keygen('cluster-fwd.key')], slow);
    const honest = new MarkerClient(pair.addresses, 'k', 'h', slow);
    cleanups.push(() => honest.close());
    await honest.appendMany(5);
    await honest.client.drain(); // the honest entries reached the backup by the clients' forwards
    const seq = (await pair.a.status()).appliedSeq;
    const evil = await rawConn(pair.addresses[1]);
    await evil.send({ t: 'hello', kind: 'client', service: KV_SERVICE_NAME, nodeId: 'mallory', epoch: 0 });
    const forged = {
      seq: seq + 1,
      epoch: 1,
      clientId: 'mallory',
      requestId: 1,
      body: { op: 'append', key: 'k', value: 'FORGED;' },
      time: Date.now(),
      seed: 1,
      digest: '0000000000000000',
    };
    await evil.send({
      t: 'fwd',
      fwdId: 1,
      entries: [],
      packed: [{ upToSeq: seq + 1, bytes: packEncoded([encodeValue(forged)]), mac: new Uint8Array(16) }],
    });
    await evil.send({ t: 'fwd', fwdId: 2, entries: [forged] });
    await until('the backup acknowledged both forwards', () => evil.got.filter((m) => m.t === 'fwdAck').length === 2);
    await pair.a.kill();
    await pair.b.waitForRole(['solo-primary'], 15_000);
    const forgedEvents = pair.b.events.filter((e) => e.event === 'forged-forward');
    expect(forgedEvents.length).toBe(2);
    const status = await pair.b.status();
    expect(status).toMatchObject({ appliedSeq: seq, forgedForwards: 2 });
    const check = await checkMarkers(pair.b, ['k'], honest.acked.keys(), honest.issued);
    expect({ lost: check.lost, duplicated: check.duplicated, unexpected: check.unexpected }).toEqual({
      lost: [],
      duplicated: [],
      unexpected: [],
    });
    expect([...check.found.keys()].some((m) => m.includes('FORGED'))).toBe(false);
  }, 60_000);
});

describe('safe defaults', () => {
  it('without a cluster key a replica refuses a non-loopback address unless --insecure', async () => {
    const port = await freePort();
    const refused = cli(['serve', '--listen', `tcp://0.0.0.0:${port}`, '--peer', `tcp://127.0.0.1:${port + 1}`, '--role', 'primary']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/InsecureListenError.*without a cluster key.*--insecure/s);
    // With --insecure the check passes and the warning is printed; 192.0.2.1 (TEST-NET) cannot be bound,
    // so nothing listens beyond loopback in this test.
    const insecure = cli([
      'serve',
      '--listen',
      `tcp://192.0.2.1:${port}`,
      '--peer',
      `tcp://127.0.0.1:${port + 1}`,
      '--role',
      'primary',
      '--insecure',
    ]);
    expect(insecure.stdout).toMatch(/WARNING: --insecure/);
    expect(insecure.stderr).not.toMatch(/InsecureListenError/);
    expect(insecure.status).not.toBe(0);
  });

  it('keygen writes a 0600 key file and never overwrites one without --force', () => {
    const file = keygen('k.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}$/m);
    expect(cli(['keygen', '--out', file]).status).toBe(2);
    expect(cli(['keygen', '--out', file, '--force']).status).toBe(0);
  });

  it('a replica started with a malformed key file refuses to start and says why', () => {
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'abcd\n', { mode: 0o600 });
    const r = cli(['serve', '--listen', 'tcp://127.0.0.1:1', '--peer', 'tcp://127.0.0.1:2', '--cluster-key-file', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/at least 32 bytes/);
  });
});

describe('client authentication', () => {
  it('required: `call` without a client key is refused (exit 4) and changes nothing; with a key it works', async () => {
    const clientKey = keygen('app.client', ['--client', 'app']);
    const keysFile = join(dir, 'clients.keys');
    writeFileSync(keysFile, readFileSync(clientKey, 'utf8'), { mode: 0o600 });
    const pair = await startPair(['--cluster-key-file', keygen('cluster-ca.key'), '--client-keys-file', keysFile, '--require-client-auth']);
    const servers = pair.addresses.join(',');
    const anon = cli(['call', '--servers', servers, 'set', 'x', 'anon']);
    expect(anon.status).toBe(4);
    expect(anon.stderr).toMatch(/client-auth|client authentication/);
    const ok = cli(['call', '--servers', servers, '--client-key-file', clientKey, 'set', 'x', 'app']);
    expect(ok.status, ok.stderr).toBe(0);
    const got = cli(['call', '--servers', servers, '--client-key-file', clientKey, 'get', 'x']);
    expect(JSON.parse(got.stdout)).toMatchObject({ value: 'app' });
    expect((await pair.a.status()).appliedSeq).toBe(2);
  }, 60_000);
});

describe('secure transports from flags and the config file', () => {
  it('tls:// with client certificates (flags): the pair replicates and fails over; a client without a certificate gets nothing', async () => {
    const { generateTlsFixtures } = await import('../../../packages/transport-tcp/test/tls-fixtures.js');
    const certs = generateTlsFixtures();
    cleanups.push(() => certs.dispose());
    const f = (n: string): string => join(certs.dir, n);
    const pair = await startPair(
      [
        '--cluster-key-file',
        keygen('cluster-tls.key'),
        '--tls-cert',
        f('server.crt'),
        '--tls-key',
        f('server.key'),
        '--tls-ca',
        f('ca.crt'),
      ],
      TEST_REPLICATION,
      'tls',
    );
    expect(pair.addresses[0]).toMatch(/^tls:\/\//);
    const servers = pair.addresses.join(',');
    const ok = cli([
      'call',
      '--servers',
      servers,
      '--tls-cert',
      f('client.crt'),
      '--tls-key',
      f('client.key'),
      '--tls-ca',
      f('ca.crt'),
      'set',
      'x',
      'tls',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    const noCert = cli(['call', '--servers', servers, '--tls-ca', f('ca.crt'), '--timeout', '1500', 'get', 'x']);
    expect(noCert.status).toBe(3);
    await until('backup applied', async () => (await pair.b.status()).appliedSeq === 1);
    await pair.a.kill();
    await pair.b.waitForRole(['solo-primary'], 15_000);
    const after = cli([
      'call',
      '--servers',
      servers,
      '--tls-cert',
      f('client.crt'),
      '--tls-key',
      f('client.key'),
      '--tls-ca',
      f('ca.crt'),
      'get',
      'x',
    ]);
    expect(JSON.parse(after.stdout)).toMatchObject({ value: 'tls' });
  }, 60_000);

  it('zmq+tcp:// with CURVE on both ends (flags): an allowed client key works, any other is refused', async () => {
    const service = keygen('service.curve', ['--curve']);
    const allowedKeys = keygen('allowed.curve', ['--curve']);
    const otherKeys = keygen('other.curve', ['--curve']);
    const allow = join(dir, 'curve.allow');
    writeFileSync(allow, `${/^public (\S+)$/m.exec(readFileSync(allowedKeys, 'utf8'))![1]}\n`);
    const pair = await startPair(
      ['--cluster-key-file', keygen('cluster-curve.key'), '--curve-server-keys', service, '--curve-allow', allow],
      TEST_REPLICATION,
      'zmq',
    );
    expect(pair.addresses[0]).toMatch(/^zmq\+tcp:\/\//);
    const servers = pair.addresses.join(',');
    const serverKey = /^public (\S+)$/m.exec(readFileSync(service, 'utf8'))![1]!;
    const ok = cli([
      'call',
      '--servers',
      servers,
      '--curve-client-keys',
      allowedKeys,
      // The "=" form: a Z85 key may start with "-" (1 key in 85), which a separate argument turns into an option.
      `--curve-server-key=${serverKey}`,
      'set',
      'x',
      'curve',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    const other = cli([
      'call',
      '--servers',
      servers,
      '--curve-client-keys',
      otherKeys,
      `--curve-server-key=${serverKey}`,
      '--timeout',
      '1500',
      'get',
      'x',
    ]);
    expect(other.status).toBe(3);
    const plain = cli(['call', '--servers', servers, '--timeout', '1500', 'get', 'x']);
    expect(plain.status).toBe(3);
    await until('backup applied', async () => (await pair.b.status()).appliedSeq === 1);
    expect((await pair.a.status()).appliedSeq).toBe(1); // the refused clients changed nothing
  }, 60_000);

  it('tls:// from the config file (clusterKeyFile and tls fields)', async () => {
    const { generateTlsFixtures } = await import('../../../packages/transport-tcp/test/tls-fixtures.js');
    const certs = generateTlsFixtures();
    cleanups.push(() => certs.dispose());
    const f = (n: string): string => join(certs.dir, n);
    const config = join(dir, 'tls.json');
    writeFileSync(
      config,
      JSON.stringify({
        clusterKeyFile: keygen('cluster-tlsfile.key'),
        tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), requireClientCert: true },
      }),
    );
    const pair = await startPair(['--config', config], TEST_REPLICATION, 'tls');
    for (const p of [pair.a, pair.b]) expect(p.events.find((e) => e.event === 'security')).toMatchObject({ clusterKey: true, tls: true });
    const ok = cli([
      'call',
      '--servers',
      pair.addresses.join(','),
      '--tls-cert',
      f('client.crt'),
      '--tls-key',
      f('client.key'),
      '--tls-ca',
      f('ca.crt'),
      'set',
      'x',
      'cfg',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    await until('backup applied', async () => (await pair.b.status()).appliedSeq === 1);
  }, 60_000);
});
