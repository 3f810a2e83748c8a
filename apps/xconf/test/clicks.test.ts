// End-to-end: mouse clicks (and keys) through the daemon to three real Xvfb servers, with an unmodified xterm
// whose shell turns on xterm's X10 mouse reporting: every button press the application receives is written
// by xterm to its pty as ESC [ M Cb Cx Cy (Cb = 32 + button - 1) and copied by `cat` into a file. So the
// file shows exactly which clicks and keys reached the application, and from which button.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '@tandem/xconference';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import {
  findWindows,
  freeDisplays,
  kill,
  requireXTools,
  run,
  start,
  startXvfb,
  stopXvfb,
  waitFor,
  type Proc,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('clicks end-to-end');

/** What the application received, in order: `b1`..`b3` for a reported button press, other bytes as text. */
function received(raw: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; ) {
    if (raw.startsWith('\x1b[M', i) && i + 6 <= raw.length) {
      out.push(`b${raw.charCodeAt(i + 3) - 32 + 1}`);
      i += 6;
    } else if (raw.startsWith('\x1b[M', i))
      break; // a report still being written
    else out.push(raw[i++]!);
  }
  return out;
}

describe.skipIf(!haveX)('tandem-xconf: clicks and the button focus trigger, three Xvfb servers, xterm', () => {
  const procs: Proc[] = [];
  const servers: XvfbProc[] = [];
  const daemons: XconfDaemon[] = [];
  let dir: string;
  const d = { master: '', p1: '', p2: '', chord: '', button: '' };
  let chordDaemon: XconfDaemon;
  let buttonDaemon: XconfDaemon;

  /** Starts an xterm on `display` titled `title` whose input (keys, X10 mouse reports) is copied to a file. */
  async function reportingXterm(display: string, title: string, y: number): Promise<() => string[]> {
    const file = join(dir, `${title}.txt`);
    const readyFile = join(dir, `${title}.ready`);
    const script = `stty raw -echo; printf '\\033[?9h'; : > ${readyFile}; exec cat > ${file}`;
    // the conference's cookie (required by default)
    const xauthority = (display === d.chord ? chordDaemon : buttonDaemon).xauthorityPath!;
    procs.push(
      start('xterm', ['-title', title, '-geometry', `40x6+10+${y}`, '-e', 'sh', '-c', script], {
        DISPLAY: display,
        XAUTHORITY: xauthority,
      }),
    );
    const read = (): string[] => {
      try {
        return received(readFileSync(file, 'latin1'));
      } catch {
        return [];
      }
    };
    await waitFor(`${title} on every server`, async () => {
      const all = await Promise.all([d.master, d.p1, d.p2].map((disp) => findWindows(disp, title)));
      return all.every((ws) => ws.length === 1) && existsSync(readyFile);
    });
    // The mouse mode is set once xterm has read the printf; a key typed on the master (the focus) shows it is up.
    await waitFor(`${title} reads its input`, async () => {
      await key(d.master, title, 'r');
      await new Promise((r) => setTimeout(r, 300));
      return read().includes('r');
    });
    await new Promise((r) => setTimeout(r, 300));
    const ready = read();
    if (ready.some((t) => t !== 'r')) throw new Error(`${title}: unexpected input before the test: ${JSON.stringify(ready)}`);
    // What arrives after the readiness key(s).
    return () => read().slice(ready.length);
  }

  async function at(display: string, title: string, dx: number, dy: number): Promise<void> {
    const [w] = await findWindows(display, title);
    if (!w) throw new Error(`no ${title} window on ${display}`);
    const r = await run('xdotool', ['mousemove', String(w.x + dx), String(w.y + dy)], { DISPLAY: display });
    if (r.code !== 0) throw new Error(`xdotool mousemove on ${display}: ${r.stderr}`);
  }
  async function click(display: string, title: string, button: number, dx = 30, dy = 20): Promise<void> {
    await at(display, title, dx, dy);
    const r = await run('xdotool', ['click', String(button)], { DISPLAY: display });
    if (r.code !== 0) throw new Error(`xdotool click on ${display}: ${r.stderr}`);
  }
  async function key(display: string, title: string, keys: string): Promise<void> {
    await at(display, title, 30, 20);
    const r = await run('xdotool', ['type', '--delay', '20', keys], { DISPLAY: display });
    if (r.code !== 0) throw new Error(`xdotool type on ${display}: ${r.stderr}`);
  }
  const focusOf = (daemon: XconfDaemon): Array<string | null> => daemon.conference.applications.map((a) => a.focusName);

  beforeAll(async () => {
    const [m, a, b, c1, c2] = freeDisplays(5, 200);
    Object.assign(d, { master: `:${m}`, p1: `:${a}`, p2: `:${b}`, chord: `:${c1}`, button: `:${c2}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-clicks-'));
    servers.push(...(await Promise.all([m!, a!, b!].map((n) => startXvfb(n, '480x400x24')))));
    chordDaemon = await startXconf({
      display: d.chord,
      master: d.master,
      participants: [d.p1, d.p2],
      trigger: parseFocusTrigger('ctrl+alt+f'),
    });
    daemons.push(chordDaemon);
    buttonDaemon = await startXconf({
      display: d.button,
      master: d.master,
      participants: [d.p1, d.p2],
      trigger: parseFocusTrigger('button3'),
    });
    daemons.push(buttonDaemon);
  }, 60_000);

  afterAll(async () => {
    for (const dm of daemons) await dm.close('test over').catch(() => {});
    for (const p of procs.reverse()) kill(p);
    for (const x of servers) await stopXvfb(x);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('clicks on non-focus displays do not reach the application; the same clicks on the focus display do', async () => {
    const read = await reportingXterm(d.chord, 'clicksA', 10);
    expect(read()).toEqual([]);
    const droppedBefore = chordDaemon.conference.totals.droppedEvents;
    // Each display clicks its own button, so a report says where it came from: p1 2, p2 3, master 1.
    await click(d.p1, 'clicksA', 2);
    await click(d.p2, 'clicksA', 3);
    // The participants' servers did produce events for the application's window; the daemon dropped them.
    await waitFor('events dropped from p1 and p2', async () => chordDaemon.conference.totals.droppedEvents >= droppedBefore + 4);
    await click(d.master, 'clicksA', 1);
    await waitFor('the master’s click', async () => read().includes('b1'));
    // A second click on the master as a barrier: anything forwarded from p1/p2 would have arrived by now.
    await click(d.master, 'clicksA', 1, 60, 30);
    await waitFor('the master’s second click', async () => read().filter((t) => t === 'b1').length === 2);
    expect(read()).toEqual(['b1', 'b1']);

    // The focus moves to p1 (the key chord): now p1's button-2 click lands, and the master's clicks do not.
    await at(d.p1, 'clicksA', 30, 20);
    await run('xdotool', ['key', 'ctrl+alt+f'], { DISPLAY: d.p1 });
    await waitFor('focus on p1', async () => focusOf(chordDaemon).includes(d.p1));
    await click(d.master, 'clicksA', 1);
    await click(d.p2, 'clicksA', 3);
    await click(d.p1, 'clicksA', 2);
    await waitFor('p1’s click', async () => read().includes('b2'));
    await click(d.p1, 'clicksA', 2, 60, 30);
    await waitFor('p1’s second click', async () => read().filter((t) => t === 'b2').length === 2);
    expect(read()).toEqual(['b1', 'b1', 'b2', 'b2']);
  });

  it('the button trigger: a button-3 click on a participant moves the focus there and lands; then its keys and clicks reach the application and the master’s do not', async () => {
    const read = await reportingXterm(d.button, 'clicksB', 200);
    expect(read()).toEqual([]);
    expect(focusOf(buttonDaemon)).toEqual([d.master]);
    // Button 1 is not the trigger: p1's click is dropped and the focus stays on the master.
    await click(d.p1, 'clicksB', 1);
    await key(d.p1, 'clicksB', 'x');
    await click(d.master, 'clicksB', 1);
    await key(d.master, 'clicksB', 'm');
    await waitFor('the master’s click and key', async () => read().includes('m'));
    expect(read()).toEqual(['b1', 'm']);
    expect(focusOf(buttonDaemon)).toEqual([d.master]);

    // Button 3 on p1 is the trigger: p1 becomes the focus and the press itself is forwarded.
    await click(d.p1, 'clicksB', 3);
    await waitFor('focus on p1', async () => focusOf(buttonDaemon).includes(d.p1));
    await waitFor('the triggering click', async () => read().includes('b3'));
    expect(read()).toEqual(['b1', 'm', 'b3']);

    // Now the master is not the focus: its keys and clicks are dropped; p1's reach the application.
    await click(d.master, 'clicksB', 1);
    await key(d.master, 'clicksB', 'n');
    await key(d.p1, 'clicksB', 'k');
    await click(d.p1, 'clicksB', 2);
    await waitFor('p1’s key and click', async () => read().includes('b2'));
    expect(read()).toEqual(['b1', 'm', 'b3', 'k', 'b2']);
    expect(focusOf(buttonDaemon)).toEqual([d.p1]);
  });
});
