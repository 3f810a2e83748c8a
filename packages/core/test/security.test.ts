/**
 * Trust boundaries (docs/SECURITY.md): only a peer holding the cluster key may send replica-to-replica
 * messages or teach a replica an epoch; forwarded state information must carry the primary's MAC; client
 * authentication when required; safe defaults. In-process, on the memory transport; apps/kv repeats the
 * forged-message cases with real processes.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from 'msgpackr';
import type { Connection } from '@tandem/transport';
import { codec, encodeValue, packEncoded } from '../src/codec.js';
import { createReplica } from '../src/replica.js';
import { isLoopbackAddress } from '../src/security.js';
import { KeyRing, packedEntriesMac, parseKeyFile, formatKeyFile } from '../src/auth.js';
import { handshakeProof, type HandshakeTranscript } from '../src/auth.js';
import type { Message } from '../src/messages.js';
import { sleep, until } from './helpers/fault-net.js';
import { kv, startPair, type Pair } from './helpers/setup.js';
import { nodeEnv } from '../src/node-env.js';
import { createMemoryNetwork } from '@tandem/transport';

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

/** A raw connection from node `from` to `address` that records what it receives. */
async function raw(
  p: Pair,
  address: string,
  from = 'evil',
): Promise<{ conn: Connection; got: Message[]; ended: Promise<void>; send(m: Message | Uint8Array): Promise<void> }> {
  const conn = await p.cluster.node(from).env.network.dial(address);
  const got: Message[] = [];
  const ended = (async () => {
    for await (const b of conn) {
      try {
        got.push(codec.decode(b));
      } catch {
        /* not ours to judge */
      }
    }
  })();
  return { conn, got, ended, send: (m) => conn.send(m instanceof Uint8Array ? m : codec.encode(m)).catch(() => undefined) };
}

function hello(kind: 'peer' | 'client' | 'transfer', extra: Partial<Extract<Message, { t: 'hello' }>> = {}): Message {
  return { t: 'hello', kind, service: 'kv', nodeId: 'B', epoch: 1000, role: 'solo-primary', ...extra };
}

describe('a pair with a cluster key', () => {
  it('serves, replicates and fails over as without one; replies carry MACs', async () => {
    const k = key();
    pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [k] } });
    const c = pair.client('C');
    for (let i = 0; i < 20; i++) await c.call({ op: 'incr', key: 'n' });
    const rep = pair.cluster.find((r) => r.from === 'A' && r.msg.t === 'rep').pop()!.msg;
    expect(rep.t === 'rep' && rep.entriesMac?.length).toBe(16);
    await until(() => pair!.b.status().appliedSeq === 20, 'backup caught up');
    pair.nodeA.crash();
    expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('21');
    expect(pair.b.status()).toMatchObject({ role: 'solo-primary', epoch: 2, forgedForwards: 0 });
  });

  it('replicas with different keys never pair: each refuses the other and says why', async () => {
    pair = await startPair({}, undefined, undefined, {
      security: { a: { clusterKeys: [key()] }, b: { clusterKeys: [key()] } },
      waitForPair: false,
    });
    // A started (it leads); B cannot authenticate A and keeps waiting as `starting`.
    await sleep(200);
    expect(pair.b.status().role).toBe('starting');
    expect(pair.a.status().role).toBe('solo-primary');
    expect(pair.a.status().authFailures + pair.b.status().authFailures).toBeGreaterThan(0);
  }, 10_000);
});

