import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServers, requestFromWords } from '../src/commands/call.js';
import { readServeConfig, replicationSettings } from '../src/config-file.js';
import { addressFor } from '../src/transports.js';

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect((err as Error).name).toBe('UsageError');
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('tandem-kv call: command words → requests', () => {
  it('maps each command to its request', () => {
    expect(requestFromWords(['get', 'k'])).toEqual({ op: 'get', key: 'k' });
    expect(requestFromWords(['set', 'k', 'v'])).toEqual({ op: 'set', key: 'k', value: 'v' });
    expect(requestFromWords(['cas', 'k', '@absent', 'v'])).toEqual({ op: 'cas', key: 'k', expected: null, value: 'v' });
    expect(requestFromWords(['cas', 'k', 'old', 'new'])).toEqual({ op: 'cas', key: 'k', expected: 'old', value: 'new' });
    expect(requestFromWords(['incr', 'n', '5'])).toEqual({ op: 'incr', key: 'n', by: 5 });
    expect(requestFromWords(['scan', 'a/', '10'])).toEqual({ op: 'scan', prefix: 'a/', limit: 10 });
    expect(requestFromWords(['lock', 'printer', '5000'])).toEqual({ op: 'acquire', name: 'printer', ttlMs: 5000 });
    expect(requestFromWords(['lock', 'printer', '5000', 'job-1'])).toEqual({ op: 'acquire', name: 'printer', ttlMs: 5000, owner: 'job-1' });
    expect(requestFromWords(['renew', 'printer', '3', '1000'])).toEqual({ op: 'renew', name: 'printer', token: 3, ttlMs: 1000 });
    expect(requestFromWords(['release', 'printer', '3'])).toEqual({ op: 'release', name: 'printer', token: 3 });
  });

  it('refuses unknown commands, missing or extra arguments and bad numbers with a UsageError', () => {
    expect(usageError(() => requestFromWords(['frobnicate']))).toContain('unknown command');
    expect(usageError(() => requestFromWords([]))).toContain('missing command');
    expect(usageError(() => requestFromWords(['set', 'k']))).toContain('set KEY VALUE');
    expect(usageError(() => requestFromWords(['get', 'k', 'extra']))).toContain('too many arguments');
    expect(usageError(() => requestFromWords(['lock', 'x', 'soon']))).toContain('TTL_MS must be an integer');
    expect(usageError(() => requestFromWords(['lock', 'x', '0']))).toContain('invalid lock');
  });

  it('--servers needs exactly two addresses', () => {
    expect(parseServers('tcp://a:1, tcp://b:2')).toEqual(['tcp://a:1', 'tcp://b:2']);
    expect(usageError(() => parseServers('tcp://a:1'))).toContain('exactly two');
    expect(usageError(() => parseServers(undefined))).toContain('--servers is required');
  });
});

describe('tandem-kv serve: config file and replication settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-config-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('accepts a valid file', () => {
    const p = file(
      'ok.json',
      JSON.stringify({
        listen: 'tcp://127.0.0.1:7001',
        peer: 'tcp://127.0.0.1:7002',
        role: 'backup',
        replication: { flushIntervalMs: 10 },
      }),
    );
    expect(readServeConfig(p)).toMatchObject({ role: 'backup', replication: { flushIntervalMs: 10 } });
  });

  it('names the offending field, unknown keys, bad JSON and missing files', () => {
    expect(usageError(() => readServeConfig(file('role.json', '{"role":"leader"}')))).toContain('role');
    expect(usageError(() => readServeConfig(file('extra.json', '{"lissen":"x"}')))).toContain('lissen');
    expect(usageError(() => readServeConfig(file('bad.json', '{nope')))).toContain('not valid JSON');
    expect(usageError(() => readServeConfig(join(dir, 'missing.json')))).toContain('cannot read');
  });

  it('replication settings are checked by the core (ConfigError → UsageError)', () => {
    expect(replicationSettings({ flushIntervalMs: 5 }).flushIntervalMs).toBe(5);
    expect(usageError(() => replicationSettings({ flushIntervalMs: -1 }))).toContain('flushIntervalMs');
    expect(usageError(() => replicationSettings({ heartbeatTimeoutMs: 10, flushIntervalMs: 20 }))).toContain('heartbeatTimeoutMs');
  });

  it('addresses per transport', () => {
    expect(addressFor('tcp', '127.0.0.1', 1)).toBe('tcp://127.0.0.1:1');
    expect(addressFor('ws', '127.0.0.1', 1)).toBe('ws://127.0.0.1:1/tandem-kv');
    expect(addressFor('zmq', '127.0.0.1', 1)).toBe('zmq+tcp://127.0.0.1:1');
    expect(usageError(() => addressFor('carrier-pigeon', 'h', 1))).toContain('unknown transport');
  });
});
