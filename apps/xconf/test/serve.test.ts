// `tandem-xconf serve --config FILE` as a real process (run from the TypeScript sources with tsx).
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlRequest } from '../src/ctl-client.js';
import { CtlError, type ConferenceInfo } from '../src/ctl-protocol.js';
import { newCookie, writeXauthority } from '../src/launch-auth.js';
import { freeDisplays, kill, requireXTools, run, start, startXvfb, stopXvfb, waitFor, type Proc, type XvfbProc } from './x-harness.js';

const haveX = requireXTools('serve');
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
const nodeArgs = ['--conditions=@tandem/source', '--import', 'tsx', cli];

describe('tandem-xconf serve: configuration errors', () => {
  it('exits with status 2 and names the bad field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xconf-serve-bad-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(
        file,
        JSON.stringify({ participants: [{ name: 'alice', display: ':1', may: ['start', 'teleport'] }], conferences: [] }),
      );
      const r = await run(process.execPath, [...nodeArgs, 'serve', '--config', file], {}, 30_000);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/invalid tandem-xconf configuration/);
      expect(r.stderr).toMatch(/participants\[0\]\.may\[1\]:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tandem-xconf --busy-poll-us', () => {
  it('refuses a budget that is not a whole number of microseconds up to 1 s, before starting anything', async () => {
    for (const bad of ['-5', 'abc', '2.5', '2000000']) {
      const r = await run(process.execPath, [...nodeArgs, '--display', ':1', '--master', ':2', '--busy-poll-us', bad], {}, 30_000);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--busy-poll-us needs a whole number of microseconds from 0 to 1000000, got ${bad}`);
    }
  });
});

describe.skipIf(!haveX)('tandem-xconf serve --config with a real Xvfb', () => {
  let xvfb: XvfbProc | undefined;
  let guarded: XvfbProc | undefined;
  let daemon: Proc | undefined;
  let dir: string;
  let sock: string;
  const d = { master: '', conf: '', away: '', awayConf: '', guarded: '' };

  beforeAll(async () => {
    const [m, c, a, ac, g] = freeDisplays(5, 180);
    Object.assign(d, { master: `:${m}`, conf: `:${c}`, away: `:${a}`, awayConf: `:${ac}`, guarded: `:${g}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-serve-'));
    sock = join(dir, 'ctl', 'ctl.sock');
    xvfb = await startXvfb(m!, '320x240x24');
    // A participant's server that requires its MIT-MAGIC-COOKIE-1 (its own Xauthority file).
    const guardAuth = join(dir, 'guarded.xauth');
    writeXauthority(guardAuth, g!, newCookie());
    guarded = await startXvfb(g!, '320x240x24', ['-auth', guardAuth], { XAUTHORITY: guardAuth });
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        control: { socket: sock },
        participants: [
          { name: 'lead', display: d.master, token: 'lead-token', may: ['start', 'launch'] },
          { name: 'ghost', display: d.away, may: ['start'] }, // no server runs there
          { name: 'guest', display: d.guarded, xauthority: join(dir, 'guarded.xauth'), may: ['join'] },
          { name: 'gatecrasher', display: d.guarded, xauthority: join(dir, 'no-such.xauth'), may: ['join'] },
        ],
        conferences: [
          { name: 'team', display: d.conf, master: 'lead' },
          { name: 'nobody-home', display: d.awayConf, master: 'ghost' },
        ],
      }),
    );
    daemon = start(process.execPath, [...nodeArgs, 'serve', '--config', file]);
    await waitFor(
      'daemon ready',
      async () => {
        if (daemon!.child.exitCode !== null) throw new Error(`daemon exited: ${daemon!.output()}`);
        return daemon!.output().includes('tandem-xconf: ready');
      },
      30_000,
    );
  });

  afterAll(async () => {
    kill(daemon);
    await daemon?.exited;
    await stopXvfb(xvfb);
    await stopXvfb(guarded);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts the conferences it can; one whose master is away is logged, not fatal', async () => {
    expect(daemon!.output()).toMatch(/nobody-home.*could not start/);
    const { conferences } = (await ctlRequest(sock, { cmd: 'list' })) as { conferences: ConferenceInfo[] };
    expect(conferences.map((c) => `${c.name}@${c.display}`)).toEqual([`team@${d.conf}`]);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(conferences[0]!.xauthority!).mode & 0o777).toBe(0o600);
    const err = await ctlRequest(sock, { cmd: 'start', conference: 'nobody-home', master: 'ghost' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CtlError);
    expect((err as CtlError).code).toBe('failed');
    expect((err as Error).message).toMatch(/nobody-home" could not start: cannot connect to master ghost/);
  });

  it('connects to a participant’s server with the cookie from that participant’s Xauthority file', async () => {
    const refused = await ctlRequest(sock, { cmd: 'join', conference: 'team', participant: 'gatecrasher' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CtlError);
    expect((refused as CtlError).code).toBe('failed');
    expect((refused as Error).message).toMatch(/gatecrasher" could not join/);
    const joined = (await ctlRequest(sock, { cmd: 'join', conference: 'team', participant: 'guest' })) as ConferenceInfo;
    expect(joined.participants.map((p) => p.name)).toEqual(['lead', 'guest']);
  });

  it('serves applications launched through ctl, and cleans up on SIGTERM', async () => {
    const r = (await ctlRequest(sock, {
      cmd: 'launch',
      conference: 'team',
      token: 'lead-token',
      argv: ['xlogo', '-geometry', '50x50+5+5'],
    })) as { pid: number };
    try {
      await waitFor('xlogo on the master', async () => (await run('xwininfo', ['-name', 'xlogo'], { DISPLAY: d.master })).code === 0);
      const guardEnv = { DISPLAY: d.guarded, XAUTHORITY: join(dir, 'guarded.xauth') };
      await waitFor('xlogo on the guest’s guarded server', async () => (await run('xwininfo', ['-name', 'xlogo'], guardEnv)).code === 0);
    } finally {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    kill(daemon, 'SIGTERM');
    expect(await daemon!.exited).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect(existsSync(`/tmp/.X11-unix/X${d.conf.slice(1)}`)).toBe(false);
  });
});
