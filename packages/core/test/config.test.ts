import { describe, expect, it } from 'vitest';
import { computeTimingBounds, DEFAULT_REPLICATION_CONFIG, resolveConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

describe('config', () => {
  it('fills defaults', () => {
    const c = resolveConfig({ flushIntervalMs: 5 });
    expect(c.flushIntervalMs).toBe(5);
    expect(c.piggyback).toBe(DEFAULT_REPLICATION_CONFIG.piggyback);
    expect(c.replyMode).toBe('async');
    expect(c.dedupWindow).toBe(100_000);
  });

  it('lists every bad field in one ConfigError', () => {
    let err: unknown;
    try {
      resolveConfig({ flushIntervalMs: -1, piggyback: 'everything' as never, ackTimeoutMs: 'fast' as never, bogus: 1 } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const paths = (err as ConfigError).issues.map((i) => i.path).join(' ');
    expect(paths).toContain('flushIntervalMs');
    expect(paths).toContain('piggyback');
    expect(paths).toContain('ackTimeoutMs');
    expect(paths).toContain('bogus');
    expect((err as Error).name).toBe('ConfigError');
  });

  it('rejects inconsistent combinations', () => {
    expect(() => resolveConfig({ flushIntervalMs: 100, heartbeatTimeoutMs: 150 })).toThrow(
      /heartbeatTimeoutMs: must be at least 2 × flushIntervalMs/,
    );
    expect(() => resolveConfig({ requestTimeoutMs: 500, callDeadlineMs: 100 })).toThrow(/callDeadlineMs/);
  });
});

describe('timing bounds', () => {
  it('derives the forward window, takeover, worst-case failover and lease from the config', () => {
    const b = computeTimingBounds();
    // defaults: forwardDelay 5, ackTimeout 50, maxRetransmits 2, heartbeatTimeout 150, requestTimeout 100
    expect(b.forwardWindowMs).toBe(5 + 3 * 50);
    // heartbeat timeout + forward window + the takeover probe of the primary (ackTimeoutMs)
    expect(b.takeoverMs).toBe(150 + 155 + 50);
    expect(b.takeoverProbeMs).toBe(50);
    expect(b.worstCaseFailoverMs).toBe(355 + 100);
    expect(b.joinTimeoutMs).toBe(3550);
    expect(b.leaseMs).toBe(135);
    expect(b.leaseMs).toBeLessThan(b.takeoverMs);
    const c = computeTimingBounds({ ackTimeoutMs: 10, maxRetransmits: 4, forwardDelayMs: 0, heartbeatTimeoutMs: 80, flushIntervalMs: 10 });
    expect(c.forwardWindowMs).toBe(50);
    expect(c.takeoverMs).toBe(140);
    expect(c.peerFaultyMs).toBe(140); // = takeoverMs: no sooner (docs/PROTOCOL.md, failure detector)
    expect(c.dialTimeoutMs).toBe(50);
  });
});
