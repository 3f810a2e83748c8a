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
    const conn = new ServerConnection(
      1,
      'mem://nowhere',
      env,
      handlers,
      hello,
      cfg.maxMessageSize,
      cfg.requestTimeoutMs / 4,
      cfg.requestTimeoutMs,
    );
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

describe('a dial that hangs (a host that is down: its SYN unanswered)', () => {
  it('does not hold back the re-sends: after requestTimeoutMs a new dial starts beside it and carries them (sim seed 9867)', async () => {
    const cfg = resolveConfig({});
    let now = 0;
    const pending: { resolve: (c: unknown) => void; n: number }[] = [];
    const sent: string[] = [];
    const network: Transport = {
      name: 'hanging',
      schemes: ['mem'],
      listen: () => Promise.reject(new Error('not used')),
      dial: () =>
        new Promise((resolve) => {
          pending.push({ resolve: resolve as (c: unknown) => void, n: pending.length });
        }),
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
    const handlers = { onMessage: () => undefined, onClose: () => undefined, onViolation: () => undefined };
    const hello = () => ({ t: 'hello', kind: 'client', service: 'kv', nodeId: 'c', epoch: 0 }) as const;
    const conn = new ServerConnection(
      0,
      'mem://down',
      env,
      handlers,
      hello,
      cfg.maxMessageSize,
      cfg.requestTimeoutMs / 4,
      cfg.requestTimeoutMs,
    );
    expect(conn.send(new Uint8Array([1]))).toBe(true); // first dial: hangs
    now += cfg.requestTimeoutMs / 2;
    conn.send(new Uint8Array([2]));
    expect(pending).toHaveLength(1); // still within requestTimeoutMs: wait for it
    now += cfg.requestTimeoutMs;
    conn.send(new Uint8Array([3]));
    expect(pending).toHaveLength(2); // the host came back: a second dial beside the hung one
    const fake = (name: string) => ({
      id: name,
      localAddress: 'mem://c',
      remoteAddress: 'mem://down',
      maxMessageSize: cfg.maxMessageSize,
      isClosed: false,
      closed: new Promise(() => undefined),
      send: (b: Uint8Array) => (sent.push(`${name}:${b[0] ?? '?'}`), Promise.resolve()),
      close: () => Promise.resolve(),
      abort: () => sent.push(`${name}:aborted`),
      [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => undefined) }),
    });
    pending[1]!.resolve(fake('second'));
    await new Promise((r) => setTimeout(r, 0));
    expect(sent.filter((s) => s.startsWith('second:') && !s.endsWith('aborted')).length).toBeGreaterThanOrEqual(4); // hello + 3 queued re-sends
    pending[0]!.resolve(fake('first')); // the hung dial completes late: closed, the second one stays
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toContain('first:aborted');
  });
});
