// End-to-end: real Xvfb servers, the daemon, and unmodified X clients (xlogo, xclock, xeyes, xdpyinfo, xterm).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '@tandem/xconference';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import {
  diffRegion,
  findWindows,
  freeDisplays,
  kill,
  requireXTools,
  run,
  screenshot,
  start,
  startXvfb,
  stopXvfb,
  textOf,
  typeInto,
  waitFor,
  type Proc,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('end-to-end');

describe.skipIf(!haveX)('tandem-xconf with three Xvfb servers and unmodified clients', () => {
  const procs: Proc[] = [];
  const servers: XvfbProc[] = [];
  let masterX: XvfbProc;
  let daemon: XconfDaemon;
  let dir: string;
  let typed: string;
  const d = { master: '', p1: '', p2: '', conf: '' };
  // Applications present the conference's cookie (required by default).
  const env = () => ({ DISPLAY: d.conf, XAUTHORITY: daemon.xauthorityPath! });
  const displays = () => [d.master, d.p1, d.p2];
  let onlyOnMaster: number;
  let onlyOnP1: number;

  beforeAll(async () => {
    const [m, a, b, c] = freeDisplays(4);
    Object.assign(d, { master: `:${m}`, p1: `:${a}`, p2: `:${b}`, conf: `:${c}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-e2e-'));
    typed = join(dir, 'typed.txt');
    masterX = await startXvfb(m!, '640x480x24');
    servers.push(masterX);
    // p1 lacks GLX, so its root window id differs from the master's (0x42 vs 0x50d on Xorg 21).
    servers.push(await startXvfb(a!, '640x480x24', ['-extension', 'GLX']));
    // p2 has depth 16 (5-6-5 TrueColor): depths and pixel values are translated; screenshots are compared decoded.
    servers.push(await startXvfb(b!, '640x480x16'));
    // Clients connected directly give each server different resource-id bases, and windows that exist on one server only.
    const direct1 = start('xclock', ['-geometry', '40x40+590+430'], { DISPLAY: d.master });
    const direct2 = start('xlogo', ['-geometry', '40x40+590+430'], { DISPLAY: d.p1 });
    procs.push(direct1, direct2);
    onlyOnMaster = (await waitFor('direct xclock on the master', async () => (await findWindows(d.master, 'xclock'))[0])).id;
    onlyOnP1 = (await waitFor('direct xlogo on p1', async () => (await findWindows(d.p1, 'xlogo'))[0])).id;
    daemon = await startXconf({
      display: d.conf,
      master: d.master,
      participants: [d.p1, d.p2],
      trigger: parseFocusTrigger('ctrl+alt+f'),
      tcp: true,
    });
    procs.push(
      start('xlogo', ['-geometry', '100x100+10+10'], env()),
      start('xclock', ['-geometry', '100x100+120+10'], env()),
      start('xeyes', ['-geometry', '100x100+230+10'], env()),
      start('xterm', ['-geometry', '40x8+10+150', '-e', 'sh', '-c', `cat > ${typed}`], env()),
    );
  });

  afterAll(async () => {
    await daemon?.close('test over').catch(() => {});
    for (const p of procs.reverse()) kill(p);
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the servers differ: another root window id on p1, depth 16 on p2', async () => {
    const info = async (disp: string) => (await run('xwininfo', ['-root'], { DISPLAY: disp })).stdout;
    const root = (text: string) => /Window id: (0x[0-9a-f]+)/.exec(text)?.[1];
    const depth = (text: string) => /Depth: (\d+)/.exec(text)?.[1];
    const [m, a, b] = await Promise.all(displays().map(info));
    expect(root(a!)).not.toBe(root(m!));
    expect(depth(m!)).toBe('24');
    expect(depth(b!)).toBe('16');
  });

  it('xdpyinfo works through the daemon: BIG-REQUESTS enabled, unsupported extensions hidden', async () => {
    const r = await run('xdpyinfo', [], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/maximum request size:\s+16777212 bytes/);
    expect(r.stdout).toMatch(/number of extensions:\s+1\s+BIG-REQUESTS/);
    // and over TCP (port 6000+n on 127.0.0.1)
    const tcp = await run('xdpyinfo', [], { ...env(), DISPLAY: `127.0.0.1${d.conf}` });
    expect(tcp.code).toBe(0);
    expect(tcp.stdout).toMatch(/name of display:\s+127\.0\.0\.1:/);
  });

  it('each application window exists on every server (xwininfo), under that server’s own ids', async () => {
    for (const name of ['xlogo', 'xclock', 'xeyes', 'xterm']) {
      const found = await waitFor(`${name} on all servers`, async () => {
        const all = await Promise.all(displays().map((disp) => findWindows(disp, name)));
        // the master and p1 also show directly-connected clients at +590+430
        const shared = all.map((ws) => ws.find((w) => w.x < 500));
        return shared.every(Boolean) ? (shared as Array<{ id: number; x: number; y: number }>) : null;
      });
      expect(new Set(found.map((w) => `${w.x},${w.y}`)).size).toBe(1);
      if (name === 'xlogo') expect(new Set(found.map((w) => w.id)).size).toBeGreaterThan(1);
    }
  });

  it('its pixels are identical on every server (decoded xwd screenshots)', async () => {
    const regions = await Promise.all(
      ['xlogo', 'xclock', 'xeyes', 'xterm'].map(async (n) => (await findWindows(d.master, n)).find((w) => w.x < 500)!),
    );
    // xclock may tick between screenshots: retry a few times before judging.
    let report = '';
    for (let attempt = 0; attempt < 4; attempt++) {
      await new Promise((r) => setTimeout(r, 300));
      const shots = await Promise.all(displays().map((disp) => screenshot(disp)));
      report = '';
      for (const r of regions) {
        for (const other of [1, 2]) {
          const diff = diffRegion(shots[0]!, shots[other]!, r);
          if (diff.differing) report += `${displays()[other]} @${r.x},${r.y}: ${diff.differing} px differ, first ${diff.first}\n`;
        }
      }
      if (!report) break;
    }
    expect(report).toBe('');
    const shot = await screenshot(d.master);
    const logo = regions[0]!;
    const colours = new Set<number>();
    for (let y = logo.y; y < logo.y + logo.height; y += 3)
      for (let x = logo.x; x < logo.x + logo.width; x += 3) colours.add(shot.pixel(x, y));
    expect(colours.size).toBeGreaterThan(1); // something was drawn
  });

  const xterm = async (disp: string) => (await findWindows(disp, 'xterm')).find((w) => w.x < 500)!;
  const typeOn = async (disp: string, text: string): Promise<void> => typeInto(disp, await xterm(disp), text);
  const file = (): string => textOf(typed);

  it('keys on a non-focus display do not reach the application; on the focus display they do', async () => {
    await typeOn(d.p1, 'nope');
    await typeOn(d.p2, 'nada');
    await typeOn(d.master, 'yes');
    await waitFor('typed text', async () => file().includes('yes'));
    expect(file()).toBe('yes\n');
  });

  it('the focus-switch chord on a participant moves the input focus there', async () => {
    const w = await xterm(d.p1);
    await run('xdotool', ['mousemove', String(w.x + 20), String(w.y + 20)], { DISPLAY: d.p1 });
    await run('xdotool', ['key', 'ctrl+alt+f'], { DISPLAY: d.p1 });
    await waitFor('focus on p1', async () => daemon.conference.applications.some((a) => a.focusName === d.p1));
    await typeOn(d.master, 'old');
    await typeOn(d.p1, 'new');
    await waitFor('typed text from p1', async () => file().includes('new'));
    expect(file()).toBe('yes\nnew\n');
  });

  it('errors reach the application only from the master', async () => {
    const before = daemon.conference.totals.droppedErrors;
    // A window that exists only on the master: ChangeProperty fails on the participants; the client sees no error.
    const lacking = await Promise.all(
      [d.p1, d.p2].map(async (disp) => (await run('xwininfo', ['-id', String(onlyOnMaster)], { DISPLAY: disp })).code !== 0),
    );
    expect(lacking).toContain(true);
    const ok = await run('xprop', ['-id', String(onlyOnMaster), '-f', 'TANDEM_TEST', '8s', '-set', 'TANDEM_TEST', 'hello'], env());
    expect(ok.stderr).not.toMatch(/BadWindow/);
    expect(ok.code).toBe(0);
    expect((await run('xprop', ['-id', String(onlyOnMaster), 'TANDEM_TEST'], { DISPLAY: d.master })).stdout).toMatch(/hello/);
    expect(daemon.conference.totals.droppedErrors).toBeGreaterThan(before);
    // A window that exists only on p1: the master's BadWindow reaches the client.
    expect((await run('xwininfo', ['-id', String(onlyOnP1)], { DISPLAY: d.master })).code).not.toBe(0);
    const bad = await run('xprop', ['-id', String(onlyOnP1), '-f', 'TANDEM_TEST', '8s', '-set', 'TANDEM_TEST', 'hello'], env());
    expect(bad.stderr).toMatch(/BadWindow/);
  });

  it('garbage on the display socket closes that connection only; the daemon keeps serving', async () => {
    const { connect } = await import('node:net');
    const sock = connect(`/tmp/.X11-unix/X${d.conf.slice(1)}`);
    sock.on('error', () => {});
    sock.write('GET / HTTP/1.1\r\n\r\n');
    await new Promise<void>((res) => sock.once('close', () => res()));
    expect((await run('xdpyinfo', [], env())).code).toBe(0);
  });

  it('the master leaving closes the application’s connection and the conference', async () => {
    const app = start('xlogo', ['-geometry', '50x50+400+300'], env());
    procs.push(app);
    await waitFor('xlogo on p2', async () => (await findWindows(d.p2, 'xlogo')).find((w) => w.x === 400));
    await stopXvfb(masterX);
    const code = await Promise.race([app.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
    expect(code).not.toBe('still running');
    expect(await daemon.closed).toMatch(/master/);
  });
});

describe.skipIf(!haveX)('tandem-xconf with a server that requires an MIT-MAGIC-COOKIE-1', () => {
  let xvfb: XvfbProc | undefined;
  let daemon: XconfDaemon | undefined;
  let dir: string;
  afterAll(async () => {
    await daemon?.close('test over').catch(() => {});
    await stopXvfb(xvfb);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the cookie from the Xauthority file and connects', async () => {
    const [n, conf] = freeDisplays(2, 120);
    dir = mkdtempSync(join(tmpdir(), 'xconf-auth-'));
    const file = join(dir, 'Xauthority');
    const cookie = randomBytes(16);
    const field = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from([1, 0]),
        field(Buffer.from(hostname())),
        field(Buffer.from(String(n))),
        field(Buffer.from('MIT-MAGIC-COOKIE-1')),
        field(cookie),
      ]),
    );
    xvfb = await startXvfb(n!, '320x240x24', ['-auth', file], { XAUTHORITY: file });
    expect((await run('xdpyinfo', [], { DISPLAY: `:${n}`, XAUTHORITY: join(dir, 'none') })).code).not.toBe(0); // no cookie, no entry
    daemon = await startXconf({
      display: `:${conf}`,
      master: `:${n}`,
      participants: [],
      trigger: parseFocusTrigger('none'),
      xauthority: file,
    });
    const r = await run('xdpyinfo', [], { DISPLAY: `:${conf}`, XAUTHORITY: daemon.xauthorityPath! });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/320x240 pixels/);
  });
});
