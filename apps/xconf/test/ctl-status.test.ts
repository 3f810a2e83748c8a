// `tandem-xconf ctl status [--json]` as a real process against a daemon with real Xvfb participants (one at
// depth 24, one at depth 16) and an unmodified X client: participants, roles, depths, focus, applications, bytes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCtlArgs } from '../src/ctl-args.js';
import { ctlRequest } from '../src/ctl-client.js';
import { CtlError, parseCtlRequest } from '../src/ctl-protocol.js';
import { startXconf, type XconfDaemon } from '../src/daemon.js';
import { startXconfMetrics, type XconfMetrics } from '../src/metrics.js';
import type { XconfStatus } from '../src/status.js';
import { parseFocusTrigger } from '@tandem/xconference';
import { findWindows, freeDisplays, requireXTools, run, startXvfb, stopXvfb, waitFor, type XvfbProc } from './x-harness.js';

const haveX = requireXTools('ctl status');
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
const nodeArgs = ['--conditions=@tandem/source', '--import', 'tsx', cli];
const version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;

describe('ctl status: arguments and requests', () => {
  it('takes at most a conference name and no flags; the request is validated', () => {
    expect(parseCtlArgs(['status']).request).toEqual({ cmd: 'status' });
    expect(parseCtlArgs(['--json', 'status', 'team']).request).toEqual({ cmd: 'status', conference: 'team' });
    expect(() => parseCtlArgs(['status', 'a', 'b'])).toThrow(/status takes at most a conference name/);
    expect(() => parseCtlArgs(['status', '--app', '1'])).toThrow(/status does not take --app/);
    expect(parseCtlRequest('{"cmd":"status"}')).toEqual({ cmd: 'status' });
    expect(() => parseCtlRequest('{"cmd":"status","conference":""}')).toThrow(CtlError);
    expect(() => parseCtlRequest('{"cmd":"status","verbose":true}')).toThrow(/verbose/);
  });
});

