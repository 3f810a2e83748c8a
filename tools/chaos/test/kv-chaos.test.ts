// `npm run chaos` for real: a short run against tandem-kv through the CLI (main.ts, no build step), its
// one JSON object on stdout, and the exit code that goes with it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ChaosReport } from '@tandem/testkit/chaos';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // As run.mjs runs it: @tandem/core & co. from their builds, the code the replicas run.
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'tools/chaos/main.ts'), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run chaos (tandem-kv)', () => {
  it('a few kills and pauses of primary and backup under load: one JSON report that passes, exit 0', async () => {
    expect(existsSync(join(root, 'apps/kv/dist/cli.js')), 'tandem-kv is not built: npx nx run kv:build').toBe(true);
    const { code, stdout, stderr } = await runCli([
      '--kills',
      '4',
      '--clients',
      '3',
      '--nemesis',
      'mixed',
      '--seed',
      '7',
      '--json',
      '--verbose',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines, stderr.slice(-3000)).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as ChaosReport;
    expect(Object.keys(r)).toEqual(
      expect.arrayContaining([
        'lost',
        'duplicated',
        'linearizable',
        'stalls',
        'longestOutageMs',
        'falseAlarms',
        'takeoverMs',
        'kills',
        'stops',
        'ops',
        'acked',
        'actions',
        'bounds',
        'rule',
      ]),
    );
    expect(r.kills + r.stops).toBe(4);
    expect(r.actions).toHaveLength(4);
    for (const a of r.actions!) {
      expect(a.peer.heldStateForMs, `action #${a.n} broke the rule: its peer held no state`).not.toBeNull();
      expect(a.endedAt).toBeGreaterThan(a.at);
    }
    expect(r.restarts.serve + r.restarts.rejoin).toBe(r.kills);
    expect(r.bounds.rejoinBoundFrom).toBe('bounds.joinTimeoutMs');
    expect(r.bounds.stallBoundMs).toBe(r.bounds.worstCaseFailoverMs + r.bounds.rejoinBoundMs);
    expect(r.ops).toBeGreaterThan(500);
    expect(r.acked).toBeGreaterThan(0);
    expect(r.takeoverMs).toEqual(expect.objectContaining({ p50: expect.anything(), p99: expect.anything(), max: expect.anything() }));
    expect(stderr).toMatch(/RULE: never kill or pause/);
    // What the run must show on a correct pair (and what today's core sometimes fails: see the report).
    expect(
      {
        ok: r.ok,
        lost: r.lost,
        duplicated: r.duplicated,
        linearizable: r.linearizable,
        stalls: r.stalls,
        falseAlarms: r.falseAlarms,
        code,
      },
      `${r.failures.join('\n')}\n${JSON.stringify({ stalls: r.stallRecords, falseAlarms: r.falseAlarmRecords }).slice(0, 3000)}`,
    ).toEqual({ ok: true, lost: 0, duplicated: 0, linearizable: true, stalls: 0, falseAlarms: 0, code: 0 });
  });

  it('rejects bad options with exit 2 and the usage', async () => {
    const { code, stderr } = await runCli(['--nemesis', 'bite']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--nemesis must be kill \| stop \| mixed/);
  });
});
