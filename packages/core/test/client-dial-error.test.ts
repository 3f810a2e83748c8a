/** A client that cannot dial its servers says why: the ServiceUnavailableError's `cause` is the dial error. */
import { createRegistry, UnsupportedSchemeError } from '@tandem/transport';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.js';
import { ServiceUnavailableError } from '../src/errors.js';
import { nodeEnv } from '../src/node-env.js';
import { kv } from './helpers/setup.js';

const config = { requestTimeoutMs: 20, callDeadlineMs: 200 };

describe('a client whose dial fails', () => {
  it('rejects with ServiceUnavailableError caused by the missing transport for the scheme', async () => {
    const env = nodeEnv({ network: createRegistry([]) }); // nothing registered: tcp:// cannot be dialled
    const client = createClient({ service: kv, env, servers: ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:2'], config });
    const err = await client.call({ op: 'get', key: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await client.close();
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    const cause = (err as ServiceUnavailableError).cause;
    expect(cause).toBeInstanceOf(UnsupportedSchemeError);
    expect((err as Error).message).toContain((cause as Error).message);
  });

  it("rejects with ServiceUnavailableError caused by the transport's dial error", async () => {
    const refused = new Error('connect ECONNREFUSED (scripted)');
    const network = {
      name: 'refusing',
      schemes: ['mem'],
      listen: () => Promise.reject(new Error('not used')),
      dial: () => Promise.reject(refused),
    };
    const client = createClient({ service: kv, env: nodeEnv({ network }), servers: ['mem://a', 'mem://b'], config });
    const err = await client.call({ op: 'get', key: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await client.close();
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect((err as ServiceUnavailableError).cause).toBe(refused);
  });
});
