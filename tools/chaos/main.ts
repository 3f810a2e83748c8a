/**
 * `npm run chaos -- [options]`: two real `tandem-kv serve` replicas on loopback, C clients flat out, a
 * nemesis that kills or pauses the primary or the backup N times without waiting for full recovery;
 * then one report. Exit 0 only when nothing was lost or duplicated, the history is linearizable, and
 * there were no stalls and no false alarms (see tools/chaos/README.md).
 */
import { openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ReplicationConfig } from '@tandem/core';
import { formatChaosReport, runChaos, type NemesisMode, type RestartMode } from '../../packages/testkit/src/chaos/index.js';
import { kvChaosTarget } from './kv-target.js';

const HELP = `npm run chaos -- [options]

  --kills N               nemesis actions (kills and/or stops), default 10
  --clients C             concurrent clients, each running flat out, default 4
  --nemesis M             kill (SIGKILL, then restart) | stop (SIGSTOP, SIGCONT after the worst-case
                          failover + margin) | mixed (default)
  --restart R             how a killed replica comes back: serve (--role backup) | rejoin | alternate
                          (default) | random
  --targets T             primary | backup | both (default)
  --seed S                the nemesis' choices (default: random, printed)
  --transport T           tcp (default) | ws | zmq
  --replication JSON      replication settings for the replicas and the clients, e.g. '{"heartbeatTimeoutMs":200}'
  --outage-abort-ms MS    end the run after MS without any successful reply (default 20000)
  --log-level L           the replicas' protocol log on their stderr (default warn; tails go into stall records)
  --events FILE           write every replica event (run time in "at", node, generation) as JSON lines
  --json                  one JSON object on stdout (progress stays on stderr)
  --verbose               per-action records in the report
  --no-build              do not build tandem-kv first (run.mjs)
  --extra-serve-args ...  everything after it is appended to every serve / rejoin command line

The nemesis never kills or pauses a replica while the other one holds no state (has not become backup
since its restart or resume): with the primary gone and the other replica empty, acknowledged writes
are lost in any primary/backup system.
Exit: 0 pass · 1 fail (lost, duplicated, not linearizable, stalls, false alarms, …) · 2 usage · 130 interrupted`;

function usage(msg: string): never {
  process.stderr.write(`chaos: ${msg}\n\n${HELP}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const extraAt = argv.indexOf('--extra-serve-args');
const extraServeArgs = extraAt >= 0 ? argv.slice(extraAt + 1) : [];
let flags: Record<string, string | boolean | undefined>;
try {
  flags = parseArgs({
    args: extraAt >= 0 ? argv.slice(0, extraAt) : argv,
    options: {
      kills: { type: 'string' },
      clients: { type: 'string' },
      nemesis: { type: 'string' },
      restart: { type: 'string' },
      targets: { type: 'string' },
      seed: { type: 'string' },
      transport: { type: 'string' },
      replication: { type: 'string' },
      'outage-abort-ms': { type: 'string' },
      'log-level': { type: 'string' },
      events: { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (err) {
  usage((err as Error).message);
}
if (flags.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}

function int(name: string, fallback: number, min: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer ≥ ${min}, got "${String(raw)}"`);
  return n;
}
function oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (!allowed.includes(raw as T)) usage(`--${name} must be ${allowed.join(' | ')}, got "${String(raw)}"`);
  return raw as T;
}

const kills = int('kills', 10, 0);
const clients = int('clients', 4, 1);
const nemesis = oneOf<NemesisMode>('nemesis', ['kill', 'stop', 'mixed'], 'mixed');
const restart = oneOf<RestartMode>('restart', ['serve', 'rejoin', 'alternate', 'random'], 'alternate');
const targets = oneOf('targets', ['primary', 'backup', 'both'] as const, 'both');
const transport = oneOf('transport', ['tcp', 'ws', 'zmq'] as const, 'tcp');
const logLevel = oneOf('log-level', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'warn');
const seed = flags.seed === undefined ? undefined : int('seed', 0, 0);
const outageAbortMs = int('outage-abort-ms', 20_000, 1000);
let replication: Partial<ReplicationConfig> = {};
if (flags.replication !== undefined) {
  try {
    const v = JSON.parse(String(flags.replication)) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    replication = v as Partial<ReplicationConfig>;
  } catch (err) {
    usage(`--replication must be a JSON object: ${(err as Error).message}`);
  }
}

const controller = new AbortController();
let interrupts = 0;
const onSignal = (sig: NodeJS.Signals): void => {
  interrupts++;
  if (interrupts === 1) {
    process.stderr.write(`\nchaos: ${sig}: stopping the replicas and reporting what was seen (again to quit at once)\n`);
    controller.abort();
  } else process.exit(130); // the exit hook SIGKILLs every replica still running
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const log = (line: string): void => void process.stderr.write(line + '\n');
const eventsFile = flags.events === undefined ? undefined : openSync(String(flags.events), 'w');
try {
  const report = await runChaos(kvChaosTarget({ transport, replication, extraServeArgs, logLevel, log }), {
    actions: kills,
    clients,
    nemesis,
    restart,
    targets,
    ...(seed !== undefined ? { seed } : {}),
    outageAbortMs,
    verbose: flags.verbose === true,
    ...(eventsFile !== undefined
      ? { onEvent: (e) => writeSync(eventsFile, JSON.stringify({ ...e, at: Math.round(e.at * 10) / 10 }) + '\n') }
      : {}),
    signal: controller.signal,
    log,
  });
  const code = report.ended === 'interrupted' ? 130 : report.ok ? 0 : 1;
  // Exit once the report is out: after an interrupt, clients may still be retrying against the stopped
  // replicas (their calls end at callDeadlineMs), and nothing else is left to do.
  process.stdout.write((flags.json ? JSON.stringify(report) : formatChaosReport(report)) + '\n', () => process.exit(code));
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
