/**
 * `tandem-kv upgrade`: a rolling upgrade of a running primary/backup pair with no failed request.
 *
 *   1. inspect      ask both replicas their role (one must be primary, the other backup)
 *   2. stop-backup  stop the backup; the primary serves alone meanwhile
 *   3. new-backup   start the new version in its place as backup; it receives the primary's state
 *                   (migrated from the old version by versionedStateSync) and joins → primary + backup
 *   4. failover     stop the old primary; the new-version backup takes over (clients retry transparently)
 *   5. new-other    start the new version at the old primary's address as backup of the new primary
 *
 * The sequence is `rollingUpgrade(servers, control)`; the CLI's control stops replicas by process id
 * (SIGTERM, SIGKILL after a grace period) and starts new ones as detached processes.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Role } from '@tandem/core';
import { probeReplica } from '../role-probe.js';
import { createTransportRegistry, UsageError } from '../transports.js';

/** The steps of a rolling upgrade, in order. */
export type UpgradePhase = 'inspect' | 'stop-backup' | 'new-backup' | 'failover' | 'new-other' | 'done';

/** How the upgrade sees and drives the replicas (the CLI: network probe + pids; tests: child processes). */
export interface UpgradeControl {
  /** The replica's current role, or undefined when it does not answer. */
  role(address: string): Promise<Role | undefined>;
  /** Stop the old-version replica at `address` and wait until it is gone. */
  stop(address: string): Promise<void>;
  /** Start the new version at `address` as backup of `peer` (returns a description, e.g. its pid). */
  start(address: string, peer: string): Promise<string>;
}

/** Options of rollingUpgrade: the per-phase timeout and a progress callback. */
export interface UpgradeOptions {
  /** Longest wait for each phase's condition (default 30 000 ms). */
  phaseTimeoutMs?: number;
  /** Called as each phase starts, with a line saying what it does. */
  onPhase?: (phase: UpgradePhase, detail: string) => void;
}

/** Where a rolling upgrade left the pair: the primary and backup addresses, and the processes it started. */
export interface UpgradeResult {
  /** The address serving as primary at the end (the old backup's). */
  primary: string;
  backup: string;
  started: string[];
}

/** A rolling upgrade could not go on: a phase timed out or the replicas were not in the expected roles. */
export class UpgradeError extends Error {
  static override readonly name = 'UpgradeError';
  override readonly name = 'UpgradeError';
}

const SERVING: readonly (Role | undefined)[] = ['primary', 'solo-primary'];

