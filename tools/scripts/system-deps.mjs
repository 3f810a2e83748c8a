// System packages some tests need (X conference end-to-end, TLS fixtures, the etcd witness). Shared by test.mjs and the X tests.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Debian package → a file that proves it is installed. */
export const SYSTEM_PACKAGES = {
  xvfb: '/usr/bin/Xvfb',
  'x11-apps': '/usr/bin/xlogo',
  'x11-utils': '/usr/bin/xdpyinfo',
  xdotool: '/usr/bin/xdotool',
  'xcb-proto': '/usr/share/xcb/xproto.xml',
  xterm: '/usr/bin/xterm',
  openssl: '/usr/bin/openssl', // TLS test fixtures are generated at test time
  'etcd-server': '/usr/bin/etcd', // @tandem/witness-etcd and the partition tests run a real etcd
};

export function missingSystemPackages() {
  return Object.entries(SYSTEM_PACKAGES)
    .filter(([, file]) => !existsSync(file))
    .map(([pkg]) => pkg);
}

export function installCommand(pkgs) {
  return `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
}

/**
 * Make sure the system packages are there: install them with apt-get when running as root on Debian.
 * Returns the list still missing afterwards (empty when all is well).
 */
export function ensureSystemPackages({ log = console.error } = {}) {
  let missing = missingSystemPackages();
  if (missing.length === 0) return missing;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const isDebian = existsSync('/etc/debian_version');
  if (isRoot && isDebian) {
    log(`[system-deps] installing missing system packages: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (update.status === 0) {
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
    }
    missing = missingSystemPackages();
  }
  return missing;
}