describe('forged replica-to-replica messages from an unauthenticated connection change nothing', () => {
  const forged: [string, Message[]][] = [
    ['a peer hello with a high epoch', [hello('peer')]],
    [
      'a peer hello with a nonce, then a bogus proof',
      [hello('peer', { nonce: new Uint8Array(16) }), { t: 'authProof', proof: new Uint8Array(16) }],
    ],
    ['a flush', [hello('peer'), { t: 'flush', epoch: 1000, flushId: 1, entries: [] }]],
    ['a drop', [hello('peer'), { t: 'drop', epoch: 1, reason: 'forged' }]],
    ['a status probe, then a stateReq', [hello('peer'), { t: 'status' }, { t: 'stateReq', nodeId: 'evil' }]],
    [
      'a client hello, then a flush and a drop',
      [hello('client'), { t: 'flush', epoch: 1000, flushId: 1, entries: [] }, { t: 'drop', epoch: 1, reason: 'x' }],
    ],
    ['a transfer hello without a key', [hello('transfer')]],
  ];
  for (const target of ['primary', 'backup'] as const) {
    it.each(forged)(`%s (to the ${target})`, async (_name, messages) => {
      pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [key()] } });
      const c = pair.client('C');
      await c.call({ op: 'incr', key: 'n' });
      const e = await raw(pair, target === 'primary' ? pair.addrA : pair.addrB);
      for (const m of messages) await e.send(m);
      await e.ended;
      const refused = e.got.find((m) => m.t === 'authRefused');
      // Peer kinds get a typed refusal; a client posing as a peer is cut off as a protocol violation.
      if (messages[0]!.t === 'hello' && messages[0]!.kind !== 'client') expect(refused).toBeDefined();
      for (let i = 2; i <= 6; i++) expect((await c.call({ op: 'incr', key: 'n' })).value).toBe(String(i));
      await sleep(100); // long enough for any wrongly adopted epoch to depose someone
      expect(pair.a.status()).toMatchObject({ role: 'primary', epoch: 1 });
      expect(pair.b.status()).toMatchObject({ role: 'backup', epoch: 1 });
      expect(
        pair.events.a.some((x) => x.type === 'step-down') || pair.events.b.some((x) => x.type === 'step-down' || x.type === 'takeover'),
      ).toBe(false);
    });
  }

  it('garbage and a connection that never says hello are closed; the pair serves on', async () => {
    pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [key()], handshakeTimeoutMs: 50 } });
    const c = pair.client('C');
    const silent = await raw(pair, pair.addrA, 'silent');
    const garbage = await raw(pair, pair.addrB, 'garbage');
    await garbage.send(new Uint8Array([0xc1, 0xff, 1, 2, 3]));
    const info = await silent.conn.closed;
    expect(info.by).toBe('remote');
    await silent.ended;
    expect(silent.got).toEqual([{ t: 'authRefused', code: 'handshake-timeout', reason: expect.stringContaining('no complete hello') }]);
    await garbage.conn.closed;
    expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('1');
  });
});

describe('a keyed handshake', () => {
  it('a dialler that knows the key is admitted; the acceptor proves it knows it too', async () => {
    const k = key();
    pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [k] } });
    const e = await raw(pair, pair.addrA);
    const nonce = new Uint8Array(randomBytes(16));
    await e.send(hello('peer', { nodeId: 'B2', epoch: 1, role: 'starting', nonce }));
    await until(() => e.got.length > 0, 'challenge');
    const ch = e.got[0]!;
    expect(ch.t).toBe('authChallenge');
    if (ch.t !== 'authChallenge') return;
    const ring = KeyRing.derive([k], 'peer-auth');
    const t: HandshakeTranscript = {
      service: 'kv',
      kind: 'peer',
      dialerId: 'B2',
      acceptorId: ch.nodeId,
      dialerNonce: nonce,
      acceptorNonce: ch.nonce,
      dialerEpoch: 1,
    };
    expect(ring.verify(ch.proof, encodeValue(['tandem-auth/1', 'accept', 'kv', 'peer', 'B2', ch.nodeId, nonce, ch.nonce, 1]))).toBe(true);
    await e.send({ t: 'authProof', proof: handshakeProof(ring, 'dial', t) });
    await e.send({ t: 'status' });
    await until(() => e.got.some((m) => m.t === 'statusReply'), 'statusReply on the authenticated connection');
    expect(pair.a.status().authFailures).toBe(0);
  });

  it('a proof replayed from another handshake does not verify (fresh nonces)', async () => {
    const k = key();
    pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [k] } });
    const ring = KeyRing.derive([k], 'peer-auth');
    const nonce = new Uint8Array(16);
    const first = await raw(pair, pair.addrA);
    await first.send(hello('peer', { nodeId: 'X', epoch: 1, nonce }));
    await until(() => first.got.length > 0, 'challenge');
    const ch = first.got[0]!;
    if (ch.t !== 'authChallenge') throw new Error('no challenge');
    const proof = handshakeProof(ring, 'dial', {
      service: 'kv',
      kind: 'peer',
      dialerId: 'X',
      acceptorId: ch.nodeId,
      dialerNonce: nonce,
      acceptorNonce: ch.nonce,
      dialerEpoch: 1,
    });
    const second = await raw(pair, pair.addrA);
    await second.send(hello('peer', { nodeId: 'X', epoch: 1, nonce }));
    await second.send({ t: 'authProof', proof });
    await second.ended;
    expect(second.got.find((m) => m.t === 'authRefused')).toMatchObject({ code: 'bad-proof' });
  });

  it('key rotation: a replica signing with the new key pairs with one that still signs with the old (both accept both)', async () => {
    const oldKey = key();
    const newKey = key();
    pair = await startPair({}, undefined, undefined, {
      security: { a: { clusterKeys: [newKey, oldKey] }, b: { clusterKeys: [oldKey, newKey] } },
    });
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    await until(() => pair!.b.status().appliedSeq === 1, 'backup applied');
    expect(pair.b.status().role).toBe('backup');
  });
});

