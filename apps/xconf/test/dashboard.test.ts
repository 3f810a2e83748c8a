// docs/grafana/tandem-xconf.json shows every series tandem-xconf serves and queries no other (a renamed
// series would leave a panel empty without anyone noticing).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { XCONF_METRIC_NAMES } from '../src/metrics.js';

describe('the xconf Grafana dashboard', () => {
  it('queries every xconf series, and only those', () => {
    const file = join(import.meta.dirname, '..', '..', '..', 'docs', 'grafana', 'tandem-xconf.json');
    const dashboard = JSON.parse(readFileSync(file, 'utf8')) as {
      uid: string;
      templating: { list: { query: string }[] };
      panels: { targets: { expr: string }[] }[];
    };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query)];
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\btandem_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
    const known = new Set<string>(XCONF_METRIC_NAMES);
    expect([...used].filter((n) => !known.has(n))).toEqual([]);
    expect(XCONF_METRIC_NAMES.filter((n) => !used.has(n))).toEqual([]);
    expect(dashboard.uid).toBe('tandem-xconf');
  });
});
