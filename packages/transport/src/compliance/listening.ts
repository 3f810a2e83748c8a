/**
 * Compliance cases, listeners and dials: listener close, address in use, dial timeout and abort, bound
 * validation, maxConnections.
 * (Registered by describeTransportCompliance, in this order: see index.ts.)
 */
import { expect, it } from 'vitest';
import type { Connection } from '../types.js';
import { text, str, within, sleep, rejection, expectTransportError, Reader, Acceptor, type SuiteContext } from './suite-kit.js';

export function listeningCases(ctx: SuiteContext): void {
  const { harness, transports, connectedPair } = ctx;
  it('listener close: iteration ends, new dials are refused, accepted connections keep working', async () => {
    const { listener, acceptor, client, server } = await connectedPair();
    await listener.close();
    await listener.close();
    expect((await acceptor.step()).done).toBe(true);
    const t = await transports();
    expectTransportError(
      await rejection(t.client.dial(listener.address, { timeoutMs: 5_000 }), 'dial after listener close'),
      'ConnectionRefusedError',
    );
    await client.send(text('still open'));
    expect(str(await new Reader(server).next())).toBe('still open');
    await server.send(text('yes'));
    expect(str(await new Reader(client).next())).toBe('yes');
  });

  it('refuses to listen twice on the same address with AddressInUseError', async () => {
    const t = await transports();
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress()));
    const err = await rejection(
      t.client.listen(listener.address).then((l) => ctx.scope.listener(l)),
      `a second listen on ${listener.address}`,
    );
    expectTransportError(err, 'AddressInUseError');
  });

  it('times out a dial that gets no answer with TimeoutError', async () => {
    const { client } = await transports();
    const silent = await harness.silentPeer();
    ctx.scope.cleanups.push(() => silent.close());
    const err = await rejection(client.dial(silent.address, { timeoutMs: 300 }), 'a dial to a silent peer');
    expectTransportError(err, 'TimeoutError');
  });

  it('aborts a dial through its AbortSignal with AbortError (before and during the dial)', async () => {
    const { client } = await transports();
    const silent = await harness.silentPeer();
    ctx.scope.cleanups.push(() => silent.close());
    const pre = new AbortController();
    pre.abort();
    expectTransportError(await rejection(client.dial(silent.address, { signal: pre.signal }), 'a pre-aborted dial'), 'AbortError');
    const during = new AbortController();
    const dialing = client.dial(silent.address, { signal: during.signal, timeoutMs: 10_000 });
    setTimeout(() => during.abort(), 50);
    expectTransportError(await rejection(dialing, 'an aborted dial'), 'AbortError');
  });

  it('rejects a negative or non-numeric bound at listen and dial with RangeError (not later, in a socket callback)', async () => {
    const t = await transports();
    const bad = [
      { maxConnections: -1 },
      { partialFrameTimeoutMs: -5 },
      { maxSendQueueBytes: Number.NaN },
      { sendHighWaterMark: '1' as unknown as number },
    ];
    for (const options of bad) {
      const err = await rejection(
        t.server.listen(harness.listenAddress(), options).then((l) => ctx.scope.listener(l)),
        `listen with ${JSON.stringify(options)}`,
      );
      expect(err, JSON.stringify(options)).toBeInstanceOf(RangeError);
    }
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress()));
    const err = await rejection(
      t.client.dial(listener.address, { maxSendQueueBytes: -1 }).then((c) => ctx.scope.conn(c)),
      'a dial with maxSendQueueBytes -1',
    );
    expect(err).toBeInstanceOf(RangeError);
  });

  it('refuses connections beyond maxConnections at once, keeps the open ones, and accepts again when one closes', async () => {
    const t = await transports();
    const listener = ctx.scope.listener(await t.server.listen(harness.listenAddress(), { maxConnections: 2 }));
    const acceptor = new Acceptor(listener, ctx.scope);
    const c1 = ctx.scope.conn(await t.client.dial(listener.address));
    const s1 = await acceptor.next();
    const c2 = ctx.scope.conn(await t.client.dial(listener.address));
    const s2 = await acceptor.next();
    const err = await rejection(
      t.client.dial(listener.address, { timeoutMs: 10_000 }).then((c) => ctx.scope.conn(c)),
      'a third dial to a listener with maxConnections 2',
    );
    expectTransportError(err, 'ConnectionRefusedError');
    // A live listener's refusal proves nothing about the process behind it.
    expect((err as { nothingListens?: unknown }).nothingListens, String(err)).toBe(false);
    // the open connections are unaffected
    const r2 = new Reader(c2);
    await c1.send(text('one'));
    expect(str(await new Reader(s1).next())).toBe('one');
    await s2.send(text('two'));
    expect(str(await r2.next())).toBe('two');
    // once one closes (and the listener has seen it), a new dial is accepted
    await c1.close();
    await within(s1.closed, 10_000, 'the listener side to see the close');
    let c3: Connection | undefined;
    for (let i = 0; i < 200 && c3 === undefined; i++) {
      c3 = await t.client.dial(listener.address, { timeoutMs: 10_000 }).then(
        (c) => ctx.scope.conn(c),
        async (e: unknown) => {
          expectTransportError(e, 'ConnectionRefusedError');
          await sleep(25);
          return undefined;
        },
      );
    }
    expect(c3, 'a dial after a connection closed must be accepted').toBeDefined();
    const s3 = await acceptor.next();
    await c3!.send(text('three'));
    expect(str(await new Reader(s3).next())).toBe('three');
    await c2.send(text('still two'));
    expect(str(await new Reader(s2).next())).toBe('still two');
  });
}
