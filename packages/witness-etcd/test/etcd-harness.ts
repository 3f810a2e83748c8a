// Real-etcd test helpers: a loud skip (or, under CI=true, a failing test) when /usr/bin/etcd is missing.
import { etcdMissingReason } from '@tandem/testkit';
import { describe, it } from 'vitest';

/**
 * True if etcd is installed. If not: under CI=true it registers a failing test ("<suite> prerequisites");
 * otherwise it prints a loud SKIPPING line with the install command. Suites use `describe.skipIf(!haveEtcd)`.
 */
export function requireEtcd(suite: string): boolean {
  const missing = etcdMissingReason();
  if (missing === undefined) return true;
  const msg = `${suite}: ${missing}`;
  if (process.env.CI === 'true') {
    describe(`${suite} prerequisites`, () => {
      it('has etcd installed (Debian etcd-server)', () => {
        throw new Error(msg);
      });
    });
  } else {
    console.warn(`\n*** SKIPPING the ${suite} suite — ${msg}\n`);
  }
  return false;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A Logger that keeps its lines (and prints them when TANDEM_TEST_LOG is set). */
export function memoryLogger(): { log(level: string, event: string, fields?: Record<string, unknown>): void; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log(level, event, fields) {
      const line = `${level} ${event} ${JSON.stringify(fields ?? {})}`;
      lines.push(line);
      if (process.env.TANDEM_TEST_LOG) console.log(line);
    },
  };
}
