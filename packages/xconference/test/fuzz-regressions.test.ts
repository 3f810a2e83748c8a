// Regressions found by the fuzzer (npm run fuzz -- --target x11; docs/TESTING.md, "Fuzzing").
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { convertZPixmap } from '../src/translate/image-convert.js';
import { FakeXServer, startConference, upstreamOf, type TestConference } from './helpers/fake-x-server.js';
import { RawXClient } from './helpers/x-client.js';
import { parseFocusTrigger } from '../src/session/focus-trigger.js';

describe('fuzz regressions', () => {
  it('convertZPixmap refuses a scanline pad X11 does not allow instead of throwing', () => {
    const from = { le: true, bitsPerPixel: 32, scanlinePad: 32 };
    const to = { le: false, bitsPerPixel: 32, scanlinePad: 255 }; // from a server's setup reply
    expect(convertZPixmap(Buffer.alloc(4 * 4), 2, 2, from, to, (v) => v)).toBeNull(); // threw RangeError (offset 31.875)
  });

  let rig: TestConference | undefined;
  const servers: FakeXServer[] = [];
  const clients: RawXClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await rig?.close();
    rig = undefined;
    for (const s of servers.splice(0)) await s.stop().catch(() => undefined);
  });

  it('a late joiner whose setup claims an odd scanline pad does not close the conference', async () => {
    const master = new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 });
    // A newcomer like the fake server, but its setup reply says depth-24 scanlines are padded to 255 bits.
    const odd = new FakeXServer('odd', { base: 0x600000, root: 0x77, atomBase: 700, bigReqOpcode: 135 });
    const accept = (odd as unknown as { accept(s: Socket): void }).accept.bind(odd);
    (odd as unknown as { server: ReturnType<typeof createServer> }).server = createServer((sock) => {
      const write = sock.write.bind(sock) as (b: Buffer) => boolean;
      let first = true;
      (sock as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
        if (first) {
          first = false;
          const vendorLen = b.readUInt16LE(24);
          b[40 + vendorLen + ((4 - (vendorLen % 4)) % 4) + 2] = 255; // first pixmap format's scanline pad
        }
        return write(b);
      };
      accept(sock);
    });
    servers.push(odd);
    await odd.start();
    let closed: string | null = null;
    const logs: string[] = [];
    rig = await startConference([master], { trigger: parseFocusTrigger('none'), onClose: (r) => (closed = r), log: (l) => logs.push(l) });
    const c = await RawXClient.open(rig.port);
    clients.push(c);
    c.words(53, 24, [0x400002, 0x50d, (2 << 16) | 2]); // CreatePixmap 2x2, depth 24: its contents are copied to a joiner
    const before = c.request(43, 0);
    await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === before));

    await rig.conference.addParticipant(upstreamOf(odd)).catch(() => undefined);
    expect(closed).toBeNull(); // was "master master left the conference": the conversion threw in the master's reply
    expect(c.closed).toBe(false);
    const after = c.request(43, 0);
    await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === after));
    expect(logs.some((l) => /contents not copied/.test(l))).toBe(true);
  });
});
