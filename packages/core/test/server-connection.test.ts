/** The client's per-replica connection: re-dial backoff stays within requestTimeoutMs (virtual clock). */
import { describe, expect, it } from 'vitest';
import { ConnectionRefusedError, type Transport } from '@tandem/transport';
import type { Env, TimerHandle } from '../src/env.js';
import { silentLogger } from '../src/env.js';
import { resolveConfig, computeTimingBounds } from '../src/config.js';
import { ServerConnection } from '../src/server-connection.js';

function virtualEnv(dials: { n: number }): { env: Env; advance(ms: number): void } {
  let now = 0;
  const network: Transport = {
    name: 'refusing',
    schemes: ['mem'],
    listen: () => Promise.reject(new Error('not used')),
    dial: () => {
      dials.n++;
      return Promise.reject(new ConnectionRefusedError('nothing listens'));
    },
  };
  const env: Env = {
    now: () => now,
    wallClock: () => now,
    setTimer: (): TimerHandle => ({ cancel: () => undefined }),
    random: () => 0.5,
    randomBytes: (n) => new Uint8Array(n),
    network,
    logger: silentLogger,
  };
  return { env, advance: (ms) => void (now += ms) };
}

describe('client reconnect backoff', () => {
  it('a long-lived client keeps dialling a refusing replica at least once per requestTimeoutMs (no multi-second backoff)', async () => {
    const cfg = resolveConfig({});
    const dials = { n: 0 };
    const { env, advance } = virtualEnv(dials);
    const handlers = { onMessage: () => undefined, onClose: () => undefined, onViolation: () => undefined };
    const hello = () => ({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'c', epoch: 0 }) as const;
    const conn = new ServerConnection(1, 'mem://nowhere', env, handlers, hello, cfg.maxMessageSize, cfg.requestTimeoutMs / 4, cfg.requestTimeoutMs);
    // The client re-sends a pending call every requestTimeoutMs; 40 re-sends (a long outage).
    for (let i = 0; i < 40; i++) {
      conn.send(new Uint8Array([1]));
      await new Promise((r) => setImmediate(r)); // let the refused dial settle
      expect(conn.retryAt - env.now()).toBeLessThanOrEqual(cfg.requestTimeoutMs);
      advance(cfg.requestTimeoutMs);
    }
    expect(dials.n).toBe(40);
    // So after a takeover, the next re-send reaches the new primary: failover within worstCaseFailoverMs.
    expect(computeTimingBounds({}).worstCaseFailoverMs).toBe(computeTimingBounds({}).takeoverMs + cfg.requestTimeoutMs);
  });
});