async function waitUntil(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new UpgradeError(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Upgrade a running pair one replica at a time without downtime: replace the backup, fail over to it, then replace the other. */
export async function rollingUpgrade(
  servers: readonly [string, string],
  control: UpgradeControl,
  opts: UpgradeOptions = {},
): Promise<UpgradeResult> {
  const timeout = opts.phaseTimeoutMs ?? 30_000;
  const phase = opts.onPhase ?? (() => undefined);
  const [ra, rb] = await Promise.all([control.role(servers[0]), control.role(servers[1])]);
  let primary: string;
  let backup: string;
  if (ra === 'primary' && rb === 'backup') [primary, backup] = servers;
  else if (rb === 'primary' && ra === 'backup') [backup, primary] = servers;
  else
    throw new UpgradeError(
      `the pair is not primary + backup (${servers[0]}: ${ra ?? 'not answering'}, ${servers[1]}: ${rb ?? 'not answering'}); upgrade needs a healthy pair`,
    );
  phase('inspect', `primary ${primary}, backup ${backup}`);

  phase('stop-backup', `stopping the backup at ${backup}; ${primary} serves alone meanwhile`);
  await control.stop(backup);
  await waitUntil(`${backup} is gone`, async () => (await control.role(backup)) === undefined, timeout);

  const started: string[] = [];
  started.push(await control.start(backup, primary));
  phase('new-backup', `started the new version at ${backup} (${started[0]}) as backup; waiting until it has the state`);
  await waitUntil(
    `${backup} is backup of ${primary}`,
    async () => (await control.role(backup)) === 'backup' && (await control.role(primary)) === 'primary',
    timeout,
  );
  phase('new-backup', `${backup} is backup (state received and migrated)`);

  phase('failover', `stopping the old primary at ${primary}; ${backup} takes over`);
  await control.stop(primary);
  await waitUntil(`${backup} serves`, async () => SERVING.includes(await control.role(backup)), timeout);
  phase('failover', `${backup} is primary`);

  started.push(await control.start(primary, backup));
  phase('new-other', `started the new version at ${primary} (${started[1]}) as backup; waiting until it has joined`);
  await waitUntil(
    `${primary} is backup of ${backup}`,
    async () => (await control.role(primary)) === 'backup' && (await control.role(backup)) === 'primary',
    timeout,
  );
  phase('done', `primary ${backup}, backup ${primary}, both on the new version`);
  return { primary: backup, backup: primary, started };
}

// ------------------------------------------------------------------------------------------ CLI

export interface UpgradeCliOptions {
  servers: [string, string];
  /** Process ids of the running replicas, in the order of `servers`. */
  pids: [number, number];
  /** Command that starts the new version's `serve` (flags --listen/--peer/--role/--replication are appended). */
  exec: string[];
  replication: Record<string, unknown>;
  logDir: string;
  json: boolean;
  stopGraceMs: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
}

/** Split a command line on whitespace, keeping "double" or 'single' quoted words together. */
export function splitCommand(line: string): string[] {
  const words = line.match(/"[^"]*"|'[^']*'|\S+/g) ?? [];
  return words.map((w) => (/^(["']).*\1$/.test(w) ? w.slice(1, -1) : w));
}

export async function runUpgradeCli(o: UpgradeCliOptions): Promise<UpgradeResult> {
  const network = createTransportRegistry();
  const pidOf = new Map<string, number>([
    [o.servers[0], o.pids[0]],
    [o.servers[1], o.pids[1]],
  ]);
  const say = (event: string, fields: Record<string, unknown>, human: string): void => {
    process.stdout.write(o.json ? JSON.stringify({ event, ...fields }) + '\n' : human + '\n');
  };
  const control: UpgradeControl = {
    role: async (address) => (await probeReplica(network, address, 1000))?.role,
    stop: async (address) => {
      const pid = pidOf.get(address);
      if (pid === undefined) throw new UpgradeError(`no process id for ${address}`);
      await stopPid(pid, o.stopGraceMs);
    },
    start: async (address, peer) => {
      const [cmd, ...args] = o.exec;
      const logFile = join(o.logDir, `tandem-kv-${address.replace(/[^a-zA-Z0-9]+/g, '_')}-${Date.now()}.log`);
      const fd = openSync(logFile, 'a');
      const child = spawn(
        cmd!,
        [...args, '--listen', address, '--peer', peer, '--role', 'backup', '--replication', JSON.stringify(o.replication)],
        {
          detached: true,
          stdio: ['ignore', fd, fd],
        },
      );
      child.unref();
      if (child.pid === undefined) throw new UpgradeError(`could not start ${cmd}`);
      pidOf.set(address, child.pid);
      say('started', { address, pid: child.pid, log: logFile }, `  started pid ${child.pid} at ${address} (log ${logFile})`);
      return `pid ${child.pid}`;
    },
  };
  return rollingUpgrade(o.servers, control, {
    onPhase: (phase, detail) => say('phase', { phase, detail }, `[upgrade] ${phase}: ${detail}`),
  });
}

/** The default log directory for the processes `upgrade` starts. */
export function defaultUpgradeLogDir(): string {
  return tmpdir();
}

export function parsePids(v: string | undefined): [number, number] {
  const parts = (v ?? '').split(',').map((s) => s.trim());
  if (parts.length !== 2 || !parts.every((p) => /^\d+$/.test(p) && Number(p) > 0)) {
    throw new UsageError("upgrade needs --pids PID_A,PID_B (the running replicas' process ids, in the order of --servers)");
  }
  return [Number(parts[0]), Number(parts[1])];
}
