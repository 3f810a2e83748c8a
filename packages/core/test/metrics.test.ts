// The metric hooks (ReplicaOptions.metrics / replica.metrics, ClientOptions.metrics / client.metrics) and the
// operator's status fields (backup lag, clients, uptime, version, bounds), over the in-memory test network.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicaEvent } from '../src/api.js';
import { computeTimingBounds } from '../src/config.js';
import type {
  ClientCallOutcome,
  ClientMetricsSink,
  ConnectionKind,
  ForwardResult,
  ReplicaMetricsSink,
  ReplicaRequestOutcome,
} from '../src/metrics.js';
import { replicaStatus } from '../src/operator.js';
import { coreVersion } from '../src/version.js';
import { FAST, startPair, type Pair } from './helpers/setup.js';

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

class Recorder implements ReplicaMetricsSink {
  requests: [ReplicaRequestOutcome, number][] = [];
  rtts: number[] = [];
  forwarded: Record<ForwardResult, number> = { received: 0, applied: 0, rejected: 0 };
  conns: Record<ConnectionKind, number> = { client: 0, peer: 0, transfer: 0, admin: 0 };
  opened = 0;
  bytesIn = 0;
  bytesOut = 0;
  events: ReplicaEvent['type'][] = [];
  request(outcome: ReplicaRequestOutcome, ms: number): void {
    this.requests.push([outcome, ms]);
  }
  flushRtt(ms: number): void {
    this.rtts.push(ms);
  }
  forward(result: ForwardResult): void {
    this.forwarded[result]++;
  }
  connection(kind: ConnectionKind, change: 'opened' | 'closed'): void {
    this.conns[kind] += change === 'opened' ? 1 : -1;
    if (change === 'opened') this.opened++;
  }
  bytes(direction: 'in' | 'out', count: number): void {
    if (direction === 'in') this.bytesIn += count;
    else this.bytesOut += count;
  }
  event(e: ReplicaEvent): void {
    this.events.push(e.type);
  }
}

describe('metric hooks', () => {
  it('a replica reports requests, flush round trips, forwards, connections, bytes and events', async () => {
    pair = await startPair({ piggyback: 'seq-digest' });
    const ma = new Recorder();
    const mb = new Recorder();
    pair.a.metrics = ma;
    pair.b.metrics = mb;
    expect(pair.a.metrics).toBe(ma);
    const calls: [ClientCallOutcome, number][] = [];
    const failovers: number[] = [];
    const sink: ClientMetricsSink = { call: (o, ms) => calls.push([o, ms]), failover: (e) => failovers.push(e) };
    const c = pair.client('C');
    c.metrics = sink;
    for (let i = 0; i < 10; i++) await c.call({ op: 'incr', key: 'n' });
    await expect(c.call({ op: 'nope' } as never)).rejects.toThrow();
    await c.drain();
    expect(ma.requests.filter(([o]) => o === 'ok')).toHaveLength(10);
    expect(ma.requests.every(([, ms]) => ms >= 0)).toBe(true);
    expect(calls.filter(([o]) => o === 'ok')).toHaveLength(10);
    expect(calls.some(([o]) => o === 'invalid')).toBe(true);
    expect(ma.conns.client).toBe(1);
    expect(ma.bytesIn).toBeGreaterThan(0);
    expect(ma.bytesOut).toBeGreaterThan(0);
    expect(mb.forwarded.received).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 3 * FAST.flushIntervalMs!));
    expect(ma.rtts.length).toBeGreaterThan(0);
    expect(ma.rtts.every((ms) => ms >= 0)).toBe(true);

    const st = pair.a.status();
    expect(st).toMatchObject({ role: 'primary', clientsConnected: 1, version: coreVersion() });
    expect(st.backupLag).toBeDefined();
    expect(st.backupLag!.seq).toBe(st.unackedEntries);
    expect(st.uptimeMs).toBeGreaterThan(0);
    expect(st.bounds.worstCaseFailoverMs).toBe(computeTimingBounds(FAST).worstCaseFailoverMs);
    expect(pair.b.status().backupLag).toBeUndefined();

    pair.nodeA.crash();
    const r = await c.callWithInfo({ op: 'incr', key: 'n' });
    expect(r.epoch).toBe(2);
    expect(failovers).toEqual([2]);
    expect(mb.events).toContain('takeover');
    expect(mb.requests.some(([o]) => o === 'ok')).toBe(true);
  });

  it('an operator status carries the detail; a peer statusReply does not', async () => {
    pair = await startPair();
    const c = pair.client('C');
    await c.call({ op: 'put', key: 'k', value: 'v' });
    const s = await replicaStatus(pair.addrA, { env: pair.cluster.node('O').env, service: 'kv', timeoutMs: 2000 });
    expect(s.role).toBe('primary');
    expect(s.detail).toMatchObject({
      clientsConnected: 1,
      version: coreVersion(),
      bounds: { takeoverMs: computeTimingBounds(FAST).takeoverMs },
    });
    expect(s.detail!.backupLag).toBeDefined();
    const peerReplies = pair.cluster.find((rec) => rec.msg.t === 'statusReply' && rec.from === 'B');
    for (const rec of peerReplies) expect((rec.msg as { detail?: unknown }).detail).toBeUndefined();
  });

  it('coreVersion() is package.json version', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(coreVersion()).toBe(pkg.version);
  });
});
