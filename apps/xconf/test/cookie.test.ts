// Applications need the conference's cookie in every mode — the command line, conferences of a configuration
// file, conferences started at run time, the startXconf library call — unless it is turned off explicitly
// (--no-cookie / requireCookie: false), which prints a warning. An application without it gets the X refusal
// and nothing changes for anyone else. The daemon's own sockets bind where they should. Real Xvfb servers,
// real X clients (xdpyinfo, xlogo, xterm), the daemon as a real process (tsx) and in-process.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '@tandem/xconference';
import { parseConfig } from '../src/config.js';
import { ctlRequest } from '../src/ctl-client.js';
import type { ConferenceInfo } from '../src/ctl-protocol.js';
import { prepareCtlDirectory } from '../src/ctl-server.js';
import { startXconf, XconfServer, type XconfDaemon } from '../src/daemon.js';
import { noCookieWarning } from '../src/hosted-conference.js';
import { encodeXauthority, writeXauthority } from '../src/launch-auth.js';
import { abstractSocketListening, abstractXSocketName, prepareX11SocketDirectory } from '../src/unix-socket.js';
import {
  findWindows,
  freeDisplays,
  kill,
  requireXTools,
  run,
  start,
  startXvfb,
  stopXvfb,
  textOf,
  typeInto,
  waitFor,
  type Proc,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('cookie');
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
const nodeArgs = ['--conditions=@tandem/source', '--import', 'tsx', cli];
const isRoot = process.getuid?.() === 0;

/** Starts `tandem-xconf ARGS` as a process and waits for its ready line. */
async function startDaemon(args: string[]): Promise<Proc> {
  const p = start(process.execPath, [...nodeArgs, ...args]);
  await waitFor(
    'tandem-xconf ready',
    async () => {
      if (p.child.exitCode !== null) throw new Error(`tandem-xconf exited: ${p.output()}`);
      return p.output().includes('tandem-xconf: ready');
    },
    30_000,
  );
  return p;
}

/** Stops a daemon started by this test, by its pid. */
async function stopDaemon(p: Proc | undefined): Promise<void> {
  if (!p) return;
  kill(p, 'SIGTERM');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))]);
  kill(p);
}

/** The listening TCP sockets on `port` from /proc/net/tcp and tcp6: their local addresses (hex, as the kernel writes them). */
function tcpListeners(port: number): string[] {
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // LISTEN
      const [addr, hexPort] = f[1]!.split(':');
      if (parseInt(hexPort!, 16) === port) out.push(addr!);
    }
  }
  return out;
}

