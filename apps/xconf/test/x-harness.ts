// Helpers for end-to-end tests with real Xvfb servers and unmodified X clients.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

/** Binaries the e2e suite needs, and the Debian packages that provide them. */
export const X_TOOLS: Record<string, string> = {
  Xvfb: 'xvfb',
  xlogo: 'x11-apps',
  xclock: 'x11-apps',
  xeyes: 'x11-apps',
  xwd: 'x11-apps',
  xdpyinfo: 'x11-utils',
  xwininfo: 'x11-utils',
  xprop: 'x11-utils',
  xdotool: 'xdotool',
  xterm: 'xterm',
};

export function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

export function missingTools(): { missing: string[]; install: string } {
  const missing = Object.keys(X_TOOLS).filter((b) => !onPath(b));
  const pkgs = [...new Set(missing.map((b) => X_TOOLS[b]!))];
  return { missing, install: `apt-get update && apt-get install -y ${pkgs.join(' ')}` };
}

/** Display numbers with neither a socket nor a lock file, from `from` upward. */
export function freeDisplays(count: number, from = 91): number[] {
  const out: number[] = [];
  for (let n = from; out.length < count && n < from + 400; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) out.push(n);
  }
  if (out.length < count) throw new Error('no free X display numbers');
  return out;
}

/**
 * True if the X tools are installed. If not: under CI=true it registers a failing test
 * ("xconf <suite> prerequisites"); otherwise it prints a loud SKIPPING line with the install command.
 * Suites then use `describe.skipIf(!haveX)`.
 */
export function requireXTools(suite: string): boolean {
  const tools = missingTools();
  if (tools.missing.length === 0) return true;
  const msg = `xconf ${suite}: missing ${tools.missing.join(', ')}. Install with: ${tools.install}`;
  if (process.env.CI === 'true') {
    describe(`xconf ${suite} prerequisites`, () => {
      it('has Xvfb and the X clients installed', () => {
        throw new Error(msg);
      });
    });
  } else {
    console.warn(`\n*** SKIPPING the xconf ${suite} suite — ${msg}\n`);
  }
  return false;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

export function start(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return { child, output: () => out, exited };
}

/** Runs a command to completion (bounded); resolves with its exit code and output, never rejects. */
export function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        res({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() });
      },
    );
  });
}

/** Runs a command returning raw stdout bytes. */
export function runBytes(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((res, rej) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout: 10_000, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' },
      (err, stdout) => (err ? rej(err) : res(stdout)),
    );
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface XvfbProc extends Proc {
  readonly display: number;
}

/** Kills an Xvfb by pid and removes the lock and socket it leaves behind (only if the lock is its own). */
export async function stopXvfb(p: XvfbProc | undefined): Promise<void> {
  if (!p) return;
  kill(p);
  await p.exited;
  const lock = `/tmp/.X${p.display}-lock`;
  try {
    if (Number(readFileSync(lock, 'latin1').trim()) === p.child.pid) {
      rmSync(lock, { force: true });
      rmSync(`/tmp/.X11-unix/X${p.display}`, { force: true });
    }
  } catch {
    /* no lock left */
  }
}

export async function startXvfb(n: number, screen: string, extra: string[] = [], probeEnv: Record<string, string> = {}): Promise<XvfbProc> {
  const p = start('Xvfb', [`:${n}`, '-screen', '0', screen, '-noreset', '-nolisten', 'tcp', ...extra]);
  await waitFor(`Xvfb :${n}`, async () => {
    if (p.child.exitCode !== null) throw new Error(`Xvfb :${n} exited: ${p.output()}`);
    return (await run('xdpyinfo', [], { DISPLAY: `:${n}`, ...probeEnv }, 3000)).code === 0;
  });
  return { ...p, display: n };
}

export function kill(p: Proc | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (p?.child.pid !== undefined && p.child.exitCode === null && p.child.signalCode === null) {
    try {
      process.kill(p.child.pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export interface WindowInfo {
  id: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Top-level windows on a display whose WM_CLASS/name line mentions `name` (from xwininfo -root -tree). */
export async function findWindows(display: string, name: string): Promise<WindowInfo[]> {
  const r = await run('xwininfo', ['-root', '-tree'], { DISPLAY: display });
  const out: WindowInfo[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s+(0x[0-9a-f]+) "([^"]*)": \(([^)]*)\)\s+(\d+)x(\d+)\+(-?\d+)\+(-?\d+)\s+\+(-?\d+)\+(-?\d+)/.exec(line);
    if (m && (m[2] === name || m[3]!.includes(`"${name}"`))) {
      out.push({ id: parseInt(m[1]!, 16), width: Number(m[4]), height: Number(m[5]), x: Number(m[8]), y: Number(m[9]) });
    }
  }
  return out;
}

/** An xwd screenshot decoded to 0xRRGGBB values, whatever the depth. */
export interface Rgb {
  width: number;
  height: number;
  pixel(x: number, y: number): number;
}

export function decodeXwd(b: Buffer): Rgb {
  const h = (i: number): number => b.readUInt32BE(4 * i);
  const headerSize = h(0);
  const width = h(4);
  const height = h(5);
  const byteOrder = h(7); // 0 LSBFirst
  const bpp = h(11);
  const bpl = h(12);
  const masks = [h(14), h(15), h(16)];
  const ncolors = h(19);
  const data = headerSize + ncolors * 12;
  const scale = (v: number, mask: number): number => {
    if (mask === 0) return 0;
    let shift = 0;
    while (((mask >>> shift) & 1) === 0) shift++;
    const max = mask >>> shift;
    return Math.round((((v & mask) >>> shift) * 255) / max);
  };
  return {
    width,
    height,
    pixel(x, y) {
      const off = data + y * bpl + (x * bpp) / 8;
      let v: number;
      if (bpp === 32) v = byteOrder === 0 ? b.readUInt32LE(off) : b.readUInt32BE(off);
      else if (bpp === 16) v = byteOrder === 0 ? b.readUInt16LE(off) : b.readUInt16BE(off);
      else throw new Error(`unsupported bits per pixel ${bpp}`);
      return (scale(v, masks[0]!) << 16) | (scale(v, masks[1]!) << 8) | scale(v, masks[2]!);
    },
  };
}

export async function screenshot(display: string): Promise<Rgb> {
  return decodeXwd(await runBytes('xwd', ['-root', '-silent'], { DISPLAY: display }));
}

/** Pixels of a rectangle that differ between two screenshots (count, first position). */
export function diffRegion(
  a: Rgb,
  b: Rgb,
  r: { x: number; y: number; width: number; height: number },
): { differing: number; first: string | null } {
  let differing = 0;
  let first: string | null = null;
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) {
      if (a.pixel(x, y) !== b.pixel(x, y)) {
        differing++;
        first ??= `(${x},${y}) ${a.pixel(x, y).toString(16)} vs ${b.pixel(x, y).toString(16)}`;
      }
    }
  }
  return { differing, first };
}

/** Types `text` and Return into window `w` on one display: pointer over it and that display's keyboard focus set to it. */
export async function typeInto(display: string, w: WindowInfo, text: string): Promise<void> {
  const env = { DISPLAY: display };
  await run('xdotool', ['mousemove', String(w.x + 20), String(w.y + 20)], env);
  await run('xdotool', ['windowfocus', String(w.id)], env);
  await run('xdotool', ['type', '--delay', '15', text], env);
  await run('xdotool', ['key', 'Return'], env);
}

/** A file's text, or '' while it does not exist yet (e.g. what an application under test wrote so far). */
export function textOf(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}
