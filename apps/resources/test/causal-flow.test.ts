/**
 * The three-party flow with real processes (issue #18): both pairs run `tandem-resources serve` as child
 * processes on loopback; Pro1 is this test.
 *  - Pro2's initialisation message to Pro3 is held ≥ 200 ms by a relay while Pro1 uses the resource at
 *    once: Pro3 applies the initialisation first (and without the causal context the use overtakes it).
 *  - Pro2's primary is SIGKILLed after replying and before its message leaves: its backup takes over,
 *    re-issues the message, and Pro3 applies it exactly once.
 */
import { nodeEnv } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createNetwork } from '../src/serve.js';
import { createPro1, type Pro1 } from '../src/flow.js';
import { ThreeParty } from '../src/harness.js';
import { DelayRelay } from './delay-relay.js';

const REPLICATION = {
  flushIntervalMs: 20,
  heartbeatTimeoutMs: 300,
  ackTimeoutMs: 60,
  requestTimeoutMs: 150,
  forwardDelayMs: 2,
  callDeadlineMs: 15_000,
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function pro1For(parties: ThreeParty): Pro1 {
  const env = nodeEnv({ network: createNetwork() });
  const p = createPro1(env, { handler: parties.handler, resource: parties.resource }, REPLICATION);
  cleanups.push(() => p.close());
  return p;
}

describe('tandem-resources with real processes', () => {
  it('Pro3 applies the delayed initialisation before Pro1 uses the resource (FIG. 4b)', async () => {
    const relays: DelayRelay[] = [];
    const parties = await ThreeParty.start({
      replication: REPLICATION,
      handlerDialsResourceVia: async (resource) => {
        for (const a of resource) relays.push(await DelayRelay.start(a));
        cleanups.push(async () => Promise.all(relays.map((r) => r.close())));
        return [relays[0]!.address, relays[1]!.address] as const;
      },
    });
    cleanups.push(() => parties.stop());
    const pro1 = pro1For(parties);
    const observer = pro1For(parties); // a separate session: no causal dependency on anything

    await pro1.handler.call({ op: 'alloc', id: 'warm', flow: '4b' });
    await pro1.resource.call({ op: 'use', id: 'warm' });

    for (const r of relays) r.delayMs = 300;
    const alloc = await pro1.handler.call({ op: 'alloc', id: 'printer', flow: '4b' });
    expect(alloc.available).toBe(true);
    // The reply came at once; the initialisation is still held by the relay.
    expect((await observer.resource.call({ op: 'inspect', id: 'printer' })).inits).toBe(0);
    const use = await pro1.resource.call({ op: 'use', id: 'printer', data: 'page 1' });
    expect(use).toMatchObject({ inits: 1, uses: 1 });
    const seen = await observer.resource.call({ op: 'inspect', id: 'printer' });
    expect(seen.inits).toBe(1);
    expect(seen.initSeq!).toBeLessThan(seen.firstUseSeq!);
    expect(Math.max(...relays.map((r) => r.maxHeldMs))).toBeGreaterThanOrEqual(200);

    // Control: the same use without the causal context overtakes the held initialisation.
    const alloc2 = await pro1.handler.call({ op: 'alloc', id: 'scanner', flow: '4b' });
    expect(alloc2.available).toBe(true);
    const err = await observer.resource.call({ op: 'use', id: 'scanner' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/used before its initialisation/);
  });

  it("Pro2's backup re-issues the message its dead primary never sent; Pro3 applies it exactly once", async () => {
    const parties = await ThreeParty.start({ replication: REPLICATION, crashHandlerPrimary: 2 });
    cleanups.push(() => parties.stop());
    const pro1 = pro1For(parties);
    const observer = pro1For(parties);
    const { handlerA, handlerB } = parties.procs;

    await pro1.handler.call({ op: 'alloc', id: 'warm', flow: '4b' });
    await pro1.resource.call({ op: 'use', id: 'warm' });

    const alloc = await pro1.handler.call({ op: 'alloc', id: 'plotter', flow: '4b' });
    expect(alloc.available).toBe(true); // replied…
    const exit = await handlerA.exited; // …and died before its message left
    expect(exit.signal).toBe('SIGKILL');
    expect(handlerA.events.some((e) => e.event === 'crashing')).toBe(true);

    const use = await pro1.resource.call({ op: 'use', id: 'plotter' }); // held at Pro3 until the re-issue
    expect(use).toMatchObject({ inits: 1, uses: 1 });
    await handlerB.waitFor((e) => e.event === 'takeover', 10_000, 'takeover');

    // More traffic through the new primary; then the counts, from Pro3's replicated state.
    await pro1.handler.call({ op: 'alloc', id: 'after', flow: '4b' });
    await pro1.resource.call({ op: 'use', id: 'after' });
    for (const id of ['warm', 'plotter', 'after']) {
      const s = await observer.resource.call({ op: 'inspect', id });
      expect(s, id).toMatchObject({ inits: 1, uses: 1 });
      expect(s.initSeq!, id).toBeLessThan(s.firstUseSeq!);
    }
    await handlerB.stop();
    const stats = handlerB.events.find((e) => e.event === 'stats');
    expect(Number(stats?.['reissued'])).toBeGreaterThanOrEqual(1);
  });
});