describe('forwarded state information must carry the primary MAC', () => {
  it('a forged forward is reported and not applied when the primary dies before its flush', async () => {
    // Slow flushes: the primary dies long before it would flush.
    pair = await startPair({ flushIntervalMs: 500, heartbeatTimeoutMs: 1000, flushMaxEntries: 100 }, undefined, undefined, {
      security: { clusterKeys: [key()] },
    });
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'x', value: 'honest' });
    await c.drain();
    // An attacker posing as a client forwards seq 2 with a valid shape and a made-up MAC.
    const evil = await raw(pair, pair.addrB);
    await evil.send({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'evil', epoch: 0 });
    const entry = {
      seq: 2,
      epoch: 1,
      clientId: 'evil',
      requestId: 1,
      body: { op: 'put', key: 'x', value: 'forged' },
      time: 1,
      seed: 1,
      digest: 'ffff',
    };
    const bytes = packEncoded([encodeValue(entry)]);
    await evil.send({ t: 'fwd', fwdId: 1, entries: [], packed: [{ upToSeq: 2, bytes, mac: new Uint8Array(16) }] });
    await evil.send({ t: 'fwd', fwdId: 2, entries: [{ ...entry, mac: new Uint8Array(16) }] });
    await until(() => evil.got.filter((m) => m.t === 'fwdAck').length === 2, 'fwdAcks');
    pair.nodeA.crash();
    await until(() => pair!.b.status().role === 'solo-primary', 'takeover', 5000);
    expect(pair.b.state.get('x')).toBe('honest');
    expect(pair.b.status()).toMatchObject({ appliedSeq: 1, forgedForwards: 2 });
    expect(pair.events.b.filter((e) => e.type === 'forged-forward')).toHaveLength(2);
    expect((await c.call({ op: 'get', key: 'x' })).value).toBe('honest');
  });

  it('a genuine MAC over other bytes does not verify (bound to the entries and the seq)', () => {
    const ring = KeyRing.derive([key()], 'state-mac');
    const bytes = packEncoded([encodeValue({ seq: 1 })]);
    const tag = packedEntriesMac(ring, 1, bytes);
    expect(ring.verify(tag, new Uint8Array(8), bytes)).toBe(false);
    const other = packEncoded([encodeValue({ seq: 2 })]);
    expect(ring.verify(packedEntriesMac(ring, 1, other), new Uint8Array(8), bytes)).toBe(false);
  });

  it('seq-digest mode: honest forwards verify and a forged one is refused', async () => {
    pair = await startPair(
      { piggyback: 'seq-digest', flushIntervalMs: 500, heartbeatTimeoutMs: 1000, flushMaxEntries: 100 },
      undefined,
      undefined,
      { security: { clusterKeys: [key()] } },
    );
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'x', value: 'a' });
    await c.call({ op: 'put', key: 'y', value: { toString: () => 'b' }.toString() });
    await c.drain();
    pair.nodeA.crash();
    await until(() => pair!.b.status().role === 'solo-primary', 'takeover', 5000);
    expect(pair.b.status()).toMatchObject({ appliedSeq: 2, forgedForwards: 0 });
    expect(pair.b.state.get('y')).toBe('b');
  });
});

