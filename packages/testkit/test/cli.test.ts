// The tools/sim command lines, run as real processes: the seed runner (exit codes, replay command) and
// check-history on recorded history files.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..', '..');

function run(script: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=@tandem/source', '--import', 'tsx', join(root, 'tools/sim', script), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('tools/sim runner', () => {
  it('passes a few seeds of the correct protocol with exit code 0', () => {
    const r = run('main.ts', ['--seeds', '4', '--from', '11', '--workers', '2']);
    expect(r.out).toContain('[sim] PASS: all 4 seeds passed');
    expect(r.out).toMatch(/worst latency after a disruption: [\d.]+ ms \(seed \d+; its bound \d+ ms\)/);
    expect(r.code).toBe(0);
  });

  it('prints each failing seed with the command that replays it, and exits 1; the replay fails the same way', () => {
    const r = run('main.ts', ['--seeds', '40', '--from', '1', '--variant', 'seq-digest-host-crash']);
    expect(r.code).toBe(1);
    const m = /✗ seed (\d+) FAILED[^\n]*trace ([0-9a-f]+:\d+)\)/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const [, seed, trace] = m!;
    expect(r.out).toContain(`replay: npm run sim -- --seeds 1 --from ${seed} --variant seq-digest-host-crash`);
    expect(r.out).toMatch(/\[sim\] FAIL: \d+ of 40 seeds failed/);
    const replay = run('main.ts', ['--seeds', '1', '--from', seed!, '--variant', 'seq-digest-host-crash']);
    expect(replay.code).toBe(1);
    expect(replay.out).toContain(`✗ seed ${seed} FAILED`);
    expect(replay.out).toContain(`trace ${trace})`);
  });

  it('draws from chosen fault kinds (--faults), reports false alarms and the serve gap, lists the fault kinds', () => {
    const r = run('main.ts', ['--seeds', '3', '--from', '1', '--faults', 'stall-backup,crash-backup', '--no-load']);
    expect(r.out).toContain('[sim] faults drawn from: stall-backup, crash-backup');
    expect(r.out).toMatch(/\[sim\] longest time with no replica answering after a fault: [\d.]+ ms \(seed \d+; serve bound 505 ms\)/);
    expect(r.out).toMatch(
      /\[sim\] peer-faulty alarms: \d+ \(\d+ with the peer down, paused or cut off; \d+ with the peer's event loop stalled\); FALSE alarms \(peer up, stalls excluded\): \d+ in \d+ seeds/,
    );
    expect(r.code).toBe(0);
    const list = run('main.ts', ['--list-faults']);
    expect(list.out).toMatch(/crash-primary-after-drop\s+default/);
    expect(list.out).toMatch(/crash-primary-while-joining\s+own variant \(lost-state\)/);
    expect(run('main.ts', ['--seeds', '1', '--faults', 'nope']).code).toBe(2);
  });

  it('rejects bad usage with exit code 2', () => {
    const r = run('main.ts', ['--seeds', 'many']);
    expect(r.code).toBe(2);
    expect(r.out).toContain('--seeds needs an integer');
  });
});

describe('check-history CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-history-'));
  const file = (name: string, content: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };

  it('accepts a linearizable history (exit 0)', () => {
    const p = file('good.json', [
      { client: 'a', op: 'put', key: 'x', value: '1', call: 0, return: 5 },
      { client: 'b', op: 'get', key: 'x', value: '1', call: 6, return: 7 },
      { client: 'c', op: 'append', key: 'x', value: '2', call: 8 },
    ]);
    const r = run('check-history.ts', [p]);
    expect(r.out).toContain('LINEARIZABLE');
    expect(r.out).toContain('3 operations (1 with unknown outcome)');
    expect(r.code).toBe(0);
  });

  it('rejects a stale read with an explanation (exit 1), also through `npm run sim -- check-history`', () => {
    const p = file('bad.json', [
      { client: 'a', op: 'put', key: 'x', value: '1', call: 0, return: 1 },
      { client: 'a', op: 'put', key: 'x', value: '2', call: 2, return: 3 },
      { client: 'b', op: 'get', key: 'x', value: '1', call: 4, return: 5 },
    ]);
    for (const r of [run('check-history.ts', [p]), run('main.ts', ['check-history', p])]) {
      expect(r.out).toContain('NOT LINEARIZABLE');
      expect(r.out).toContain('get → "1"');
      expect(r.code).toBe(1);
    }
  });

  it('reports a malformed file (exit 2)', () => {
    const r = run('check-history.ts', [file('malformed.json', [{ client: 'a', op: 'cas', key: 'x', value: '1', call: 0 }])]);
    expect(r.out).toContain('[0].op');
    expect(r.code).toBe(2);
    expect(run('check-history.ts', [file('notjson.json', '{oops')]).code).toBe(2);
  });
});
