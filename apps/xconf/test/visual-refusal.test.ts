// An 8-bit PseudoColor server cannot show the master's TrueColor pixel values (colormap translation is not
// implemented): it is refused with a named reason — at the daemon's start, on a join, and as a master —
// never joined with wrong colours (docs/XCONFERENCE.md, "Visuals and depths"). Real Xvfb servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isXconferenceError, parseFocusTrigger } from '@tandem/xconference';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import { upstreamFor } from '../src/display.js';
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

const haveX = requireXTools('visual-refusal');
const PSEUDO = /its default visual is PseudoColor \(depth 8\); only TrueColor servers can take part/;

describe.skipIf(!haveX)('a participant with an 8-bit PseudoColor default visual (Xvfb)', () => {
  const servers: XvfbProc[] = [];
  const procs: Proc[] = [];
  const logs: string[] = [];
  const d = { master: '', p1: '', eight: '', conf: '' };
  let daemon: XconfDaemon | undefined;

  beforeAll(async () => {
    const [m, a, e, c] = freeDisplays(4, 180);
    Object.assign(d, { master: `:${m}`, p1: `:${a}`, eight: `:${e}`, conf: `:${c}` });
    servers.push(await startXvfb(m!, '320x240x24'), await startXvfb(a!, '320x240x24'), await startXvfb(e!, '320x240x8'));
  });

  afterAll(async () => {
    await daemon?.close('test over').catch(() => {});
    for (const p of procs.reverse()) kill(p);
    for (const x of servers) await stopXvfb(x);
  });

  const options = (master: string, participants: string[]) => ({
    display: d.conf,
    master,
    participants,
    trigger: parseFocusTrigger('none'),
    log: (line: string) => logs.push(line),
  });

  it('the daemon does not start with it as a participant, and says why', async () => {
    await expect(startXconf(options(d.master, [d.p1, d.eight]))).rejects.toThrow(PSEUDO);
  });

  it('nor with it as the master', async () => {
    await expect(startXconf(options(d.eight, [d.p1]))).rejects.toThrow(
      /master .* cannot host a conference: its default visual is PseudoColor/,
    );
  });

  it('a running conference refuses its join with JoinError unsupported-visual; the application keeps running', async () => {
    daemon = await startXconf(options(d.master, [d.p1]));
    const env = { DISPLAY: d.conf, XAUTHORITY: daemon.xauthorityPath! };
    procs.push(start('xlogo', ['-geometry', '100x100+10+10'], env));
    await waitFor('xlogo on the participant', async () => (await findWindows(d.p1, 'xlogo')).length === 1);
    const err = await daemon.conference.addParticipant(upstreamFor(d.eight)).catch((e: unknown) => e);
    expect(isXconferenceError(err, 'JoinError') && err.code).toBe('unsupported-visual');
    expect((err as Error).message).toMatch(PSEUDO);
    expect(daemon.conference.participantNames).toEqual([d.master, d.p1]);
    expect(await findWindows(d.eight, 'xlogo')).toHaveLength(0);
    expect(daemon.conference.applications[0]!.participants).toEqual([d.master, d.p1]);
    expect(logs.some((l) => l.includes(`participant ${d.eight} refused`))).toBe(true);
  });
});
