// The ctl socket itself (no X server needed): file permissions, line protocol, typed refusals.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ctlRequest } from '../src/ctl-client.js';
import { CtlError, MAX_LINE_BYTES } from '../src/ctl-protocol.js';
import { XconfServer } from '../src/daemon.js';

describe('tandem-xconf ctl socket', () => {
  let dir: string;
  let sock: string;
  let server: XconfServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xconf-ctl-'));
    sock = join(dir, 'run', 'ctl.sock');
    const config = parseConfig({
      participants: [
        { name: 'alice', display: ':91', token: 'alice-secret', may: ['start', 'join', 'launch'] },
        { name: 'bob', display: ':92', token: 'bob-secret-1' },
      ],
      conferences: [{ name: 'later', display: ':93', master: 'alice', autostart: false }],
      control: { socket: sock },
    });
    server = await XconfServer.start(config);
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Sends raw lines on one connection and collects the reply lines (until `count` replies or close). */
  function exchange(lines: string[], count: number): Promise<{ replies: Array<Record<string, unknown>>; closed: boolean }> {
    return new Promise((res, rej) => {
      const s = connect(sock);
      let buf = '';
      const replies: Array<Record<string, unknown>> = [];
      const timer = setTimeout(() => rej(new Error(`only ${replies.length} replies: ${buf}`)), 10_000);
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          replies.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
        }
        if (replies.length >= count) {
          clearTimeout(timer);
          s.destroy();
          res({ replies, closed: false });
        }
      });
      s.on('close', () => {
        clearTimeout(timer);
        res({ replies, closed: true });
      });
      s.on('error', () => {});
      s.write(lines.join(''));
    });
  }

  it('is a socket of mode 0600 in a directory of mode 0700', () => {
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
  });

  it('lists no running conference before `start`', async () => {
    expect(await ctlRequest(sock, { cmd: 'list' })).toEqual({ conferences: [] });
  });

  it('answers bad lines with typed errors and keeps the connection usable', async () => {
    const { replies, closed } = await exchange(
      ['garbage\n', '{"cmd":"warp"}\n', '{"id":7,"cmd":"join","conference":"x"}\n', '{"id":8,"cmd":"list"}\n'],
      4,
    );
    expect(closed).toBe(false);
    expect(replies.map((r) => (r.ok ? 'ok' : (r.error as { code: string }).code))).toEqual([
      'bad-request',
      'bad-request',
      'bad-request',
      'ok',
    ]);
    expect((replies[0]!.error as { message: string }).message).toMatch(/not JSON/);
    expect((replies[2]!.error as { message: string }).message).toMatch(/participant/);
    expect(replies[3]).toEqual({ id: 8, ok: true, result: { conferences: [] } });
  });

  it('closes a connection that sends an over-long line, after saying why', async () => {
    const { replies, closed } = await exchange(['{"cmd":"list","pad":"' + 'x'.repeat(MAX_LINE_BYTES + 10)], 2);
    expect(closed).toBe(true);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect(await ctlRequest(sock, { cmd: 'list' })).toEqual({ conferences: [] }); // the daemon is fine
  });

  it('closes a connection that floods it with requests, after saying why', async () => {
    const line = '{"cmd":"list"}\n';
    const { replies, closed } = await exchange([line.repeat(200)], 500);
    expect(closed).toBe(true);
    expect(replies.length).toBeLessThan(200);
    expect(replies.some((r) => !r.ok && /more than 64 requests/.test((r.error as { message: string }).message))).toBe(true);
    expect(await ctlRequest(sock, { cmd: 'list' })).toEqual({ conferences: [] });
  });

  it('refuses with typed errors: wrong token, missing permission, unknown conference, undeclared conference', async () => {
    const code = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(CtlError);
        return `${(err as CtlError).code}: ${(err as Error).message}`;
      }
    };
    expect(await code(ctlRequest(sock, { cmd: 'start', conference: 'later', master: 'alice', token: 'bob-secret-1' }))).toBe(
      'unauthorised: wrong token for participant "alice"',
    );
    expect(await code(ctlRequest(sock, { cmd: 'start', conference: 'later', master: 'bob', token: 'bob-secret-1' }))).toBe(
      'unauthorised: participant "bob" may not start',
    );
    expect(await code(ctlRequest(sock, { cmd: 'start', conference: 'adhoc', master: 'alice', token: 'alice-secret' }))).toMatch(
      /^unauthorised: .*no runtime conferences/,
    );
    expect(await code(ctlRequest(sock, { cmd: 'join', conference: 'later', participant: 'bob', token: 'bob-secret-1' }))).toBe(
      'not-found: no conference "later" is running',
    );
    expect(await code(ctlRequest(sock, { cmd: 'launch', conference: 'later', token: 'x', argv: ['true'] }))).toBe(
      'not-found: no conference "later" is running',
    );
    expect(await ctlRequest(sock, { cmd: 'list' })).toEqual({ conferences: [] });
  });

  it('a second daemon on the same socket is refused', async () => {
    const config = parseConfig({ participants: [{ name: 'a', display: ':1' }], control: { socket: sock } });
    await expect(XconfServer.start(config)).rejects.toThrow(/already listens/);
    expect(await ctlRequest(sock, { cmd: 'list' })).toEqual({ conferences: [] });
  });
});
