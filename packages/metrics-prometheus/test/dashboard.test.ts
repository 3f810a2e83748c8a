// docs/grafana/tandem-replication.json only queries series this package registers (a renamed series would
// leave a dashboard panel empty without anyone noticing).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_METRIC_NAMES, REPLICA_METRIC_NAMES, STATE_TRANSFER_METRIC_NAMES } from '../src/index.js';

const KNOWN = new Set<string>([...REPLICA_METRIC_NAMES, ...CLIENT_METRIC_NAMES, ...STATE_TRANSFER_METRIC_NAMES]);

describe('the Grafana dashboard', () => {
  it('queries only series that exist', () => {
    const file = join(import.meta.dirname, '..', '..', '..', 'docs', 'grafana', 'tandem-replication.json');
    const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const p of dashboard.panels)
      for (const t of p.targets) for (const m of t.expr.matchAll(/\btandem_[a-z_]+/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
    const unknown = [...used].filter((n) => !KNOWN.has(n));
    expect(unknown).toEqual([]);
    expect(used.has('tandem_replica_requests_total')).toBe(true);
  });
});
