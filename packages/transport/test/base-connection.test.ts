// BaseConnection behaviour (through the memory transport, on virtual time where timing matters).
import { describe, expect, it } from 'vitest';
import {
  createMemoryNetwork,
  isTransportError,
  RECEIVE_QUEUE_MESSAGE_OVERHEAD,
  type BaseConnection,
  type Connection,
} from '@tandem/transport';
import { ManualScheduler } from './manual-scheduler.js';

async function pair(listenOptions = {}): Promise<{ clock: ManualScheduler; client: Connection; server: Connection }> {
  const clock = new ManualScheduler();
  const net = createMemoryNetwork({ schedule: clock.schedule });
  const listener = await net.listen('mem://s', listenOptions);
  const accepting = listener[Symbol.asyncIterator]().next();
  const dialing = net.dial('mem://s');
  await clock.advance(0);
  return { clock, client: await dialing, server: (await accepting).value as Connection };
}

describe('BaseConnection', () => {
  it('counts unread bytes (with the per-message overhead), pauses the source above the mark, resumes below half', async () => {
    const { clock, client, server } = await pair({ receiveHighWaterMark: 1000 });
    const s = server as BaseConnection;
    const perMessage = 300 + RECEIVE_QUEUE_MESSAGE_OVERHEAD;
    let settled = 0;
    for (let i = 0; i < 20; i++) void client.send(new Uint8Array(300)).then(() => settled++);
    await clock.advance(5);
    // the receive queue stops growing one message past the mark; the sender is held back
    const queued = s.bufferedReceiveBytes / perMessage;
    expect(Number.isInteger(queued)).toBe(true);
    expect(s.bufferedReceiveBytes).toBeGreaterThan(1000);
    expect(s.bufferedReceiveBytes).toBeLessThanOrEqual(1000 + perMessage);
    expect(settled).toBeLessThan(20);
    const held = settled;
    const it = server[Symbol.asyncIterator]();
    await it.next(); // still above half the mark: stays paused
    await clock.advance(5);
    expect(s.bufferedReceiveBytes).toBe((queued - 1) * perMessage);
    expect(settled).toBe(held);
    for (let read = 1; read < 20; read++) {
      await it.next();
      await clock.advance(1);
    }
    expect(settled).toBe(20);
    expect(s.bufferedReceiveBytes).toBe(0);
  });

  it('allows one iterator at a time; breaking out releases it', async () => {
    const { clock, client, server } = await pair();
    await client.send(Uint8Array.of(1));
    await client.send(Uint8Array.of(2));
    await clock.advance(1);
    const first = server[Symbol.asyncIterator]();
    expect(() => server[Symbol.asyncIterator]()).toThrow(/already has an active iterator/);
    for await (const m of { [Symbol.asyncIterator]: () => first }) {
      expect([...m]).toEqual([1]);
      break;
    }
    const second = server[Symbol.asyncIterator]();
    expect([...(await second.next()).value!]).toEqual([2]);
  });

  it('close() gives up on sends a peer never takes after closeTimeoutMs: TimeoutError, pending sends fail', async () => {
    const { clock, client, server } = await pair({ receiveHighWaterMark: 100 });
    const outcomes: unknown[] = [];
    for (let i = 0; i < 5; i++)
      client.send(new Uint8Array(200)).then(
        () => outcomes.push('sent'),
        (e: unknown) => outcomes.push(e),
      );
    await clock.advance(1);
    let closed = false;
    const closing = client.close().then(() => (closed = true));
    await clock.advance(4_999);
    expect(closed).toBe(false);
    await clock.advance(1);
    await closing;
    const info = await client.closed;
    expect(info.by).toBe('local');
    expect(isTransportError(info.error, 'TimeoutError')).toBe(true);
    const failures = outcomes.filter((o) => o !== 'sent');
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(isTransportError(f, 'ConnectionClosedError')).toBe(true);
    await clock.advance(10);
    expect((await server.closed).by).toBe('remote');
  });

  it('rejects non-Uint8Array sends with TypeError and keeps the connection open', async () => {
    const { client } = await pair();
    await expect(client.send('text' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    expect(client.isClosed).toBe(false);
  });
});
