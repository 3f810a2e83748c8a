// The daemon's start-time probes of its servers (hosted-conference.ts): a participant that answers the
// setup with garbage, or never answers, neither crashes the daemon nor stops the conference from starting,
// and every probe connection is closed (a stalled one after the probe timeout) — no socket leaks.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { parseFocusTrigger } from '@tandem/xconference';
import { HostedConference } from '../src/hosted-conference.js';
import { FakeXServer, upstreamOf } from '../../../packages/xconference/test/helpers/fake-x-server.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A TCP "X server" that answers every client setup with `reply` (or never, when undefined). */
async function rawServer(reply: Buffer | undefined): Promise<{ port: number; open: () => number; accepted: () => number }> {
  const socks = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((sock) => {
    accepted++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    if (reply !== undefined) sock.once('data', () => sock.write(reply));
    sock.resume(); // read (and drop) whatever comes, so the peer's close is seen
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  closers.push(
    () =>
      new Promise<void>((res) => {
        for (const s of socks) s.destroy();
        server.close(() => res());
      }),
  );
  return { port: (server.address() as { port: number }).port, open: () => socks.size, accepted: () => accepted };
}

describe('start-time probes', () => {
  it('a garbled and a silent participant neither crash nor block the start; the probe sockets are closed', async () => {
    const master = new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 });
    await master.start();
    // "success", 16 bytes long, but a body that cannot be a server setup: parsing it throws.
    const garbage = Buffer.from([1, 0, 11, 0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const garbled = await rawServer(garbage);
    const silent = await rawServer(undefined);
    const display = 300 + (process.pid % 300);
    const host = await HostedConference.start({
      name: 'probes',
      display: `:${display}`,
      master: { name: 'master', display: 'fake', upstream: upstreamOf(master) },
      participants: [
        { name: 'garbled', display: 'fake', upstream: { name: 'garbled', connect: () => connect(garbled.port, '127.0.0.1') } },
        { name: 'silent', display: 'fake', upstream: { name: 'silent', connect: () => connect(silent.port, '127.0.0.1') } },
      ],
      trigger: parseFocusTrigger('none'),
      xauthorityPath: null,
      warn: () => {},
    });
    closers.push(() => void host.close('test over'));
    expect(garbled.accepted()).toBe(1);
    expect(silent.accepted()).toBe(1);
    // Both probes ended: the garbled one at once, the silent one after its timeout.
    const deadline = Date.now() + 5000;
    while (garbled.open() + silent.open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect({ garbled: garbled.open(), silent: silent.open() }).toEqual({ garbled: 0, silent: 0 });
  }, 20_000);
});
