// A throwaway npm registry (verdaccio) for `npm run check:publish`.
//
// verdaccio is not a workspace dependency (327 packages, ~58 MB that every `npm ci` would install for one
// check): ensureVerdaccio() installs the version pinned by tools/release/verdaccio/package-lock.json with
// `npm ci` into a cache folder keyed by that lockfile's hash (~/.cache/tandem/verdaccio-<hash>, or
// $TANDEM_VERDACCIO_DIR), from the machine's configured npm registry, once per machine.
//
// startRegistry() runs it on a free 127.0.0.1 port with a fresh config and storage: @tandem/* packages are
// local only (never proxied, so what installs was published here), everything else proxies to the machine's
// npm registry. stop() ends it by pid (SIGTERM, then SIGKILL); a process 'exit' hook does the same.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@tandem/testkit/chaos';

const here = dirname(fileURLToPath(import.meta.url));
const pinned = join(here, 'verdaccio');

/** The verdaccio version pinned in tools/release/verdaccio/package.json. */
export const VERDACCIO_VERSION = JSON.parse(readFileSync(join(pinned, 'package.json'), 'utf8')).dependencies.verdaccio;

/** The registry npm uses on this machine (`npm config get registry`), with a trailing slash. */
export function machineRegistry(cwd) {
  const url = execFileSync('npm', ['config', 'get', 'registry'], { cwd, encoding: 'utf8' }).trim();
  return url.endsWith('/') ? url : `${url}/`;
}

/** Installs the pinned verdaccio into the cache folder unless it is there; returns the path of its bin. */
export function ensureVerdaccio(log = console.log) {
  const lock = readFileSync(join(pinned, 'package-lock.json'));
  const hash = createHash('sha256')
    .update(lock)
    .update(readFileSync(join(pinned, 'package.json')))
    .digest('hex')
    .slice(0, 12);
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const dir = resolve(process.env.TANDEM_VERDACCIO_DIR || join(cacheRoot, 'tandem', `verdaccio-${VERDACCIO_VERSION}-${hash}`));
  const bin = join(dir, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  if (existsSync(join(dir, '.complete')) && existsSync(bin)) {
    log(`verdaccio ${VERDACCIO_VERSION} from the cache: ${dir}`);
    return bin;
  }
  // Install next to the final folder and rename at the end, so an interrupted install is never taken as done.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  copyFileSync(join(pinned, 'package.json'), join(partial, 'package.json'));
  copyFileSync(join(pinned, 'package-lock.json'), join(partial, 'package-lock.json'));
  log(`installing verdaccio ${VERDACCIO_VERSION} (npm ci of tools/release/verdaccio/package-lock.json) into ${dir}`);
  execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: partial,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  });
  writeFileSync(join(partial, '.complete'), `${new Date().toISOString()}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(partial, dir);
  return bin;
}

/** verdaccio's config: @tandem/* local only (publish allowed to anyone), the rest proxied to `uplink`. */
export function verdaccioConfig({ storage, uplink }) {
  return [
    `storage: ${JSON.stringify(storage)}`,
    'auth:',
    '  htpasswd:',
    `    file: ${JSON.stringify(join(storage, 'htpasswd'))}`,
    '    max_users: -1',
    'uplinks:',
    '  machine:',
    `    url: ${JSON.stringify(uplink)}`,
    '    timeout: 60s',
    '    max_fails: 5',
    'packages:',
    "  '@tandem/*':",
    '    access: $all',
    '    publish: $all',
    '    unpublish: $all',
    "  '**':",
    '    access: $all',
    '    publish: $authenticated',
    '    proxy: machine',
    'web:',
    '  enable: false',
    'max_body_size: 200mb',
    'log: { type: stdout, format: pretty, level: warn }',
    '',
  ].join('\n');
}

async function ping(url) {
  try {
    const res = await fetch(new URL('-/ping', url), { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Starts verdaccio in `work` (config, storage and log there). Resolves with { url, pid, logFile, stop }
 * once it answers /-/ping. stop() is idempotent and resolves when the process has exited.
 */
export async function startRegistry({ bin, work, uplink, log = console.log, readyTimeoutMs = 60_000 }) {
  const storage = join(work, 'storage');
  mkdirSync(storage, { recursive: true });
  const config = join(work, 'verdaccio.yaml');
  writeFileSync(config, verdaccioConfig({ storage, uplink }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const logFile = join(work, 'verdaccio.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    cwd: work,
    stdio: ['ignore', out, out],
  });
  let running = true;
  const exited = new Promise((resolveExit) =>
    child.once('exit', (code, signal) => {
      running = false;
      resolveExit({ code, signal });
    }),
  );
  const killNow = () => {
    if (running) child.kill('SIGKILL');
  };
  process.on('exit', killNow);
  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', killNow);
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => running && child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      log(`verdaccio (pid ${child.pid}) stopped`);
    })();
    return stopping;
  };
  log(`verdaccio ${VERDACCIO_VERSION} (pid ${child.pid}) starting at ${url}, uplink ${uplink} for everything but @tandem/*`);
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await ping(url))) {
    if (!running) {
      const { code, signal } = await exited;
      throw new Error(`verdaccio exited before answering (${code ?? signal}); its log:\n${readFileSync(logFile, 'utf8')}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`verdaccio did not answer ${url}-/ping within ${readyTimeoutMs} ms; its log:\n${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, pid: child.pid, logFile, stop };
}
