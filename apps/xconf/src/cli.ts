#!/usr/bin/env node
import { isMetricsPrometheusError, serveMetrics, type MetricsServer } from '@tandem/metrics-prometheus';
import { parseFocusTrigger } from '@tandem/xconference';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError, configFromFlags, loadConfig, type XconfConfig } from './config.js';
import { CTL_USAGE, formatCtlResult, parseCtlArgs } from './ctl-args.js';
import { ctlRequest } from './ctl-client.js';
import { CtlError } from './ctl-protocol.js';
import { defaultCtlSocket } from './ctl-server.js';
import { XconfServer } from './daemon.js';
import { xconfMetrics } from './metrics.js';

const USAGE = `usage:
  tandem-xconf --display :N --master DISPLAY [--participant DISPLAY]... [--focus-trigger SPEC] [--tcp]
               [--no-cookie] [--socket PATH] [--busy-poll-us N] [--metrics-listen HOST:PORT] [--quiet]
  tandem-xconf serve --config FILE [--socket PATH] [--busy-poll-us N] [--metrics-listen HOST:PORT] [--quiet]
  tandem-xconf ctl [--socket PATH] [--json] COMMAND …     (tandem-xconf ctl --help)

The first form runs one conference: it listens as X display :N (unix socket /tmp/.X11-unix/XN, mode 0600,
and TCP 127.0.0.1:6000+N with --tcp) and shares every application that connects with the master's and
the participants' X servers; the daemon exits when the master leaves.

Applications must present the conference's MIT-MAGIC-COOKIE-1, which the daemon generates and writes to
an Xauthority file (mode 0600) beside the ctl socket; it prints the file's path when ready. Start them
with \`tandem-xconf ctl launch default -- CMD\`, or with XAUTHORITY=<that file> DISPLAY=:N. Any other
application gets the X refusal "authorization required" and is disconnected.
--no-cookie admits every application that can connect, without a cookie: it can open windows on every
participant's display and read their input (keys, clicks, selections, screen contents). The daemon
prints a warning. --require-cookie is accepted and does nothing (the cookie is the default).

\`serve --config FILE\` runs several conferences, each on its own display, with the participants,
permissions (start / join / launch), tokens, focus triggers and cookie setting (requireCookie, true by
default) of the JSON configuration file; it keeps running when a conference closes. See
docs/XCONFERENCE.md ("Running several conferences", "Access control").

SPEC (focus-switch trigger): a key chord such as ctrl+alt+f (consumed), button or button1..button5 (a
click from a non-focus participant, forwarded), or none (only \`tandem-xconf ctl focus\`).
Control socket (default ${defaultCtlSocket()}): mode 0600 in a 0700 directory.
--busy-poll-us N: after each write the daemon polls its sockets without sleeping for N µs (default 50),
saving the process wake-ups a relay adds to each round trip; 0 turns it off (see docs/XCONFERENCE.md).
--metrics-listen HOST:PORT: serve Prometheus metrics (tandem_xconf_*) at http://HOST:PORT/metrics; loopback
only (127.0.0.1, ::1, localhost), since the endpoint is unauthenticated; port 0 picks a free port (printed).
\`tandem-xconf ctl status [--json]\` shows the same counts per conference.`;

interface Flags {
  display: string;
  master: string;
  participants: string[];
  trigger: string;
  tcp: boolean;
  quiet: boolean;
  /** --no-cookie given. */
  noCookie: boolean;
  /** --require-cookie given (the default; kept for old scripts). */
  requireCookie: boolean;
  socket: string | undefined;
  config: string | undefined;
  busyPollMicros: number | undefined;
  metricsListen: string | undefined;
}

function parseArgs(argv: string[], serve: boolean): Flags {
  const out: Flags = {
    display: '',
    master: '',
    participants: [],
    trigger: 'ctrl+alt+f',
    tcp: false,
    quiet: false,
    noCookie: false,
    requireCookie: false,
    socket: undefined,
    config: undefined,
    busyPollMicros: undefined,
    metricsListen: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--quiet') out.quiet = true;
    else if (a === '--socket') out.socket = value();
    else if (a === '--metrics-listen') out.metricsListen = value();
    else if (a === '--busy-poll-us') {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n > 1_000_000)
        throw new Error(`--busy-poll-us needs a whole number of microseconds from 0 to 1000000, got ${v}`);
      out.busyPollMicros = n;
    } else if (serve && a === '--config') out.config = value();
    else if (!serve && a === '--display') out.display = value();
    else if (!serve && a === '--master') out.master = value();
    else if (!serve && a === '--participant') out.participants.push(value());
    else if (!serve && a === '--focus-trigger') out.trigger = value();
    else if (!serve && a === '--tcp') out.tcp = true;
    else if (!serve && a === '--require-cookie') out.requireCookie = true;
    else if (!serve && a === '--no-cookie') out.noCookie = true;
    else if (serve && (a === '--no-cookie' || a === '--require-cookie'))
      throw new Error(
        `${a} is for the command-line conference; with serve --config, set "requireCookie" per conference (and in "runtime")`,
      );
    else throw new Error(`unknown argument ${a}`);
  }
  if (out.noCookie && out.requireCookie) throw new Error('--no-cookie and --require-cookie contradict each other');
  if (serve && !out.config) throw new Error('serve needs --config FILE');
  if (!serve && (!out.display || !out.master)) throw new Error('--display and --master are required');
  if (!serve) parseFocusTrigger(out.trigger); // a bad trigger is a usage error
  return out;
}

