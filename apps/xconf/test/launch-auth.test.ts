// The launch gate over a real unix socket (no X server): cookie checked in the setup, refusal as an X reply.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeClientSetup, findCookie, parseServerSetup, readXauthority } from '@tandem/xconference';
import { gateApplication, newCookie, writeXauthority } from '../src/launch-auth.js';

describe('launch gate', () => {
  let dir: string;
  let path: string;
  let server: Server;
  const cookie = newCookie();
  const accepted: Socket[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xconf-gate-'));
    path = join(dir, 'gate.sock');
    // An accepted connection echoes what it reads, prefixed, so the test sees the bytes handed on.
    server = createServer((sock) =>
      gateApplication(
        sock,
        cookie,
        (app, prelude) => {
          accepted.push(app);
          const echo = (chunk: Buffer): boolean => app.write(Buffer.concat([Buffer.from('echo:'), chunk]));
          echo(prelude);
          app.on('data', echo);
          app.on('error', () => {});
        },
        { log: (l) => logs.push(l), timeoutMs: 2000 },
      ),
    );
    await new Promise<void>((r) => server.listen(path, () => r()));
  });
  afterAll(async () => {
    for (const a of accepted) a.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects, writes `bytes` (in two pieces to exercise reassembly) and collects what comes back until close or `until`. */
  function talk(bytes: Buffer, until?: (got: Buffer) => boolean): Promise<{ got: Buffer; sock: Socket }> {
    return new Promise((res) => {
      const sock = connect(path);
      let got = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c]);
        if (until?.(got)) res({ got, sock });
      });
      sock.on('close', () => res({ got, sock }));
      sock.write(bytes.subarray(0, 5));
      setTimeout(() => sock.write(bytes.subarray(5)), 20);
    });
  }

  it('hands on a connection with the right cookie, setup bytes and what follows intact, both ways', async () => {
    const setup = encodeClientSetup('LE', 'MIT-MAGIC-COOKIE-1', cookie);
    const request = Buffer.from([43, 0, 1, 0]); // GetInputFocus, right after the setup
    const whole = Buffer.concat([setup, request]);
    const { got, sock } = await talk(whole, (g) => g.length >= 5 + whole.length);
    sock.destroy();
    expect(got.subarray(0, 5).toString()).toBe('echo:');
    expect(Buffer.concat(splitEchoes(got))).toEqual(whole);
  });

  it('refuses a missing or wrong cookie with an X setup "failed" reply and closes', async () => {
    const none = await talk(encodeClientSetup('LE'));
    const r1 = parseServerSetup(none.got, true);
    expect(r1.status).toBe('failed');
    expect(r1.reason).toMatch(/^tandem-xconf: authorization required/);
    const wrong = await talk(encodeClientSetup('BE', 'MIT-MAGIC-COOKIE-1', newCookie()));
    const r2 = parseServerSetup(wrong.got, false); // answered in the client's byte order
    expect(r2.status).toBe('failed');
    expect(r2.reason).toMatch(/rejected/);
    expect(logs.filter((l) => /application refused/.test(l))).toHaveLength(2);
  });

  it('drops a connection that is not X at all, and one that never finishes its setup', async () => {
    const http = await talk(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    expect(http.got.length).toBe(0);
    const partial = await talk(Buffer.from([0x6c, 0, 11, 0, 0, 0, 18, 0])); // promises a name, never sends it
    expect(parseServerSetup(partial.got, true).reason).toMatch(/timed out/);
  });

  it('writes an Xauthority file (0600) that Xlib-style lookup finds for the display', () => {
    const file = join(dir, 'conf.xauth');
    writeXauthority(file, 42, cookie);
    const entries = readXauthority(file);
    expect(findCookie(entries, 42, 'any-host')?.data).toEqual(cookie); // the wildcard entry
    expect(findCookie(entries, 43, 'any-host')).toBeUndefined();
  });
});

/** The echo server answers each chunk with "echo:" + chunk; returns the chunks. */
function splitEchoes(got: Buffer): Buffer[] {
  const parts = got.toString('latin1').split('echo:').slice(1);
  return parts.map((p) => Buffer.from(p, 'latin1'));
}
