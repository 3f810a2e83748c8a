// `tandem-xconf --metrics-listen` as a real process (run from the TypeScript sources with tsx), with real Xvfb
// participants and unmodified X clients: the Prometheus endpoint's series exist and move.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlRequest } from '../src/ctl-client.js';
import type { CtlRequest } from '../src/ctl-protocol.js';
import { XCONF_METRIC_NAMES } from '../src/metrics.js';
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

const haveX = requireXTools('metrics');
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
const nodeArgs = ['--conditions=@tandem/source', '--import', 'tsx', cli];

/** One sample of a Prometheus text exposition: the value of `name` whose labels include `labels`, summed over matches. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

describe('tandem-xconf --metrics-listen: the address', () => {
  it('refuses a non-loopback address before starting anything (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xconf-metrics-refuse-'));
    const [n] = freeDisplays(1, 330);
    try {
      for (const listen of ['0.0.0.0:0', '192.0.2.1:9464']) {
        const r = await run(
          process.execPath,
          [...nodeArgs, '--display', `:${n}`, '--master', ':1', '--socket', join(dir, 'ctl.sock'), '--metrics-listen', listen],
          {},
          30_000,
        );
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`refusing to serve metrics on ${listen}`);
        expect(existsSync(`/tmp/.X11-unix/X${n}`)).toBe(false);
      }
      const bad = await run(
        process.execPath,
        [...nodeArgs, '--display', `:${n}`, '--master', ':1', '--metrics-listen', 'nine'],
        {},
        30_000,
      );
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('cannot serve metrics on "nine"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveX)('tandem-xconf --metrics-listen with real Xvfb participants', () => {
  let master: XvfbProc | undefined;
  let other: XvfbProc | undefined;
  let daemon: Proc | undefined;
  let dir: string;
  let sock: string;
  let url: string;
  let xauthority: string;
  const pids: number[] = [];
  const d = { master: '', other: '', conf: '' };
  const ctl = (req: CtlRequest): Promise<unknown> => ctlRequest(sock, req);
  const scrape = async (): Promise<string> => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return res.text();
  };
  const requests = (t: string): number => sample(t, 'tandem_xconf_requests_total') ?? 0;

  beforeAll(async () => {
    const [m, o, c] = freeDisplays(3, 300);
    Object.assign(d, { master: `:${m}`, other: `:${o}`, conf: `:${c}` });
    dir = mkdtempSync(join(tmpdir(), 'xconf-metrics-'));
    sock = join(dir, 'ctl', 'ctl.sock');
    master = await startXvfb(m!, '320x240x24');
    other = await startXvfb(o!, '320x240x24');
    daemon = start(process.execPath, [
      ...nodeArgs,
      '--display',
      d.conf,
      '--master',
      d.master,
      '--participant',
      d.other,
      '--focus-trigger',
      'none',
      '--socket',
      sock,
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    await waitFor(
      'daemon ready',
      async () => {
        if (daemon!.child.exitCode !== null) throw new Error(`daemon exited: ${daemon!.output()}`);
        return daemon!.output().includes('tandem-xconf: ready');
      },
      30_000,
    );
    url = /tandem-xconf: metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(daemon.output())![1]!;
    xauthority = /applications need the cookie in (\S+)/.exec(daemon.output())![1]!;
  });

  afterAll(async () => {
    kill(daemon, 'SIGTERM');
    await daemon?.exited;
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

  it('serves every named series on loopback, with one conference of two participants and no application', async () => {
    const t = await scrape();
    for (const name of XCONF_METRIC_NAMES) expect(t, name).toContain(`# TYPE ${name} `);
    expect(t).toContain('# TYPE tandem_xconf_late_join_replay_seconds histogram');
    expect(t).toContain('process_cpu_seconds_total');
    expect(sample(t, 'tandem_xconf_conferences')).toBe(1);
    expect(sample(t, 'tandem_xconf_participants', { conference: 'default' })).toBe(2);
    expect(sample(t, 'tandem_xconf_applications', { conference: 'default' })).toBe(0);
    expect(requests(t)).toBe(0);
    expect(sample(t, 'tandem_xconf_late_joins_total')).toBe(0);
    for (const category of ['draw-or-change', 'query-display', 'query-server', 'input-devices', 'init-resource-ids'])
      expect(sample(t, 'tandem_xconf_requests_total', { category })).toBe(0);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
  });

  it('requests, bytes per participant and dropped replies grow as real X clients run', async () => {
    const before = await scrape();
    const { pid } = (await ctl({ cmd: 'launch', conference: 'default', argv: ['xlogo'] })) as { pid: number };
    pids.push(pid);
    await waitFor('xlogo on both participants', async () => {
      return (await findWindows(d.master, 'xlogo')).length > 0 && (await findWindows(d.other, 'xlogo')).length > 0;
    });
    const withLogo = await scrape();
    expect(sample(withLogo, 'tandem_xconf_applications', { conference: 'default' })).toBe(1);
    expect(requests(withLogo)).toBeGreaterThan(requests(before));
    expect(sample(withLogo, 'tandem_xconf_requests_total', { category: 'draw-or-change' })).toBeGreaterThan(0);
    expect(sample(withLogo, 'tandem_xconf_requests_total', { category: 'init-resource-ids' })).toBeGreaterThan(0);
    for (const participant of [d.master, d.other])
      for (const direction of ['in', 'out'])
        expect(
          sample(withLogo, 'tandem_xconf_participant_bytes_total', { participant, direction }),
          `${participant} ${direction}`,
        ).toBeGreaterThan(0);
    // InternAtom goes to both servers and only the master's reply reaches xlogo.
    expect(sample(withLogo, 'tandem_xconf_dropped_total', { kind: 'reply', reason: 'not-responder' })).toBeGreaterThan(0);
    expect(sample(withLogo, 'tandem_xconf_forwarded_total', { kind: 'reply' })).toBeGreaterThan(0);

    // A second, short-lived client: its requests are counted after it has gone too.
    const info = await run('xdpyinfo', [], { DISPLAY: d.conf, XAUTHORITY: xauthority });
    expect(info.code).toBe(0);
    const after = await scrape();
    expect(requests(after)).toBeGreaterThan(requests(withLogo));
    expect(sample(after, 'tandem_xconf_requests_total', { category: 'query-server' })).toBeGreaterThan(
      sample(withLogo, 'tandem_xconf_requests_total', { category: 'query-server' })!,
    );
    expect(sample(after, 'tandem_xconf_applications', { conference: 'default' })).toBe(1);
    const outBytes = sample(after, 'tandem_xconf_participant_bytes_total', { participant: d.other, direction: 'out' })!;
    expect(outBytes).toBeGreaterThan(sample(withLogo, 'tandem_xconf_participant_bytes_total', { participant: d.other, direction: 'out' })!);
  });

  it('a focus change and a late join are counted; the replay time is observed', async () => {
    const before = await scrape();
    expect(sample(before, 'tandem_xconf_focus_changes_total')).toBe(0);
    await ctl({ cmd: 'focus', conference: 'default', participant: d.other });
    const focused = await scrape();
    expect(sample(focused, 'tandem_xconf_focus_changes_total')).toBe(1);

    await ctl({ cmd: 'leave', conference: 'default', participant: d.other });
    const left = await scrape();
    expect(sample(left, 'tandem_xconf_participants', { conference: 'default' })).toBe(1);
    // The focus fell back to the master: another change.
    expect(sample(left, 'tandem_xconf_focus_changes_total')).toBe(2);
    // The bytes of a participant that left stay counted (counters never go down).
    expect(sample(left, 'tandem_xconf_participant_bytes_total', { participant: d.other, direction: 'out' })).toBeGreaterThanOrEqual(
      sample(focused, 'tandem_xconf_participant_bytes_total', { participant: d.other, direction: 'out' })!,
    );

    await ctl({ cmd: 'join', conference: 'default', participant: d.other });
    await waitFor('xlogo replayed on the newcomer', async () => (await findWindows(d.other, 'xlogo')).length > 0);
    const joined = await scrape();
    expect(sample(joined, 'tandem_xconf_participants', { conference: 'default' })).toBe(2);
    expect(sample(joined, 'tandem_xconf_late_joins_total')).toBe(1);
    expect(sample(joined, 'tandem_xconf_late_join_failures_total')).toBe(0);
    expect(sample(joined, 'tandem_xconf_late_join_replay_seconds_count')).toBe(1);
    expect(sample(joined, 'tandem_xconf_late_join_replay_seconds_sum')).toBeGreaterThan(0);
    expect(sample(joined, 'tandem_xconf_late_join_replay_seconds_bucket', { le: '+Inf' })).toBe(1);
  });
});
