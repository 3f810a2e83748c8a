import type { Connection } from '@tandem/transport';
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../src/sim/simulation.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A server on `srv` that records what it receives and echoes it back with a prefix. */
async function echoServer(sim: Simulation, name: string, received: string[], echo = true) {
  const node = sim.node(name);
  const env = node.env();
  const listener = await env.network.listen(`sim://${name}`);
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        for await (const m of conn) {
          received.push(dec(m));
          if (echo) void conn.send(enc('echo:' + dec(m))).catch(() => {});
        }
      })();
    }
  })();
  return node;
}

async function collect(conn: Connection, into: string[]) {
  for await (const m of conn) into.push(dec(m));
}

describe('SimNetwork', () => {
  it('delivers messages in order with virtual delays, and connections close gracefully', async () => {
    const sim = new Simulation({ seed: 1 });
    const got: string[] = [];
    await echoServer(sim, 'srv', got);
    const env = sim.node('cli').env();
    let conn: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (conn = c));
    await sim.runFor(50);
    expect(conn).toBeDefined();
    const replies: string[] = [];
    void collect(conn!, replies);
    for (let i = 0; i < 20; i++) void conn!.send(enc(`m${i}`));
    await sim.runFor(50);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(replies).toEqual(got.map((m) => 'echo:' + m));
    expect(sim.now).toBeGreaterThanOrEqual(100);
    await conn!.close();
    expect(conn!.isClosed).toBe(true);
    expect((await conn!.closed).by).toBe('local');
    await expect(conn!.send(enc('x'))).rejects.toMatchObject({ name: 'ConnectionClosedError' });
  });

  it('refuses dials to an address nobody listens on, and to a crashed process', async () => {
    const sim = new Simulation({ seed: 2 });
    const srv = await echoServer(sim, 'srv', []);
    const env = sim.node('cli').env();
    const errors: string[] = [];
    void env.network.dial('sim://nobody').catch((e: Error) => errors.push(e.name));
    await sim.runFor(20);
    srv.crash();
    void env.network.dial('sim://srv').catch((e: Error) => errors.push(e.name));
    await sim.runFor(20);
    expect(errors).toEqual(['ConnectionRefusedError', 'ConnectionRefusedError']);
  });

  it('a process crash resets its connections; a host crash is silent and dials time out', async () => {
    const sim = new Simulation({ seed: 3 });
    const srv = await echoServer(sim, 'srv', []);
    const env = sim.node('cli').env();
    let c1: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (c1 = c));
    await sim.runFor(10);
    srv.crash();
    await sim.runFor(10);
    expect(c1!.isClosed).toBe(true);
    expect((await c1!.closed).reason).toBe('reset');

    // restart, reconnect, then the whole host dies
    srv.restart();
    const env2 = srv.env();
    await env2.network.listen('sim://srv');
    let c2: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (c2 = c));
    await sim.runFor(10);
    expect(c2).toBeDefined();
    sim.crashHost(srv.host);
    await sim.runFor(1000);
    expect(c2!.isClosed).toBe(false); // nobody told us
    const errors: string[] = [];
    void env.network.dial('sim://srv', { timeoutMs: 300 }).catch((e: Error) => errors.push(`${e.name}@${sim.now}`));
    await sim.runFor(1000);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^TimeoutError@/);
  });

  it('a crashed process does nothing more: its timers never fire and its pending calls never return', async () => {
    const sim = new Simulation({ seed: 4 });
    const node = sim.node('p');
    const env = node.env();
    let fired = 0;
    env.setTimer(10, () => fired++);
    node.crash();
    await sim.runFor(100);
    expect(fired).toBe(0);
    let settled = false;
    void env.network.dial('sim://x').then(
      () => (settled = true),
      () => (settled = true),
    );
    await sim.runFor(20_000);
    expect(settled).toBe(false);
  });

  it('a paused process gets its timers and messages late, in order, when it resumes', async () => {
    const sim = new Simulation({ seed: 5 });
    const got: string[] = [];
    const srv = await echoServer(sim, 'srv', got);
    const srvEnv = srv.env();
    const timerAt: number[] = [];
    srvEnv.setTimer(30, () => timerAt.push(sim.now));
    const env = sim.node('cli').env();
    let conn: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (conn = c));
    await sim.runFor(10);
    srv.pause();
    for (let i = 0; i < 5; i++) void conn!.send(enc(`p${i}`));
    await sim.runFor(100);
    expect(got).toEqual([]);
    expect(timerAt).toEqual([]);
    srv.resume();
    await sim.runFor(10);
    expect(got).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    expect(timerAt).toHaveLength(1);
    expect(timerAt[0]).toBeGreaterThanOrEqual(110);
  });

  it('loss, duplication and reordering happen as configured, and are counted', async () => {
    const sim = new Simulation({ seed: 6 });
    const got: string[] = [];
    await echoServer(sim, 'srv', got, false);
    const env = sim.node('cli').env();
    let conn: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (conn = c));
    await sim.runFor(10);
    Object.assign(sim.network.faults, { lossRate: 0.1, duplicateRate: 0.1, reorderRate: 0.2 });
    for (let i = 0; i < 300; i++) void conn!.send(enc(String(i)));
    await sim.runFor(100);
    const s = sim.network.stats;
    expect(s.lost).toBeGreaterThan(0);
    expect(s.duplicated).toBeGreaterThan(0);
    expect(s.reordered).toBeGreaterThan(0);
    expect(got.length).toBe(300 - s.lost + s.duplicated);
    const inOrder = got.every((m, i) => i === 0 || Number(m) >= Number(got[i - 1]));
    expect(inOrder).toBe(false);
  });

  it('partitions hold messages until heal and make dials time out', async () => {
    const sim = new Simulation({ seed: 7 });
    const got: string[] = [];
    const srv = await echoServer(sim, 'srv', got);
    const cli = sim.node('cli');
    const env = cli.env();
    let conn: Connection | undefined;
    void env.network.dial('sim://srv').then((c) => (conn = c));
    await sim.runFor(10);
    sim.network.partition([cli], [srv]);
    void conn!.send(enc('held'));
    const errors: string[] = [];
    void env.network.dial('sim://srv', { timeoutMs: 100 }).catch((e: Error) => errors.push(e.name));
    await sim.runFor(200);
    expect(got).toEqual([]);
    expect(errors).toEqual(['TimeoutError']);
    sim.network.heal();
    await sim.runFor(20);
    expect(got).toEqual(['held']);
  });
});

describe('Simulation determinism', () => {
  async function scenario(seed: number) {
    const sim = new Simulation({ seed, recordTrace: true });
    const got: string[] = [];
    await echoServer(sim, 'srv', got);
    const env = sim.node('cli').env();
    Object.assign(sim.network.faults, { reorderRate: 0.3, duplicateRate: 0.1, spikeRate: 0.2, spikeMs: 20 });
    const conn = await new Promise<Connection>((resolve) => {
      void env.network.dial('sim://srv').then(resolve);
      void sim.runFor(10);
    });
    for (let i = 0; i < 50; i++) env.setTimer(env.random() * 100, () => void conn.send(enc(String(i))));
    await sim.runFor(500);
    return { got, hash: sim.scheduler.traceHash, trace: sim.scheduler.trace };
  }

  it('the same seed replays the same events; another seed does not', async () => {
    const a = await scenario(42);
    const b = await scenario(42);
    const c = await scenario(43);
    expect(b.trace).toEqual(a.trace);
    expect(b.hash).toBe(a.hash);
    expect(b.got).toEqual(a.got);
    expect(c.hash).not.toBe(a.hash);
    expect(a.trace.length).toBeGreaterThan(100);
  });
});
