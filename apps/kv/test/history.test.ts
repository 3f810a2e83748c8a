/**
 * A history recorded from real processes (`tandem-kv demo --history FILE`: primary and backup as child
 * processes, SIGKILL of the primary mid-load, takeover, rejoin) is read back from the file and checked by
 * @tandem/testkit's linearizability checker — the same checker the simulator uses.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKvHistory, parseKvHistory } from '@tandem/testkit';
import { runDemo } from '../src/commands/demo.js';

describe('tandem-kv demo --history FILE', () => {
  it('records a real-process history across a failover that the linearizability checker accepts', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tandem-kv-history-')), 'history.json');
    const r = await runDemo({ json: true, clients: 3, durationS: 3, transport: 'tcp', history: file, replication: {} });
    expect({ lost: r.lost, duplicated: r.duplicated, epoch: r.epoch }).toEqual({ lost: 0, duplicated: 0, epoch: 2 });

    const history = parseKvHistory(JSON.parse(readFileSync(file, 'utf8')));
    const puts = history.filter((h) => h.op !== 'get' && h.return !== undefined).length;
    const gets = history.filter((h) => h.op === 'get' && h.return !== undefined).length;
    expect(puts).toBeGreaterThan(50);
    expect(gets).toBeGreaterThan(10);
    const report = checkKvHistory(history);
    expect(report.verdict, JSON.stringify(report.failure ?? {}).slice(0, 2000)).toBe('linearizable');
    expect(report.operations).toBe(history.filter((h) => !(h.op === 'get' && h.return === undefined)).length);
  }, 120_000);
});
