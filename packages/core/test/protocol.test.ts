/** Bad input on the wire: a typed error, that connection closed, nobody else affected. */
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from 'msgpackr';
import { codec } from '../src/codec.js';
import type { Message } from '../src/messages.js';
import { until } from './helpers/fault-net.js';
import { startPair, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

describe('codec', () => {
  it('round-trips every message and rejects invalid bytes with ProtocolViolationError', () => {
    const m = {
      t: 'flush',
      epoch: 3,
      flushId: 9,
      entries: [{ seq: 1, epoch: 3, clientId: 'c', requestId: 1, body: { x: [1, 2] }, time: 5, seed: 7, digest: 'ab' }],
    } satisfies Message;
    expect(codec.decode(codec.encode(m))).toEqual(m);
    expect(() => codec.decode(new Uint8Array([0xc1]))).toThrow(expect.objectContaining({ name: 'ProtocolViolationError' }));
    expect(() => codec.decode(encode({ t: 'flush', epoch: -1, flushId: 1, entries: [] }))).toThrow(
      expect.objectContaining({ name: 'ProtocolViolationError' }),
    );
    expect(() => codec.decode(encode({ t: 'nonsense' }))).toThrow(/invalid message/);
  });
});

describe('invalid input at a replica', () => {
  const cases: [string, Uint8Array[]][] = [
    ['garbage bytes', [new Uint8Array([0xc1, 0xff, 0x00])]],
    ['a valid msgpack value that is no message', [encode({ hello: 'world' })]],
    ['a request before hello', [codec.encode({ t: 'req', clientId: 'x', requestId: 1, body: null })]],
    ['a hello for another service', [codec.encode({ t: 'hello', kind: 'client', service: 'other', nodeId: 'x', epoch: 0 })]],
    [
      'a client sending a flush',
      [
        codec.encode({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'x', epoch: 0 }),
        codec.encode({ t: 'flush', epoch: 99, flushId: 1, entries: [] }),
      ],
    ],
  ];
  it.each(cases)('%s → connection closed, protocol-error event, service unaffected', async (_name, messages) => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'incr', key: 'n' });
    const conn = await pair.cluster.node('evil').env.network.dial(pair.addrA);
    void (async () => {
      for await (const _ of conn) void _;
    })();
    for (const m of messages) await conn.send(m).catch(() => undefined);
    const info = await conn.closed;
    expect(info.by).toBe('remote');
    await until(() => pair!.events.a.some((e) => e.type === 'protocol-error'), 'protocol-error event');
    const ev = pair.events.a.find((e) => e.type === 'protocol-error');
    expect(ev?.type === 'protocol-error' && ev.error.name).toBe('ProtocolViolationError');
    expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('2');
    expect(pair.a.status()).toMatchObject({ role: 'primary', epoch: 1 });
  });
});
