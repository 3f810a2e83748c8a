// Several conferences in one daemon, driven through `tandem-xconf ctl` over the real unix socket, with real
// Xvfb servers and unmodified clients: access control, launch cookies, focus by ctl, join and leave.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ctlRequest } from '../src/ctl-client.js';
import { CtlError, type ConferenceInfo, type CtlRequest } from '../src/ctl-protocol.js';
import { XconfServer } from '../src/daemon.js';
import { encodeXauthority } from '../src/launch-auth.js';
import {
  findWindows,
  freeDisplays,
  requireXTools,
  run,
  startXvfb,
  stopXvfb,
  textOf,
  typeInto,
  waitFor,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('ctl');

const TOKENS = { alice: 'alice-token', bob: 'bob-token-1', carol: 'carol-token', dave: 'dave-token' };

describe.skipIf(!haveX)('tandem-xconf: two conferences in one daemon, controlled with ctl', () => {
  const servers: XvfbProc[] = [];
  const pids: number[] = [];
  let daemon: XconfServer;
  let dir: string;
  let sock: string;
  let typed: string;
  const d = { m1: '', p1: '', m2: '', p2: '', helpdesk: '', design: '' };

  const ctl = (req: CtlRequest): Promise<unknown> => ctlRequest(sock, req);
  const refusal = async (req: CtlRequest): Promise<string> => {
    try {
      await ctl(req);
      return 'accepted';
    } catch (err) {
      expect(err).toBeInstanceOf(CtlError);
      return `${(err as CtlError).code}: ${(err as Error).message}`;
    }
  };
  const list = async (): Promise<ConferenceInfo[]> => ((await ctl({ cmd: 'list' })) as { conferences: ConferenceInfo[] }).conferences;
  const summary = async (): Promise<string[]> =>
    (await list()).map((c) => `${c.name}@${c.display}: ${c.participants.map((p) => p.name).join(',')}`);
  const launch = async (conference: string, token: string, argv: string[]): Promise<number> => {
    const r = (await ctl({ cmd: 'launch', conference, token, argv })) as { pid: number };
    pids.push(r.pid);
    return r.pid;
  };
  const logoAt = async (display: string, x: number): Promise<boolean> => (await findWindows(display, 'xlogo')).some((w) => w.x === x);

  beforeAll(async () => {
    const [m1, p1, m2, p2, cA, cB] = freeDisplays(6, 160);
    Object.assign(d, { m1: `:${m1}`, p1: `:${p1}`, m2: `:${m2}`, p2: `:${p2}`, helpdesk: `:${cA}`, design: `:${cB}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-ctl-x-'));
    sock = join(dir, 'run', 'ctl.sock');
    typed = join(dir, 'typed.txt');
    for (const n of [m1, p1, m2, p2]) servers.push(await startXvfb(n!, '400x300x24'));
    const config = parseConfig({
      control: { socket: sock },
      participants: [
        { name: 'alice', display: d.m1, token: TOKENS.alice, may: ['start', 'join', 'launch'] },
        { name: 'bob', display: d.p1, token: TOKENS.bob, may: ['join', 'launch'] },
        { name: 'carol', display: d.m2, token: TOKENS.carol, may: ['start', 'launch'] },
        { name: 'dave', display: d.p2, token: TOKENS.dave, may: ['join'] },
      ],
      // The help desk: declared, started with the daemon; the focus moves only by ctl.
      conferences: [{ name: 'helpdesk', display: d.helpdesk, master: 'alice', participants: ['bob'], focusTrigger: 'none' }],
      // The design team's conference is started at run time, on the one display allowed for that.
      runtimeDisplays: { from: cB, to: cB },
      runtime: { focusTrigger: 'button' },
    });
    daemon = await XconfServer.start(config);
  });

  afterAll(async () => {
    await daemon?.close('test over').catch(() => {});
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a conference start with a wrong token is refused; with the master’s token it starts', async () => {
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice,bob`]);
    expect(await refusal({ cmd: 'start', conference: 'design', master: 'carol', token: TOKENS.dave })).toBe(
      'unauthorised: wrong token for participant "carol"',
    );
    expect(await refusal({ cmd: 'start', conference: 'design', master: 'dave', token: TOKENS.dave })).toBe(
      'unauthorised: participant "dave" may not start',
    );
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice,bob`]);
    const started = (await ctl({ cmd: 'start', conference: 'design', master: 'carol', token: TOKENS.carol })) as ConferenceInfo;
    expect(started).toMatchObject({ name: 'design', display: d.design, master: 'carol', focusTrigger: 'button', requireCookie: true });
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice,bob`, `design@${d.design}: carol`]);
  });

  it('an application launched into each conference appears on its own conference’s servers only', async () => {
    await launch('helpdesk', TOKENS.alice, ['xlogo', '-geometry', '80x80+10+10']);
    await launch('design', TOKENS.carol, ['xlogo', '-geometry', '80x80+200+10']);
    await waitFor('helpdesk xlogo on alice and bob', async () => (await logoAt(d.m1, 10)) && (await logoAt(d.p1, 10)));
    await waitFor('design xlogo on carol', async () => logoAt(d.m2, 200));
    expect(await findWindows(d.m2, 'xlogo')).toHaveLength(1);
    expect(await logoAt(d.m1, 200)).toBe(false);
    expect(await logoAt(d.p1, 200)).toBe(false);
    expect(await findWindows(d.p2, 'xlogo')).toHaveLength(0); // dave has joined nothing yet
    const confs = await list();
    expect(confs.map((c) => c.applications.length)).toEqual([1, 1]);
    expect(confs[0]!.applications[0]).toMatchObject({ focus: 'alice', participants: ['alice', 'bob'] });
  });

  it('an application without the conference’s cookie is refused; with it, it connects', async () => {
    const none = await run('xdpyinfo', [], { DISPLAY: d.helpdesk, XAUTHORITY: join(dir, 'no-such-file') });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/tandem-xconf: authorization required/);
    const wrongFile = join(dir, 'wrong.xauth');
    writeFileSync(wrongFile, encodeXauthority(Number(d.helpdesk.slice(1)), randomBytes(16)));
    const wrong = await run('xdpyinfo', [], { DISPLAY: d.helpdesk, XAUTHORITY: wrongFile });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/rejected/);
    // a launch with someone else's token is refused too, and launches nothing
    expect(await refusal({ cmd: 'launch', conference: 'helpdesk', token: TOKENS.carol, argv: ['xlogo'] })).toBe(
      'unauthorised: participant "carol" is not in conference "helpdesk"',
    );
    expect(await refusal({ cmd: 'launch', conference: 'helpdesk', token: 'not-a-token', argv: ['xlogo'] })).toMatch(
      /^unauthorised: wrong token/,
    );
    const info = (await list())[0]!;
    expect(info.applications).toHaveLength(1);
    const ok = await run('xdpyinfo', [], { DISPLAY: d.helpdesk, XAUTHORITY: info.xauthority! });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/400x300 pixels/);
  });

  const xterm = async (disp: string) => (await findWindows(disp, 'xterm'))[0];
  /** The xterm is mapped (typing at an unmapped window would go to the root window). */
  const xtermReady = async (disp: string): Promise<boolean> => {
    const w = await xterm(disp);
    return !!w && /Map State: IsViewable/.test((await run('xwininfo', ['-id', String(w.id)], { DISPLAY: disp })).stdout);
  };
  const typeOn = async (disp: string, text: string): Promise<void> => typeInto(disp, (await xterm(disp))!, text);
  const file = (): string => textOf(typed);

  it('ctl focus moves the input focus: keys then reach the application only from the new focus', async () => {
    await launch('helpdesk', TOKENS.alice, ['xterm', '-geometry', '30x5+10+120', '-e', 'sh', '-c', `cat > ${typed}`]);
    await waitFor(
      'xterm mapped on alice and bob, its shell running',
      async () => (await xtermReady(d.m1)) && (await xtermReady(d.p1)) && existsSync(typed),
    );
    // a click from bob does not take the focus: the help desk's policy is "none" (ctl only)
    const w = (await xterm(d.p1))!;
    await run('xdotool', ['mousemove', String(w.x + 20), String(w.y + 20), 'click', '1'], { DISPLAY: d.p1 });
    await typeOn(d.p1, 'bob1');
    await typeOn(d.m1, 'alice1');
    await waitFor('alice’s line', async () => file().includes('alice1'));
    expect(file()).toBe('alice1\n');
    // bob may not take the focus with a wrong token; the trigger policy is "none", so only ctl moves it
    expect(await refusal({ cmd: 'focus', conference: 'helpdesk', participant: 'bob', token: TOKENS.carol })).toMatch(
      /^unauthorised: wrong token/,
    );
    const moved = (await ctl({ cmd: 'focus', conference: 'helpdesk', participant: 'bob', token: TOKENS.bob })) as { applications: number };
    expect(moved.applications).toBe(2); // xlogo and xterm
    expect((await list())[0]!.applications.map((a) => a.focus)).toEqual(['bob', 'bob']);
    await typeOn(d.m1, 'alice2');
    await typeOn(d.p1, 'bob2');
    await waitFor('bob’s line', async () => file().includes('bob2'));
    expect(file()).toBe('alice1\nbob2\n');
  });

  it('an unauthorised join is refused with a clear error and changes nothing', async () => {
    expect(await refusal({ cmd: 'join', conference: 'design', participant: 'dave', token: TOKENS.bob })).toBe(
      'unauthorised: wrong token for participant "dave"',
    );
    expect(await refusal({ cmd: 'join', conference: 'design', participant: ':199', token: TOKENS.dave })).toBe(
      'unauthorised: ":199" is not on the participants\' allow-list',
    );
    expect(await refusal({ cmd: 'join', conference: 'design', participant: 'carol', token: TOKENS.carol })).toBe(
      'unauthorised: participant "carol" may not join',
    );
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice,bob`, `design@${d.design}: carol`]);
    expect(await findWindows(d.p2, 'xlogo')).toHaveLength(0);
  });

  it('a participant joins through ctl and is shown the running application', async () => {
    const joined = (await ctl({ cmd: 'join', conference: 'design', participant: d.p2, token: TOKENS.dave })) as ConferenceInfo;
    expect(joined.participants.map((p) => p.name)).toEqual(['carol', 'dave']);
    await waitFor('design xlogo on dave', async () => logoAt(d.p2, 200));
    expect(await logoAt(d.p2, 10)).toBe(false); // not the help desk's
    expect((await list())[1]!.applications[0]!.participants).toEqual(['carol', 'dave']);
  });

  it('a click from a non-focus participant takes the focus where the policy allows it (design: button)', async () => {
    // xlogo selects no button events; an xterm does
    await launch('design', TOKENS.carol, ['xterm', '-geometry', '20x3+10+150', '-e', 'sleep', '600']);
    await waitFor('design xterm mapped on dave', async () => xtermReady(d.p2));
    const apps = () => list().then((c) => c[1]!.applications);
    const id = Math.max(...(await apps()).map((a) => a.id));
    expect((await apps()).find((a) => a.id === id)!.focus).toBe('carol');
    const w = (await xterm(d.p2))!;
    await run('xdotool', ['mousemove', String(w.x + 10), String(w.y + 10), 'click', '1'], { DISPLAY: d.p2 });
    await waitFor('dave has the focus after his click', async () => (await apps()).find((a) => a.id === id)!.focus === 'dave');
  });

  it('an application is dropped from a conference through ctl, on every display; the others stay', async () => {
    await launch('design', TOKENS.carol, ['xlogo', '-geometry', '80x80+300+10']);
    await waitFor('second design xlogo on carol and dave', async () => (await logoAt(d.m2, 300)) && (await logoAt(d.p2, 300)));
    const apps = (await list())[1]!.applications;
    expect(apps).toHaveLength(3); // xlogo, xterm, and this one
    const second = Math.max(...apps.map((a) => a.id));
    expect(await refusal({ cmd: 'drop', conference: 'design', app: second, token: TOKENS.dave })).toMatch(
      /^unauthorised: wrong token to drop/,
    );
    expect(await refusal({ cmd: 'drop', conference: 'design', app: 99, token: TOKENS.carol })).toBe(
      'not-found: no application 99 in conference "design"',
    );
    await ctl({ cmd: 'drop', conference: 'design', app: second, token: TOKENS.carol });
    await waitFor('dropped xlogo gone from carol and dave', async () => !(await logoAt(d.m2, 300)) && !(await logoAt(d.p2, 300)));
    expect(await logoAt(d.m2, 200)).toBe(true);
    expect(await logoAt(d.p2, 200)).toBe(true);
    expect((await list())[1]!.applications.map((a) => a.id)).not.toContain(second);
  });

  it('a participant leaves through ctl; the application keeps working for the others', async () => {
    expect(await refusal({ cmd: 'leave', conference: 'helpdesk', participant: 'bob', token: TOKENS.dave })).toMatch(/^unauthorised/);
    await ctl({ cmd: 'leave', conference: 'helpdesk', participant: 'bob', token: TOKENS.alice });
    await waitFor('helpdesk windows gone from bob', async () => !(await logoAt(d.p1, 10)) && !(await xterm(d.p1)));
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice`, `design@${d.design}: carol,dave`]);
    // the focus fell back to the master, and the application still takes alice's input
    expect((await list())[0]!.applications.map((a) => a.focus)).toEqual(['alice', 'alice']);
    expect(await logoAt(d.m1, 10)).toBe(true);
    await typeOn(d.m1, 'alice3');
    await waitFor('alice’s line after bob left', async () => file().includes('alice3'));
    expect(file()).toBe('alice1\nbob2\nalice3\n');
  });

  it('ctl stop closes one conference and its application; the other conference keeps running', async () => {
    expect(await refusal({ cmd: 'stop', conference: 'design', token: TOKENS.dave })).toMatch(/^unauthorised/);
    await ctl({ cmd: 'stop', conference: 'design', token: TOKENS.carol });
    expect(await summary()).toEqual([`helpdesk@${d.helpdesk}: alice`]);
    await waitFor('design xlogo gone', async () => !(await logoAt(d.m2, 200)) && !(await logoAt(d.p2, 200)));
    expect(await logoAt(d.m1, 10)).toBe(true);
    expect((await run('xdpyinfo', [], { DISPLAY: d.design })).code).not.toBe(0); // its display is gone
  });

  it('the ctl command line talks to the daemon (list, and a refusal with exit code 1)', async () => {
    const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
    const node = (args: string[]) =>
      run(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', cli, 'ctl', '--socket', sock, ...args], {}, 30_000);
    const listed = await node(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^helpdesk  display ${d.helpdesk}  focus trigger none  cookie `));
    expect(listed.stdout).toMatch(/master +alice/);
    const refused = await node(['join', 'helpdesk', 'dave', '--token', 'wrong-token']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/unauthorised: wrong token for participant "dave"/);
  });

  it('the master leaving closes its conference; the daemon stays, and the declared conference can start again', async () => {
    const r = (await ctl({ cmd: 'leave', conference: 'helpdesk', participant: 'alice', token: TOKENS.alice })) as {
      conferenceClosed: string;
    };
    expect(r.conferenceClosed).toMatch(/master/);
    expect(await list()).toEqual([]);
    await waitFor('helpdesk xlogo gone', async () => !(await logoAt(d.m1, 10)));
    const again = (await ctl({ cmd: 'start', conference: 'helpdesk', master: 'alice', token: TOKENS.alice })) as ConferenceInfo;
    expect(again).toMatchObject({ display: d.helpdesk, participants: [{ name: 'alice' }, { name: 'bob' }], applications: [] });
    await launch('helpdesk', TOKENS.alice, ['xlogo', '-geometry', '60x60+20+20']);
    await waitFor('a new xlogo on alice and bob', async () => (await logoAt(d.m1, 20)) && (await logoAt(d.p1, 20)));
  });
});