describe('client authentication', () => {
  it('required: a client without a key is refused before anything is sequenced; one with a key works', async () => {
    const ck = key();
    pair = await startPair({}, undefined, undefined, {
      security: { clusterKeys: [key()], requireClientAuth: true, clientKeys: { app: ck } },
    });
    const anon = pair.client('anon');
    await expect(anon.call({ op: 'incr', key: 'n' })).rejects.toMatchObject({ name: 'AuthenticationError', code: 'client-auth-required' });
    const wrong = pair.client('wrong', {}, { keyId: 'app', key: key() });
    await expect(wrong.call({ op: 'incr', key: 'n' })).rejects.toMatchObject({ name: 'AuthenticationError' });
    const good = pair.client('good', {}, { keyId: 'app', key: ck });
    expect((await good.call({ op: 'incr', key: 'n' })).value).toBe('1');
    expect(pair.a.status().appliedSeq).toBe(1);
  });
});

describe('safe defaults', () => {
  it('without a cluster key a replica refuses to listen beyond loopback unless insecure', async () => {
    const net = createMemoryNetwork();
    const env = nodeEnv({
      network: { name: 'stub', schemes: ['tcp'], listen: (_a, o) => net.listen('mem://x', o), dial: (a, o) => net.dial(a, o) },
    });
    const r = createReplica({ service: kv, env, listen: 'tcp://0.0.0.0:7001', peer: 'tcp://10.0.0.2:7001' });
    await expect(r.start()).rejects.toMatchObject({ name: 'InsecureListenError' });
    const keyed = createReplica({
      service: kv,
      env,
      listen: 'tcp://0.0.0.0:7001',
      peer: 'tcp://10.0.0.2:7001',
      security: { clusterKeys: [key()] },
    });
    expect(keyed.status().role).toBe('starting'); // constructing is fine; start() would listen
  });

  it('loopback addresses', () => {
    for (const a of ['tcp://127.0.0.1:1', 'tcp://localhost:1', 'tcp://[::1]:1', 'ws://127.1.2.3:9/x', 'zmq+tcp://127.0.0.1:5', 'mem://a'])
      expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['tcp://0.0.0.0:1', 'tcp://[::]:1', 'tcp://10.0.0.1:1', 'tls://example.com:1', 'tcp://127.0.0.300:1', 'nonsense'])
      expect(isLoopbackAddress(a)).toBe(false);
  });

  it('key files: one hex key per line, comments allowed; short or malformed keys are refused', () => {
    const k = key();
    expect(parseKeyFile(formatKeyFile(k))).toEqual([k]);
    expect(() => parseKeyFile('abcd\n')).toThrow(/at least 32 bytes/);
    expect(() => parseKeyFile('zz'.repeat(32))).toThrow(/not a hex key/);
    expect(() => parseKeyFile('# nothing\n')).toThrow(/no key/);
    void encode;
  });
});

describe('operator connections', () => {
  it('need the cluster key; with it, status works and promote on a serving replica changes nothing', async () => {
    const { replicaStatus, promoteReplica } = await import('../src/operator.js');
    const k = key();
    pair = await startPair({}, undefined, undefined, { security: { clusterKeys: [k] } });
    const env = pair.cluster.node('op').env;
    await expect(replicaStatus(pair.addrA, { env, service: 'kv' })).rejects.toMatchObject({
      name: 'AuthenticationError',
      code: 'key-required',
    });
    await expect(replicaStatus(pair.addrA, { env, service: 'kv', clusterKeys: [key()] })).rejects.toMatchObject({
      name: 'AuthenticationError',
    });
    expect(await replicaStatus(pair.addrB, { env, service: 'kv', clusterKeys: [k] })).toMatchObject({ role: 'backup', epoch: 1 });
    expect(await promoteReplica(pair.addrA, { env, service: 'kv', clusterKeys: [k] })).toMatchObject({ role: 'primary', epoch: 1 });
    expect(await promoteReplica(pair.addrB, { env, service: 'kv', clusterKeys: [k] })).toMatchObject({ role: 'backup', epoch: 1 });
    await expect(pair.b.promote({ acceptLoss: true })).rejects.toThrow(/backup/);
    expect(pair.a.status()).toMatchObject({ role: 'primary', epoch: 1 });
  });
});
