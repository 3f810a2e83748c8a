// End-to-end late join: real Xvfb servers, the daemon, unmodified xterms; participants join and leave while
// the applications run, and the newcomer's screenshot of each window equals the master's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '@tandem/xconference';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import { upstreamFor } from '../src/display.js';
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
  typeInto,
  waitFor,
  type Proc,
  type WindowInfo,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('late-join');

describe.skipIf(!haveX)('participants joining and leaving running applications (Xvfb, xterm)', () => {
  const procs: Proc[] = [];
  const servers: XvfbProc[] = [];
  let daemon: XconfDaemon;
  let dir: string;
  const d = { master: '', p1: '', late: '', conf: '' };
  const files = { a: '', b: '' };
  const logs: string[] = [];
  let xtermApp = 0;
  let d16 = '';
  let imagesOfFirstJoin = 0;
  const xtermSession = () => daemon.conference.applications.find((a) => a.id === xtermApp)!;
  /** An application's environment: the conference's display and cookie. */
  const appEnv = () => ({ DISPLAY: d.conf, XAUTHORITY: daemon.xauthorityPath! });

  const read = (file: string): string => {
    try {
      return readFileSync(file, 'latin1');
    } catch {
      return '';
    }
  };
  /** The xterm at `x` (no window manager: every display shows it where the application put it). */
  const xtermAt = (display: string, x: number): Promise<WindowInfo> =>
    waitFor(`xterm at x=${x} on ${display}`, async () => (await findWindows(display, 'xterm')).find((w) => w.x === x));
  const typeOn = async (display: string, x: number, text: string): Promise<void> => typeInto(display, await xtermAt(display, x), text);
  /** Waits (bounded) until the window's pixels on `other` equal the master's; returns the last difference. */
  async function sameAsMaster(other: string, x: number): Promise<string> {
    const region = await xtermAt(d.master, x);
    let report = 'never compared';
    for (let attempt = 0; attempt < 20; attempt++) {
      const [a, b] = await Promise.all([screenshot(d.master), screenshot(other)]);
      const diff = diffRegion(a, b, region);
      report = diff.differing ? `${other} @${region.x},${region.y}: ${diff.differing} px differ, first ${diff.first}` : '';
      if (!report) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return report;
  }
  /** Distinct colours in the window on the master (proves something was drawn, e.g. text). */
  async function colours(x: number): Promise<number> {
    const r = await xtermAt(d.master, x);
    const shot = await screenshot(d.master);
    const seen = new Set<number>();
    for (let y = r.y; y < r.y + r.height; y++) for (let xx = r.x; xx < r.x + r.width; xx++) seen.add(shot.pixel(xx, y));
    return seen.size;
  }

  beforeAll(async () => {
    const [m, a, l, c] = freeDisplays(4, 120);
    Object.assign(d, { master: `:${m}`, p1: `:${a}`, late: `:${l}`, conf: `:${c}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-late-'));
    files.a = join(dir, 'a.txt');
    files.b = join(dir, 'b.txt');
    servers.push(await startXvfb(m!, '640x480x24'));
    servers.push(await startXvfb(a!, '640x480x24'));
    // The late joiner lacks GLX, so its root window id differs from the master's: ids are translated.
    servers.push(await startXvfb(l!, '640x480x24', ['-extension', 'GLX']));
    daemon = await startXconf({
      display: d.conf,
      master: d.master,
      participants: [d.p1],
      trigger: parseFocusTrigger('ctrl+alt+f'),
      log: (line) => logs.push(line),
    });
    procs.push(start('xterm', ['-geometry', '40x8+10+10', '-e', 'sh', '-c', `cat > ${files.a}`], appEnv()));
    await xtermAt(d.p1, 10);
    expect(daemon.conference.applications.length).toBe(1);
    xtermApp = daemon.conference.applications[0]!.id;
    procs.push(start('xlogo', ['-geometry', '100x100+400+10'], appEnv()), start('xeyes', ['-geometry', '100x100+520+10'], appEnv()));
    for (const name of ['xlogo', 'xeyes'])
      await waitFor(`${name} on the master`, async () => (await findWindows(d.master, name)).length === 1);
    // xterm is ready once it has drawn its cursor; even then its first keys can be lost, so type until seen
    await waitFor('xterm drawn', async () => (await colours(10)) > 1);
    for (let attempt = 0; attempt < 3 && !read(files.a).includes('before'); attempt++) {
      await typeOn(d.master, 10, 'typed before the join');
      await waitFor('text before the join', async () => read(files.a).includes('before'), 5000).catch(() => {});
    }
    expect(read(files.a)).toMatch(/before the join/);
  });

  afterAll(async () => {
    await daemon?.close('test over').catch(() => {});
    for (const p of procs.reverse()) kill(p);
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (process.env.XCONF_TEST_LOG) console.log(logs.join('\n'));
  });

  it('a participant joining late sees the running xterm exactly as the master shows it', async () => {
    expect((await findWindows(d.late, 'xterm')).length).toBe(0);
    await daemon.conference.addParticipant(upstreamFor(d.late));
    expect(daemon.conference.participantNames).toEqual([d.master, d.p1, d.late]);
    const onLate = await xtermAt(d.late, 10);
    const onMaster = await xtermAt(d.master, 10);
    expect([onLate.width, onLate.height]).toEqual([onMaster.width, onMaster.height]);
    expect(onLate.id).not.toBe(onMaster.id); // the late server's own numbering
    expect(await sameAsMaster(d.late, 10)).toBe('');
    expect(await colours(10)).toBeGreaterThan(1); // the text typed before the join is there
    // other clients joined too: xlogo and xeyes look the same on the late joiner
    for (const name of ['xlogo', 'xeyes']) {
      const r = await waitFor(`${name} on the late joiner`, async () => (await findWindows(d.late, name))[0]);
      const m = (await findWindows(d.master, name))[0]!;
      expect([r.x, r.y, r.width, r.height]).toEqual([m.x, m.y, m.width, m.height]);
      let differing = -1;
      for (let attempt = 0; attempt < 20 && differing !== 0; attempt++) {
        if (attempt) await new Promise((res) => setTimeout(res, 250));
        const [a, b] = await Promise.all([screenshot(d.master), screenshot(d.late)]);
        differing = diffRegion(a, b, m).differing;
      }
      expect(`${name}: ${differing} px differ`).toBe(`${name}: 0 px differ`);
    }
    const stats = xtermSession().lastJoin!;
    expect(stats.replayedRequests).toBeGreaterThan(5);
    imagesOfFirstJoin = stats.images;
    expect(stats.atoms).toBeGreaterThan(0);
    // Only resources that exist on the master were replayed: no font the master refused (36 errors before).
    expect(logs.filter((l) => l.includes("for the proxy's own request"))).toEqual([]);
  });

  it('after text is typed on the focus display, the late joiner still shows the same pixels', async () => {
    await typeOn(d.master, 10, 'typed after the join');
    await waitFor('text after the join', async () => read(files.a).includes('after'));
    expect(await sameAsMaster(d.late, 10)).toBe('');
    expect(await sameAsMaster(d.p1, 10)).toBe('');
  });

  it('the late joiner can take the input focus and type', async () => {
    const w = await xtermAt(d.late, 10);
    await run('xdotool', ['mousemove', String(w.x + 20), String(w.y + 20)], { DISPLAY: d.late });
    await run('xdotool', ['key', 'ctrl+alt+f'], { DISPLAY: d.late });
    await waitFor('focus on the late joiner', async () => xtermSession().focusName === d.late);
    await typeOn(d.late, 10, 'from the late joiner');
    await waitFor('text from the late joiner', async () => read(files.a).includes('late joiner'));
    expect(await sameAsMaster(d.late, 10)).toBe('');
  });

  it('a participant leaves; its window goes away and the others keep working', async () => {
    expect(daemon.conference.removeParticipant(d.p1)).toBe(true);
    expect(daemon.conference.participantNames).toEqual([d.master, d.late]);
    await waitFor('the xterm gone from the leaver', async () => (await findWindows(d.p1, 'xterm')).length === 0);
    await typeOn(d.late, 10, 'still working');
    await waitFor('text after the leave', async () => read(files.a).includes('still working'));
    expect(await sameAsMaster(d.late, 10)).toBe('');
    expect(daemon.conference.isClosed).toBe(false);
  });

  it('two applications with different focus holders: each takes input only from its own', async () => {
    procs.push(start('xterm', ['-geometry', '40x8+300+200', '-e', 'sh', '-c', `cat > ${files.b}`], appEnv()));
    await waitFor(
      'second xterm on both displays',
      async () =>
        (await findWindows(d.late, 'xterm')).some((w) => w.x === 300) && (await findWindows(d.master, 'xterm')).some((w) => w.x === 300),
    );
    const first = xtermSession();
    const second = await waitFor('the second xterm’s session', async () => daemon.conference.applications.find((a) => a.id > xtermApp + 2));
    expect(second.id).not.toBe(first.id);
    // the first application's focus is the late joiner (chord above); the second one's is the master
    expect(daemon.conference.setFocus(d.master, first.id)).toBe(1);
    expect(daemon.conference.setFocus(d.late, second.id)).toBe(1);
    expect([first.focusName, second.focusName]).toEqual([d.master, d.late]);
    const at = async (display: string): Promise<WindowInfo> =>
      waitFor('second xterm', async () => (await findWindows(display, 'xterm')).find((w) => w.x === 300));
    // xwininfo lists windows before they are mapped: wait until B is drawn, then until it takes keys at all
    await waitFor('second xterm drawn', async () => (await colours(300)) > 1);
    for (let attempt = 0; attempt < 3 && !read(files.b).includes('late into B'); attempt++) {
      await typeInto(d.late, await at(d.late), 'late into B');
      await waitFor('B ready', async () => read(files.b).includes('late into B'), 5000).catch(() => {});
    }
    expect(read(files.b)).toMatch(/late into B\n$/);
    const bBefore = read(files.b);
    await typeInto(d.master, await at(d.master), 'master into B'); // the master is not B's focus: dropped
    await typeOn(d.late, 10, 'late into A'); // the late joiner is not A's focus: dropped
    await typeOn(d.master, 10, 'master into A');
    await typeInto(d.late, await at(d.late), 'late again into B');
    await waitFor('both texts', async () => read(files.b).includes('late again into B') && read(files.a).includes('master into A')).catch(
      (err: Error) => {
        throw new Error(`${err.message}: a=${JSON.stringify(read(files.a))} b=${JSON.stringify(read(files.b))}`);
      },
    );
    expect(read(files.b)).toBe(`${bBefore}late again into B\n`);
    expect(read(files.a)).not.toMatch(/late into A|into B/);
    expect(await sameAsMaster(d.late, 10)).toBe('');
    const r = await at(d.master);
    const [ma, la] = await Promise.all([screenshot(d.master), screenshot(d.late)]);
    expect(diffRegion(ma, la, r).differing).toBe(0);
  });

  it('a late joiner with another depth (16-bit TrueColor) sees both applications like the master, in the master’s window sizes', async () => {
    const [n] = freeDisplays(1, 140);
    d16 = `:${n}`;
    servers.push(await startXvfb(n!, '640x480x16'));
    // Something other than the application (as a window manager would) resizes B on the master only: the
    // newcomer must get the master's size (GetGeometry at the join), not the size the application asked for.
    const bOnMaster = await xtermAt(d.master, 300);
    await run('xdotool', ['windowsize', String(bOnMaster.id), '420', '160'], { DISPLAY: d.master });
    await waitFor('B resized on the master', async () => (await xtermAt(d.master, 300)).width === 420);
    await daemon.conference.addParticipant(upstreamFor(d16));
    expect(daemon.conference.participantNames).toEqual([d.master, d.late, d16]);
    await xtermAt(d16, 10);
    await xtermAt(d16, 300);
    expect(await sameAsMaster(d16, 10)).toBe('');
    expect(await sameAsMaster(d16, 300)).toBe('');
    const [bm, b16] = [await xtermAt(d.master, 300), await xtermAt(d16, 300)];
    expect([b16.width, b16.height]).toEqual([bm.width, bm.height]);
    expect(bm.width).toBe(420);
    // every pixmap's contents were copied, depth-24 ones re-encoded as 16-bit 5-6-5
    expect(xtermSession().lastJoin!.images).toBe(imagesOfFirstJoin);
    expect(imagesOfFirstJoin).toBeGreaterThan(0);
    expect(daemon.conference.removeParticipant(d16)).toBe(true);
    await waitFor('the xterms gone from the leaver', async () => (await findWindows(d16, 'xterm')).length === 0);
    await typeOn(d.master, 10, 'after the second leave');
    await waitFor('text after the second leave', async () => read(files.a).includes('second leave'));
  });
});