async function runDaemon(argv: string[], serve: boolean): Promise<void> {
  let flags: Flags;
  let config: XconfConfig;
  try {
    flags = parseArgs(argv, serve);
    config = serve
      ? loadConfig(flags.config!)
      : configFromFlags({
          display: flags.display,
          master: flags.master,
          participants: flags.participants,
          trigger: flags.trigger,
          tcp: flags.tcp,
          requireCookie: !flags.noCookie,
        });
  } catch (err) {
    if (err instanceof ConfigError) console.error(`tandem-xconf: ${err.message}`);
    else console.error(`tandem-xconf: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const log = flags.quiet ? () => {} : (line: string): void => console.error(line);
  // Security warnings are printed even with --quiet.
  const warn = (line: string): void => console.error(line);
  // The metrics endpoint listens before any conference starts: an address it refuses starts nothing.
  const registry = new Registry();
  let metrics: MetricsServer | undefined;
  if (flags.metricsListen !== undefined) {
    try {
      metrics = await serveMetrics(registry, flags.metricsListen);
    } catch (err) {
      console.error(`tandem-xconf: ${(err as Error).message}`);
      // A refused or malformed address is a usage error; a port that cannot be bound is not.
      process.exit(isMetricsPrometheusError(err, 'MetricsListenError') && (err as Error).cause !== undefined ? 1 : 2);
    }
  }
  let resolveDone!: (reason: string) => void;
  const done = new Promise<string>((r) => (resolveDone = r));
  const server = await XconfServer.start(config, {
    log,
    warn,
    ...(flags.socket ? { ctlSocket: flags.socket } : {}),
    // The command-line conference works without a ctl socket (e.g. a second daemon as the same user).
    ctlOptional: !serve,
    // With a configuration, one conference whose master is away does not keep the others from starting.
    keepGoing: serve,
    busyPollMicros: flags.busyPollMicros,
    onConferenceClosed: (_name, reason) => {
      if (!serve) resolveDone(reason);
    },
  });
  if (metrics) {
    collectDefaultMetrics({ register: registry });
    xconfMetrics(registry, server);
    server.metricsUrl = metrics.url;
    console.log(`tandem-xconf: metrics on ${metrics.url}`);
  }
  const names = [...server.conferences.values()].map((h) => `${h.name} on ${h.display}`).join(', ');
  if (serve) console.log(`tandem-xconf: ready (${names || 'no conferences yet'})${server.ctlPath ? `; ctl ${server.ctlPath}` : ''}`);
  else {
    const hosted = server.conferences.get('default');
    const cookie = hosted?.xauthorityPath ?? null;
    const display = hosted?.display ?? flags.display;
    const viaCtl = server.ctlPath
      ? `\`tandem-xconf ctl${server.ctlPath !== defaultCtlSocket() ? ` --socket ${server.ctlPath}` : ''} launch default -- CMD\`, or `
      : '';
    console.log(
      `tandem-xconf: ready on ${display}; ` +
        (cookie
          ? `applications need the cookie in ${cookie} (${viaCtl}XAUTHORITY=${cookie} DISPLAY=${display} CMD)`
          : 'applications need no cookie (--no-cookie)'),
    );
  }
  const stop = (): void => resolveDone('signal');
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const reason = await done;
  await server.close(reason);
  await metrics?.close();
  console.error(`tandem-xconf: ${reason}`);
  process.exit(0);
}

async function runCtl(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    console.log(CTL_USAGE);
    process.exit(argv.length === 0 ? 2 : 0);
  }
  let inv;
  try {
    inv = parseCtlArgs(argv);
  } catch (err) {
    console.error(`tandem-xconf ctl: ${(err as Error).message}\n${CTL_USAGE}`);
    process.exit(2);
  }
  try {
    const result = await ctlRequest(inv.socket ?? defaultCtlSocket(), inv.request);
    console.log(inv.json ? JSON.stringify(result, null, 2) : formatCtlResult(inv.request, result));
    process.exit(0);
  } catch (err) {
    const e = err as Error;
    console.error(`tandem-xconf ctl: ${err instanceof CtlError ? `${err.code}: ` : ''}${e.message}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === 'ctl') await runCtl(rest);
  else if (first === 'serve') await runDaemon(rest, true);
  else await runDaemon(process.argv.slice(2), false);
}

main().catch((err: unknown) => {
  console.error(`tandem-xconf: ${(err as Error).message}`);
  process.exit(1);
});
