/** Named validators for JSON blocks (`<!-- doc-example: schema="NAME" -->`): the apps' own parsers. */
import { parseShardMap } from '../../apps/kv/src/shards.js';
import { serveConfigSchema } from '../../apps/kv/src/config-file.js';
import { parseConfig } from '../../apps/xconf/src/config.js';

export interface Schema {
  /** undefined when valid, else what is wrong. */
  check(value: unknown): string | undefined;
}

const fromThrow =
  (parse: (v: unknown) => unknown): Schema['check'] =>
  (value) => {
    try {
      parse(value);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };

export const SCHEMAS: Record<string, Schema> = {
  /** A shard map (`tandem-kv --shards FILE`, the etcd shard map). */
  'kv-shard-map': { check: fromThrow((v) => parseShardMap(v)) },
  /** `tandem-kv serve --config FILE`. */
  'kv-serve-config': {
    check: (v) => {
      const r = serveConfigSchema.safeParse(v);
      return r.success ? undefined : r.error.message;
    },
  },
  /** A Prometheus scrape configuration (the parts the docs use: scrape_configs with static targets). */
  'prometheus-scrape': {
    check: (v) => {
      const jobs = (v as { scrape_configs?: unknown })?.scrape_configs;
      if (!Array.isArray(jobs) || jobs.length === 0) return 'scrape_configs must be a non-empty list';
      for (const j of jobs as { job_name?: unknown; static_configs?: { targets?: unknown }[] }[]) {
        if (typeof j.job_name !== 'string') return 'every scrape config needs a job_name';
        for (const sc of j.static_configs ?? []) {
          if (!Array.isArray(sc.targets) || !sc.targets.every((t) => typeof t === 'string' && /^[\w.-]+:\d+$/.test(t)))
            return `${j.job_name}: targets must be HOST:PORT strings`;
        }
      }
      return undefined;
    },
  },
  /** `tandem-xconf serve --config FILE`. */
  'xconf-config': { check: fromThrow((v) => parseConfig(v)) },
};
