/**
 * ReplicaHooks (api.ts): the admission hook holds a request before it is sequenced and offers it again
 * after every apply; afterApply may delay a reply (FIG. 4a); a request held too long is answered with a
 * HoldTimeoutError, never sequenced. The layer that uses them is @tandem/causal's causal replication.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client, ReplicaHooks } from '../src/api.js';
import { sleep, until } from './helpers/fault-net.js';
import { kv, startPair, type KvRep, type KvReq, type KvState, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

async function pairWith(hooks: ReplicaHooks): Promise<{ client(): Client<KvReq, KvRep>; a: { state: KvState } }> {
  const p = await startPair({}, kv, undefined, { hooks });
  pair = p;
  return { a: p.a, client: () => p.client('C') };
}

/** Requests on key `after:X` wait until key X exists. */
const waitForKey: ReplicaHooks = {
  admit(request, state) {
    const body = request.body as KvReq;
    if (body.op !== 'put' || !body.key.startsWith('after:')) return true;
    return (state as KvState).has(body.key.slice('after:'.length));
  },
};

describe('ReplicaHooks', () => {
  it('holds a request until admitted and sequences it after the entry that admitted it', async () => {
    const { client } = await pairWith(waitForKey);
    const c1 = client();
    const c2 = client();
    let held = false;
    const waiting = c1.callWithInfo({ op: 'put', key: 'after:x', value: '1' }).then((r) => {
      held = true;
      return r;
    });
    await sleep(100); // several retransmissions (requestTimeoutMs 40): still held, never sequenced
    expect(held).toBe(false);
    const first = await c2.callWithInfo({ op: 'put', key: 'x', value: 'v' });
    const second = await waiting;
    expect(first.seq).toBe(1);
    expect(second.seq).toBe(2); // sequenced once, after x, despite the retransmissions
    const again = await c2.callWithInfo({ op: 'get', key: 'after:x' });
    expect(again.reply.value).toBe('1');
    expect(again.seq).toBe(3);
  });

  it('answers a request held past holdTimeoutMs with HoldTimeoutError and never applies it', async () => {
    const { client, a } = await pairWith({ ...waitForKey, holdTimeoutMs: 150 });
    const c = client();
    const err = await c.call({ op: 'put', key: 'after:never', value: '1' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(`${err?.name} ${err?.message}`).toMatch(/HoldTimeoutError/);
    expect(a.state.has('after:never')).toBe(false);
  });

  it('afterApply delays the reply until its promise settles, and sees the applied state', async () => {
    let release: (() => void) | undefined;
    const seen: string[] = [];
    const { client } = await pairWith({
      afterApply(entry, state) {
        const body = entry.body as KvReq;
        if (body.op === 'put') seen.push(`${entry.seq}:${(state as KvState).get(body.key)}`);
        if (body.op !== 'put' || body.key !== 'slow') return undefined;
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    });
    const c = client();
    let replied = false;
    const slow = c.call({ op: 'put', key: 'slow', value: 's' }).then(() => {
      replied = true;
    });
    await until(() => release !== undefined, 'afterApply called');
    await sleep(60);
    expect(replied).toBe(false);
    expect(seen).toEqual(['1:s']);
    release!();
    await slow;
    expect(replied).toBe(true);
  });
});
