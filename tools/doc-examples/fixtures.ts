/**
 * Fixtures a block asks for with `<!-- doc-example: needs="xvfb:3,etcd" -->`: real Xvfb servers on free
 * display numbers and a single-member etcd on free 127.0.0.1 ports, started before the block and stopped by
 * pid after it. They reuse the test suites' launchers (apps/xconf/test/x-harness.ts,
 * @tandem/testkit's startEtcd). What the block sees, as environment variables:
 *   xvfb:N   DISPLAY_1 … DISPLAY_N (`:150`, … — above the test suites' :91…), FREE_DISPLAY (a number with neither socket nor lock, for a
 *            daemon to listen on, e.g. `:95`), FREE_DISPLAY_2 (another), XDG_RUNTIME_DIR (a new private folder: the block's own
 *            default ctl socket, so blocks side by side do not meet)
 *   etcd     ETCD (`etcd://127.0.0.1:PORT`), ETCD_ENDPOINT (`127.0.0.1:PORT`)
 * A missing system package is reported with its install command: `missing` (the runner fails under CI=true
 * and lists the block as not run otherwise).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EtcdServer, etcdMissingReason, startEtcd } from '@tandem/testkit';
import { freeDisplays, missingTools, startXvfb, stopXvfb, type XvfbProc } from '../../apps/xconf/test/x-harness.js';
import type { Need } from './extract.js';

export interface Fixtures {
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Why the fixtures cannot be started here (with the install command), or undefined. */
export function fixturesMissing(needs: Need[]): string | undefined {
  const reasons: string[] = [];
  if (needs.some((n) => n.kind === 'xvfb')) {
    const x = missingTools();
    if (x.missing.length > 0) reasons.push(`missing ${x.missing.join(', ')}. Install with: ${x.install}`);
  }
  if (needs.some((n) => n.kind === 'etcd')) {
    const e = etcdMissingReason();
    if (e !== undefined) reasons.push(e);
  }
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

// Display numbers handed out by this runner (blocks of different documents run side by side).
const taken = new Set<number>();

/** Xvfb on `n`, or (when another process took it meanwhile) on the next free numbers: three tries. */
async function startXvfbRetrying(n: number): Promise<XvfbProc> {
  let lastError: unknown;
  for (let attempt = 0, display = n; attempt < 3; attempt++) {
    try {
      return await startXvfb(display, '1024x768x24');
    } catch (err) {
      lastError = err;
      display = freeDisplays(1 + taken.size, display + 1).find((d) => !taken.has(d)) ?? display + 1;
      taken.add(display);
    }
  }
  throw lastError;
}

export async function startFixtures(needs: Need[]): Promise<Fixtures> {
  const xvfbs: XvfbProc[] = [];
  const etcds: EtcdServer[] = [];
  const reserved: number[] = [];
  const dirs: string[] = [];
  const env: Record<string, string> = {};
  const stop = async (): Promise<void> => {
    for (const x of xvfbs) await stopXvfb(x);
    for (const e of etcds) await e.stop();
    for (const n of reserved) taken.delete(n);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (const need of needs) {
      if (need.kind === 'etcd') {
        const e = await startEtcd();
        etcds.push(e);
        env.ETCD = `etcd://${e.hostPort}`;
        env.ETCD_ENDPOINT = e.hostPort;
        continue;
      }
      // From :150 up, away from the test suites' :91…; a number taken meanwhile by another process is skipped.
      const numbers = freeDisplays(need.count + 2 + taken.size, 150)
        .filter((n) => !taken.has(n))
        .slice(0, need.count + 2);
      for (const n of numbers) taken.add(n);
      reserved.push(...numbers);
      for (const [i, n] of numbers.slice(0, need.count).entries()) {
        xvfbs.push(await startXvfbRetrying(n));
        env[`DISPLAY_${i + 1}`] = `:${(xvfbs.at(-1) as XvfbProc).display}`;
      }
      env.FREE_DISPLAY = `:${numbers[need.count]}`;
      env.FREE_DISPLAY_2 = `:${numbers[need.count + 1]}`;
      const runtime = mkdtempSync(join(tmpdir(), 'tandem-doc-xdg-')); // mode 0700
      dirs.push(runtime);
      env.XDG_RUNTIME_DIR = runtime;
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, stop };
}