describe.skipIf(!haveX)('tandem-xconf ctl status with real Xvfb participants', () => {
  let master: XvfbProc | undefined;
  let other: XvfbProc | undefined;
  let daemon: XconfDaemon | undefined;
  let metrics: XconfMetrics | undefined;
  let dir: string;
  let sock: string;
  const pids: number[] = [];
  const d = { master: '', other: '', conf: '' };
  const ctl = (...args: string[]) => run(process.execPath, [...nodeArgs, 'ctl', '--socket', sock, ...args], {}, 30_000);
  const status = async (...args: string[]): Promise<XconfStatus> => {
    const r = await ctl('status', '--json', ...args);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as XconfStatus;
  };

  beforeAll(async () => {
    const [m, o, c] = freeDisplays(3, 320);
    Object.assign(d, { master: `:${m}`, other: `:${o}`, conf: `:${c}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-status-'));
    sock = join(dir, 'ctl', 'ctl.sock');
    master = await startXvfb(m!, '320x240x24');
    other = await startXvfb(o!, '320x240x16');
    daemon = await startXconf({
      display: d.conf,
      master: d.master,
      participants: [d.other],
      trigger: parseFocusTrigger('none'),
      ctlSocket: sock,
    });
  });

  afterAll(async () => {
    await metrics?.close();
    await daemon?.close('test over').catch(() => {});
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await stopXvfb(master);
    await stopXvfb(other);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--json: the conference, its participants with role and colour depth, no application yet', async () => {
    const st = await status();
    expect(st).toMatchObject({ pid: process.pid, version, metrics: null });
    expect(st.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(st.conferences).toHaveLength(1);
    const [c] = st.conferences;
    expect(c).toMatchObject({
      name: 'default',
      display: d.conf,
      master: d.master,
      focusTrigger: 'none',
      requireCookie: true,
      applications: [],
      focusChanges: 0,
      lateJoins: 0,
      lateJoinFailures: 0,
    });
    expect(c!.participants).toEqual([
      { name: d.master, display: d.master, role: 'master', depth: 24, bytesIn: 0, bytesOut: 0 },
      { name: d.other, display: d.other, role: 'participant', depth: 16, bytesIn: 0, bytesOut: 0 },
    ]);
    expect(Object.values(c!.requests).every((n) => n === 0)).toBe(true);
  });

  it('--json: an application, its focus, requests by category and bytes per participant', async () => {
    const { pid } = (await ctlRequest(sock, { cmd: 'launch', conference: 'default', argv: ['xlogo'] })) as { pid: number };
    pids.push(pid);
    await waitFor('xlogo on both participants', async () => {
      return (await findWindows(d.master, 'xlogo')).length > 0 && (await findWindows(d.other, 'xlogo')).length > 0;
    });
    const [c] = (await status('default')).conferences;
    expect(c!.applications).toHaveLength(1);
    expect(c!.applications[0]).toMatchObject({ focus: d.master, participants: [d.master, d.other] });
    expect(c!.requests['draw-or-change']).toBeGreaterThan(0);
    expect(c!.requests['init-resource-ids']).toBeGreaterThan(0);
    for (const p of c!.participants) {
      expect(p.bytesIn, p.name).toBeGreaterThan(0);
      expect(p.bytesOut, p.name).toBeGreaterThan(0);
    }
    expect(c!.bytesIn).toBeGreaterThanOrEqual(c!.participants[0]!.bytesIn + c!.participants[1]!.bytesIn);

    const focus = await ctl('focus', 'default', d.other);
    expect(focus.code).toBe(0);
    const [after] = (await status()).conferences;
    expect(after!.applications[0]!.focus).toBe(d.other);
    expect(after!.focusChanges).toBe(1);
  });

  it('the text form: one line per participant and application', async () => {
    const r = await ctl('status');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const v = version.replaceAll('.', '\\.');
    expect(lines[0]).toMatch(new RegExp(`^tandem-xconf ${v} {2}pid ${process.pid} {2}up \\d+ s {2}metrics off {2}conferences 1$`));
    expect(lines[1]).toMatch(
      new RegExp(`^default {2}display ${d.conf} {2}focus trigger none {2}applications 1 {2}focus changes 1 {2}late joins 0$`),
    );
    expect(lines[2]).toMatch(
      /^ {2}requests: draw-or-change \d+, query-display \d+, query-server \d+, input-devices \d+, init-resource-ids \d+$/,
    );
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ {2}master {6}${d.master} {2}${d.master} {2}depth 24 {2}in \\d`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ {2}participant ${d.other} {2}${d.other} {2}depth 16 {2}in \\d`)));
    expect(lines).toContainEqual(`  app 1  focus ${d.other}  on ${d.master}, ${d.other}`);
  });

  it('shows the metrics endpoint of an embedding program (startXconfMetrics)', async () => {
    metrics = await startXconfMetrics(daemon!.server, '127.0.0.1:0', { processMetrics: false });
    expect((await status()).metrics).toBe(metrics.url);
    const text = await (await fetch(metrics.url)).text();
    expect(text).toMatch(/^tandem_xconf_participants\{conference="default"\} 2$/m);
    expect(text).not.toContain('process_cpu_seconds_total');
  });

  it('an unknown conference is a typed not-found error (exit 1); extra arguments a usage error (exit 2)', async () => {
    const r = await ctl('status', 'nosuch');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('tandem-xconf ctl: not-found: no conference "nosuch" is running');
    const err = await ctlRequest(sock, { cmd: 'status', conference: 'nosuch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CtlError);
    expect((err as CtlError).code).toBe('not-found');
    const usage = await ctl('status', 'a', 'b');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('status takes at most a conference name');
  });
});

describe.skipIf(!haveX)('tandem-xconf metrics: counts outlive the conference that made them', () => {
  let master: XvfbProc | undefined;
  let daemon: XconfDaemon | undefined;
  let metrics: XconfMetrics | undefined;
  let dir: string;

  afterAll(async () => {
    await metrics?.close();
    await daemon?.close('test over').catch(() => {});
    await stopXvfb(master);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a stopped conference leaves the gauges and keeps its requests and bytes in the counters', async () => {
    const [m, c] = freeDisplays(2, 340);
    dir = mkdtempSync(join(tmpdir(), 'xconf-status-retire-'));
    master = await startXvfb(m!, '320x240x24');
    daemon = await startXconf({
      display: `:${c}`,
      master: `:${m}`,
      participants: [],
      trigger: parseFocusTrigger('none'),
      ctlSocket: join(dir, 'ctl.sock'),
    });
    metrics = await startXconfMetrics(daemon.server, '127.0.0.1:0', { processMetrics: false });
    const info = await run('xdpyinfo', [], { DISPLAY: `:${c}`, XAUTHORITY: daemon.xauthorityPath! });
    expect(info.code).toBe(0);
    const scrape = async (): Promise<string> => (await fetch(metrics!.url)).text();
    const value = (text: string, series: string): number =>
      Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    const before = await scrape();
    const queries = value(before, 'tandem_xconf_requests_total{category="query-server"}');
    const bytes = value(before, `tandem_xconf_participant_bytes_total{participant=":${m}",direction="in"}`);
    expect(queries).toBeGreaterThan(0);
    expect(bytes).toBeGreaterThan(0);
    expect(value(before, 'tandem_xconf_conferences')).toBe(1);
    await daemon.close('stopped by the test');
    const after = await scrape();
    expect(value(after, 'tandem_xconf_conferences')).toBe(0);
    expect(after).not.toContain('tandem_xconf_participants{');
    expect(value(after, 'tandem_xconf_requests_total{category="query-server"}')).toBe(queries);
    expect(value(after, `tandem_xconf_participant_bytes_total{participant=":${m}",direction="in"}`)).toBe(bytes);
  });
});
