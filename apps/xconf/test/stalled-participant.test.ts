// A participant whose X server is paused (SIGSTOP) while a new application connects: the new application
// starts without it after the setup timeout, and every running application keeps it (docs/XCONFERENCE.md,
// "Bad input"). Real Xvfb servers, the daemon, unmodified xlogo and xeyes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFocusTrigger } from '@tandem/xconference';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import {
  findWindows,
  freeDisplays,
  kill,
  requireXTools,
  start,
  startXvfb,
  stopXvfb,
  waitFor,
  type Proc,
  type XvfbProc,
} from './x-harness.js';

const haveX = requireXTools('stalled-participant');

describe.skipIf(!haveX)('a participant stalled while an application connects (Xvfb, SIGSTOP)', () => {
  const procs: Proc[] = [];
  const servers: XvfbProc[] = [];
  const logs: string[] = [];
  let daemon: XconfDaemon;
  const d = { master: '', p1: '', conf: '' };
  const appEnv = () => ({ DISPLAY: d.conf, XAUTHORITY: daemon.xauthorityPath! });

  beforeAll(async () => {
    const [m, a, c] = freeDisplays(3, 170);
    Object.assign(d, { master: `:${m}`, p1: `:${a}`, conf: `:${c}` });
    servers.push(await startXvfb(m!, '320x240x24'), await startXvfb(a!, '320x240x24'));
    daemon = await startXconf({
      display: d.conf,
      master: d.master,
      participants: [d.p1],
      trigger: parseFocusTrigger('none'),
      setupTimeoutMs: 1500,
      log: (line) => logs.push(line),
    });
  });

  afterAll(async () => {
    for (const x of servers) kill(x, 'SIGCONT');
    await daemon?.close('test over').catch(() => {});
    for (const p of procs.reverse()) kill(p);
    for (const x of servers) await stopXvfb(x);
    if (process.env.XCONF_TEST_LOG) console.log(logs.join('\n'));
  });

  it('the new application starts without it; the running one keeps it and still draws there', async () => {
    procs.push(start('xlogo', ['-geometry', '100x100+10+10'], appEnv()));
    await waitFor('xlogo on the participant', async () => (await findWindows(d.p1, 'xlogo')).length === 1);
    const p1 = servers[1]!;
    kill(p1, 'SIGSTOP');
    try {
      procs.push(start('xeyes', ['-geometry', '100x100+150+10'], appEnv()));
      await waitFor('xeyes on the master', async () => (await findWindows(d.master, 'xeyes')).length === 1, 20_000);
      const apps = daemon.conference.applications;
      expect(apps.map((a) => a.participants)).toEqual([[d.master, d.p1], [d.master]]);
      expect(daemon.conference.participantNames).toEqual([d.master, d.p1]);
      expect(logs.some((l) => l.includes(`participant ${d.p1} left out of this application`))).toBe(true);
    } finally {
      kill(p1, 'SIGCONT');
    }
    // Resumed: the running application's window is still on it, the one that started meanwhile is not.
    await waitFor('the participant answering again', async () => (await findWindows(d.p1, 'xlogo')).length === 1);
    expect(await findWindows(d.p1, 'xeyes')).toHaveLength(0);
    expect(daemon.conference.applications[0]!.participants).toEqual([d.master, d.p1]);
  });
});