describe('tandem-xconf command line: cookie options', () => {
  it('help says the cookie is the default, what --no-cookie allows, and that --require-cookie does nothing', async () => {
    const r = await run(process.execPath, [...nodeArgs, '--help'], {}, 30_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[--no-cookie]');
    expect(r.stdout).toMatch(/Applications must present the conference's MIT-MAGIC-COOKIE-1/);
    expect(r.stdout).toMatch(/--no-cookie admits every application that can connect, without a cookie/);
    expect(r.stdout).toMatch(/--require-cookie is accepted and does nothing/);
  });

  it('refuses --no-cookie with --require-cookie, and both with serve (set per conference there)', async () => {
    const both = await run(
      process.execPath,
      [...nodeArgs, '--display', ':1', '--master', ':2', '--no-cookie', '--require-cookie'],
      {},
      30_000,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--no-cookie and --require-cookie contradict each other');
    const serve = await run(process.execPath, [...nodeArgs, 'serve', '--config', '/nonexistent.json', '--no-cookie'], {}, 30_000);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toMatch(/--no-cookie is for the command-line conference; with serve --config, set "requireCookie" per conference/);
  });
});

describe('the daemon’s files and directories', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xconf-files-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the ctl directory: created 0700; an existing one open to others is refused and left as it was', () => {
    const fresh = join(dir, 'fresh', 'run');
    prepareCtlDirectory(fresh);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777); // like /tmp: `--socket /tmp/ctl.sock` must not make /tmp private
    expect(() => prepareCtlDirectory(shared)).toThrow(/is open to other users \(mode 1777\).*chmod 700 it, or choose another --socket/);
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
    chmodSync(shared, 0o755);
    expect(() => prepareCtlDirectory(shared)).toThrow(/open to other users \(mode 755\)/);
    expect(statSync(shared).mode & 0o777).toBe(0o755);
  });

  it('the X socket directory: created 1777; a symlink or a world-writable one without the sticky bit is refused', () => {
    const uid = process.getuid!();
    const created = join(dir, 'x11-created');
    prepareX11SocketDirectory(created, uid);
    expect(statSync(created).mode & 0o7777).toBe(0o1777);
    prepareX11SocketDirectory(created, uid); // an existing good one is fine
    const target = join(dir, 'x11-target');
    mkdirSync(target);
    const link = join(dir, 'x11-link');
    symlinkSync(target, link);
    expect(() => prepareX11SocketDirectory(link, uid)).toThrow(/is not a directory/);
    const open = join(dir, 'x11-open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => prepareX11SocketDirectory(open, uid)).toThrow(/writable by others without the sticky bit \(mode 777\)/);
  });

  it.skipIf(!isRoot)('the X socket directory owned by another (non-root) user is refused', () => {
    const others = join(dir, 'x11-owned');
    mkdirSync(others);
    chmodSync(others, 0o1777);
    chownSync(others, 4321, 4321);
    expect(() => prepareX11SocketDirectory(others, 1000)).toThrow(/belongs to uid 4321, neither root nor this user \(1000\)/);
    expect(() => prepareX11SocketDirectory(others, 4321)).not.toThrow();
  });

  it('finds a listener on an abstract unix socket name in /proc/net/unix (exact name, listening only)', () => {
    const table = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000080ef5d65: 00000002 00000000 00010000 0001 01 62546 @/tmp/.X11-unix/X253',
      '00000000f3f6c01e: 00000002 00000000 00010000 0001 01 62547 /tmp/.X11-unix/X254',
      '00000000f3f6c01f: 00000003 00000000 00000000 0001 03 62548 @/tmp/.X11-unix/X255',
      '00000000f3f6c020: 00000002 00000000 00010000 0001 01 62549 @/tmp/.X11-unix/X256@@@@',
    ].join('\n');
    expect(abstractXSocketName(253)).toBe('@/tmp/.X11-unix/X253');
    expect(abstractSocketListening('@/tmp/.X11-unix/X253', table)).toBe(true);
    expect(abstractSocketListening('@/tmp/.X11-unix/X25', table)).toBe(false);
    expect(abstractSocketListening('@/tmp/.X11-unix/X254', table)).toBe(false); // a file path, not abstract
    expect(abstractSocketListening('@/tmp/.X11-unix/X255', table)).toBe(false); // connected, not listening
    expect(abstractSocketListening('@/tmp/.X11-unix/X256', table)).toBe(false); // another (padded) name
  });

  it('the conference’s Xauthority file is always created anew with mode 0600, never through a symlink', () => {
    const file = join(dir, 'conf.xauth');
    writeFileSync(file, 'old', { mode: 0o644 });
    chmodSync(file, 0o644);
    writeXauthority(file, 42, randomBytes(16));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const linked = join(dir, 'linked.xauth');
    symlinkSync(victim, linked);
    writeXauthority(linked, 42, randomBytes(16));
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(linked).isSymbolicLink()).toBe(false);
  });

  it('the warning without a cookie says who can connect and what they can do', () => {
    const w = noCookieWarning({
      name: 'default',
      display: ':95',
      socketPath: '/tmp/.X11-unix/X95',
      tcpPort: 6095,
      participants: [':91', 'bob:0'],
      user: { uid: 1000, username: 'alice' },
    });
    expect(w).toMatch(
      /^tandem-xconf: WARNING: conference "default" on :95 admits X applications WITHOUT a cookie \(--no-cookie \/ requireCookie: false\)/,
    );
    expect(w).toContain(
      'Every process running as user "alice" (uid 1000) or root can connect to /tmp/.X11-unix/X95, and every local process of any user to 127.0.0.1:6095',
    );
    expect(w).toContain("can open windows on every participant's display (:91, bob:0) and read that display's input");
    expect(w).toMatch(/keys and clicks of whoever has the input focus, its selections and its screen contents/);
    expect(
      noCookieWarning({
        name: 'c',
        display: ':9',
        socketPath: '/tmp/.X11-unix/X9',
        tcpPort: null,
        participants: [':1'],
        user: { uid: 0, username: 'root' },
      }),
    ).toContain('Every process running as root can connect to /tmp/.X11-unix/X9; any of them');
  });
});

describe.skipIf(!haveX)('tandem-xconf command line (a real process): applications need the cookie by default', () => {
  const servers: XvfbProc[] = [];
  const pids: number[] = [];
  let daemon: Proc | undefined;
  let other: Proc | undefined;
  let dir: string;
  let sock: string;
  let typed: string;
  let cookieFile = '';
  const d = { master: '', p1: '', conf: '', conf2: '', conf3: '' };
  const list = async (): Promise<ConferenceInfo[]> =>
    ((await ctlRequest(sock, { cmd: 'list' })) as { conferences: ConferenceInfo[] }).conferences;
  /** `tandem-xconf ctl --socket SOCK launch default -- ARGV` as a process; returns the launched pid. */
  const launch = async (argv: string[]): Promise<number> => {
    const r = await run(process.execPath, [...nodeArgs, 'ctl', '--socket', sock, 'launch', 'default', '--', ...argv], {}, 30_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pid = Number(/^pid (\d+) on :\d+/.exec(r.stdout)?.[1]);
    pids.push(pid);
    return pid;
  };
  const noCookie = () => ({ XAUTHORITY: join(dir, 'no-such-file') });

  beforeAll(async () => {
    const [m, p, c, c2, c3] = freeDisplays(5, 240);
    Object.assign(d, { master: `:${m}`, p1: `:${p}`, conf: `:${c}`, conf2: `:${c2}`, conf3: `:${c3}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-cookie-cli-'));
    sock = join(dir, 'ctl', 'ctl.sock');
    typed = join(dir, 'typed.txt');
    servers.push(await startXvfb(m!, '400x300x24'), await startXvfb(p!, '400x300x24'));
    // no cookie option at all: the default
    daemon = await startDaemon(['--display', d.conf, '--master', d.master, '--participant', d.p1, '--socket', sock]);
  }, 60_000);

  afterAll(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await stopDaemon(daemon);
    await stopDaemon(other);
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says where the cookie is; the cookie file and the display socket are the daemon user’s only', async () => {
    const ready =
      /tandem-xconf: ready on (:\d+); applications need the cookie in (\S+) \(`tandem-xconf ctl --socket (\S+) launch default -- CMD`, or XAUTHORITY=\S+ DISPLAY=:\d+ CMD\)/.exec(
        daemon!.output(),
      );
    expect(ready, daemon!.output()).not.toBeNull();
    expect(ready![1]).toBe(d.conf);
    expect(ready![3]).toBe(sock);
    cookieFile = ready![2]!;
    expect(cookieFile).toBe(join(dir, 'ctl', `default-${d.conf.slice(1)}.xauth`));
    expect(statSync(cookieFile).mode & 0o777).toBe(0o600);
    expect(statSync(`/tmp/.X11-unix/X${d.conf.slice(1)}`).mode & 0o777).toBe(0o600);
    const [info] = await list();
    expect(info).toMatchObject({ name: 'default', requireCookie: true, xauthority: cookieFile });
  });

  it('an application launched with `tandem-xconf ctl launch` works on every participant’s display', async () => {
    await launch(['xterm', '-geometry', '40x6+10+10', '-e', 'sh', '-c', `cat > ${typed}`]);
    const w = await waitFor('xterm on the master and p1', async () => {
      const [a, b] = await Promise.all([findWindows(d.master, 'xterm'), findWindows(d.p1, 'xterm')]);
      return a.length === 1 && b.length === 1 && existsSync(typed) ? a[0] : null;
    });
    for (let attempt = 0; attempt < 3 && !textOf(typed).includes('before'); attempt++) {
      await typeInto(d.master, w, 'before');
      await waitFor('typed text', async () => textOf(typed).includes('before'), 5000).catch(() => {});
    }
    expect(textOf(typed)).toBe('before\n');
  });

  it('applications without the cookie or with a wrong one get the X refusal and are closed; nothing changes for anyone else', async () => {
    const before = await list();
    expect(before[0]!.applications).toHaveLength(1);
    const none = await run('xdpyinfo', [], { DISPLAY: d.conf, ...noCookie() });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/unable to open display/);
    expect(none.stderr).toMatch(/tandem-xconf: authorization required \(launch with `tandem-xconf ctl launch`\)/);
    const wrongFile = join(dir, 'wrong.xauth');
    writeFileSync(wrongFile, encodeXauthority(Number(d.conf.slice(1)), randomBytes(16)));
    const wrong = await run('xdpyinfo', [], { DISPLAY: d.conf, XAUTHORITY: wrongFile });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/tandem-xconf: authorization MIT-MAGIC-COOKIE-1 rejected \(not this conference's cookie\)/);
    const logo = await run('xlogo', ['-geometry', '50x50+200+10'], { DISPLAY: d.conf, ...noCookie() });
    expect(logo.code).not.toBe(0);
    expect(logo.stderr).toMatch(/authorization required/);
    expect(daemon!.output().match(/\[default\] application refused/g)).toHaveLength(3);
    // The conference is as it was: the same participants and applications, nothing on anyone's display.
    expect(await list()).toEqual(before);
    expect(await findWindows(d.master, 'xlogo')).toHaveLength(0);
    expect(await findWindows(d.p1, 'xlogo')).toHaveLength(0);
    // The running application still takes the focus participant's input.
    await typeInto(d.master, (await findWindows(d.master, 'xterm'))[0]!, 'after');
    await waitFor('text typed after the refusals', async () => textOf(typed).includes('after'));
    expect(textOf(typed)).toBe('before\nafter\n');
    // The refused connections never became applications: the next one launched gets the next id.
    await launch(['xlogo', '-geometry', '50x50+200+10']);
    await waitFor(
      'launched xlogo on the master and p1',
      async () => (await findWindows(d.master, 'xlogo')).length === 1 && (await findWindows(d.p1, 'xlogo')).length === 1,
    );
    const ids = (await list())[0]!.applications.map((a) => a.id);
    expect(ids).toEqual([...before[0]!.applications.map((a) => a.id), before[0]!.applications[0]!.id + 1]);
    // With the cookie file, any X client works (e.g. not launched through ctl).
    const ok = await run('xdpyinfo', [], { DISPLAY: d.conf, XAUTHORITY: cookieFile });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/400x300 pixels/);
  });

  it('--require-cookie is still accepted and changes nothing (the cookie is the default)', async () => {
    other = await startDaemon(['--display', d.conf2, '--master', d.master, '--require-cookie', '--socket', join(dir, 'ctl2', 'ctl.sock')]);
    const file = /applications need the cookie in (\S+) /.exec(other.output())?.[1];
    expect(file).toBe(join(dir, 'ctl2', `default-${d.conf2.slice(1)}.xauth`));
    const none = await run('xdpyinfo', [], { DISPLAY: d.conf2, ...noCookie() });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/tandem-xconf: authorization required/);
    expect((await run('xdpyinfo', [], { DISPLAY: d.conf2, XAUTHORITY: file! })).code).toBe(0);
    await stopDaemon(other);
    other = undefined;
  });

  it('--no-cookie admits applications without one, and warns even with --quiet: who can connect, what they can do', async () => {
    other = await startDaemon([
      '--display',
      d.conf3,
      '--master',
      d.master,
      '--participant',
      d.p1,
      '--no-cookie',
      '--tcp',
      '--quiet',
      '--socket',
      join(dir, 'ctl3', 'ctl.sock'),
    ]);
    const out = other.output();
    expect(out).toContain(`tandem-xconf: ready on ${d.conf3}; applications need no cookie (--no-cookie)`);
    expect(out).toContain(`tandem-xconf: WARNING: conference "default" on ${d.conf3} admits X applications WITHOUT a cookie`);
    expect(out).toContain(
      `can connect to /tmp/.X11-unix/X${d.conf3.slice(1)}, and every local process of any user to 127.0.0.1:${6000 + Number(d.conf3.slice(1))}`,
    );
    expect(out).toContain(`can open windows on every participant's display (${d.master}, ${d.p1}) and read that display's input`);
    expect(out).not.toMatch(/→ master/); // --quiet hides the ordinary log, not the warning
    const r = await run('xdpyinfo', [], { DISPLAY: d.conf3, ...noCookie() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/400x300 pixels/);
    expect((await run('xdpyinfo', [], { DISPLAY: `127.0.0.1${d.conf3}`, ...noCookie() })).code).toBe(0);
    await stopDaemon(other);
    other = undefined;
  });
});

describe.skipIf(!haveX)('configuration-file and library conferences: cookie by default, warning without; the sockets', () => {
  const servers: XvfbProc[] = [];
  const warnings: string[] = [];
  let server: XconfServer | undefined;
  let lib: XconfDaemon | undefined;
  let dir: string;
  let sock: string;
  const d = { master: '', p1: '', closed: '', open: '', runtime: '', lib: '' };
  const noCookie = () => ({ XAUTHORITY: join(dir, 'no-such-file') });

  beforeAll(async () => {
    const [m, p, c1, c2, c3, c4] = freeDisplays(6, 260);
    Object.assign(d, { master: `:${m}`, p1: `:${p}`, closed: `:${c1}`, open: `:${c2}`, runtime: `:${c3}`, lib: `:${c4}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-cookie-cfg-'));
    sock = join(dir, 'run', 'ctl.sock');
    servers.push(await startXvfb(m!, '320x240x24'), await startXvfb(p!, '320x240x24'));
    const config = parseConfig({
      control: { socket: sock },
      participants: [
        { name: 'lead', display: d.master, may: ['start', 'join', 'launch'] },
        { name: 'guest', display: d.p1, may: ['join'] },
      ],
      conferences: [
        { name: 'closed', display: d.closed, master: 'lead', participants: ['guest'], tcp: true },
        { name: 'open', display: d.open, master: 'lead', participants: ['guest'], requireCookie: false, tcp: true },
      ],
      runtimeDisplays: { from: c3!, to: c3! },
      runtime: { requireCookie: false },
    });
    server = await XconfServer.start(config, { warn: (l) => warnings.push(l) });
  }, 60_000);

  afterAll(async () => {
    await lib?.close('test over').catch(() => {});
    await server?.close('test over').catch(() => {});
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a declared conference requires the cookie by default; one with requireCookie: false admits anyone and warns', async () => {
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`conference "open" on ${d.open} admits X applications WITHOUT a cookie`);
    expect(warnings[0]).toContain(`every participant's display (${d.master}, ${d.p1})`);
    const refused = await run('xdpyinfo', [], { DISPLAY: d.closed, ...noCookie() });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/tandem-xconf: authorization required/);
    const overTcp = await run('xdpyinfo', [], { DISPLAY: `127.0.0.1${d.closed}`, ...noCookie() });
    expect(overTcp.code).not.toBe(0);
    expect(overTcp.stderr).toMatch(/tandem-xconf: authorization required/);
    const closed = server!.conferences.get('closed')!;
    expect(closed.conference.applications).toHaveLength(0);
    expect((await run('xdpyinfo', [], { DISPLAY: d.closed, XAUTHORITY: closed.xauthorityPath! })).code).toBe(0);
    expect((await run('xdpyinfo', [], { DISPLAY: d.open, ...noCookie() })).code).toBe(0);
  });

  it('a conference started at run time follows runtime.requireCookie, and warns when it is false', async () => {
    const started = (await ctlRequest(sock, { cmd: 'start', conference: 'adhoc', master: 'lead' })) as ConferenceInfo;
    expect(started).toMatchObject({ display: d.runtime, requireCookie: false, xauthority: null });
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain(`conference "adhoc" on ${d.runtime} admits X applications WITHOUT a cookie`);
    expect((await run('xdpyinfo', [], { DISPLAY: d.runtime, ...noCookie() })).code).toBe(0);
  });

  it('startXconf (the library call) requires the cookie unless told otherwise', async () => {
    lib = await startXconf({
      display: d.lib,
      master: d.master,
      participants: [],
      trigger: parseFocusTrigger('none'),
      warn: (l) => warnings.push(l),
    });
    expect(lib.xauthorityPath).toMatch(new RegExp(`default-${d.lib.slice(1)}\\.xauth$`));
    const refused = await run('xdpyinfo', [], { DISPLAY: d.lib, ...noCookie() });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/tandem-xconf: authorization required/);
    expect(lib.conference.applications).toHaveLength(0);
    expect(lib.conference.isClosed).toBe(false);
    expect((await run('xdpyinfo', [], { DISPLAY: d.lib, XAUTHORITY: lib.xauthorityPath! })).code).toBe(0);
    expect(warnings).toHaveLength(2); // no new warning
    await lib.close('test over');
    expect(existsSync(lib.xauthorityPath!)).toBe(false);
    lib = undefined;
  });

  it('display sockets admit only the daemon’s user (mode 0600); TCP listens on 127.0.0.1 only', () => {
    for (const disp of [d.closed, d.open, d.runtime]) expect(statSync(`/tmp/.X11-unix/X${disp.slice(1)}`).mode & 0o777).toBe(0o600);
    for (const disp of [d.closed, d.open]) expect(tcpListeners(6000 + Number(disp.slice(1)))).toEqual(['0100007F']);
    expect(tcpListeners(6000 + Number(d.runtime.slice(1)))).toEqual([]); // runtime.tcp is false
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
  });

  it('refuses a display whose abstract socket another process holds (X clients would connect there first)', async () => {
    const [n] = freeDisplays(1, 280);
    const squatter = await startXvfb(n!, '320x240x24');
    try {
      // An X server whose socket file and lock were removed (e.g. by a /tmp cleaner) still holds the abstract name.
      rmSync(`/tmp/.X${n}-lock`, { force: true });
      rmSync(`/tmp/.X11-unix/X${n}`, { force: true });
      expect(abstractSocketListening(abstractXSocketName(n!))).toBe(true);
      // Why it matters: an application given DISPLAY=:n reaches that process, not the daemon.
      expect((await run('xdpyinfo', [], { DISPLAY: `:${n}` })).stdout).toMatch(/320x240 pixels/);
      await expect(
        startXconf({ display: `:${n}`, master: d.master, participants: [], trigger: parseFocusTrigger('none') }),
      ).rejects.toThrow(new RegExp(`display :${n} is in use: a process listens on the abstract socket @/tmp/\\.X11-unix/X${n}`));
      expect(existsSync(`/tmp/.X11-unix/X${n}`)).toBe(false);
    } finally {
      await stopXvfb(squatter);
    }
  });

  it('does not write its lock file through a symlink planted in its place', async () => {
    const [n] = freeDisplays(1, 285);
    const lock = `/tmp/.X${n}-lock`;
    const target = join(dir, 'planted-target');
    symlinkSync(target, lock); // dangling: the old code created `target` with the daemon's pid
    try {
      await expect(
        startXconf({ display: `:${n}`, master: d.master, participants: [], trigger: parseFocusTrigger('none') }),
      ).rejects.toThrow(/is not a regular file \(a symlink\?\)/);
      expect(existsSync(target)).toBe(false);
      expect(lstatSync(lock).isSymbolicLink()).toBe(true);
    } finally {
      rmSync(lock, { force: true });
    }
  });
});
