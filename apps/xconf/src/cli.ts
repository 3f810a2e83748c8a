#!/usr/bin/env node
import { parseFocusTrigger } from '@tandem/xconference';
import { ConfigError, configFromFlags, loadConfig, type XconfConfig } from './config.js';
import { CTL_USAGE, formatCtlResult, parseCtlArgs } from './ctl-args.js';
import { ctlRequest } from './ctl-client.js';
import { CtlError } from './ctl-protocol.js';
import { defaultCtlSocket } from './ctl-server.js';
import { XconfServer } from './daemon.js';

const USAGE = `usage:
  tandem-xconf --display :N --master DISPLAY [--participant DISPLAY]... [--focus-trigger SPEC] [--tcp]
               [--require-cookie] [--socket PATH] [--busy-poll-us N] [--quiet]
  tandem-xconf serve --config FILE [--socket PATH] [--busy-poll-us N] [--quiet]
  tandem-xconf ctl [--socket PATH] [--json] COMMAND …     (tandem-xconf ctl --help)

The first form runs one conference: it listens as X display :N (unix socket /tmp/.X11-unix/XN, and TCP
127.0.0.1:6000+N with --tcp) and shares every application that connects with the master's and the
participants' X servers; the daemon exits when the master leaves. --require-cookie makes applications
present the conference's MIT-MAGIC-COOKIE-1 (start them with \`tandem-xconf ctl launch default -- CMD\`).

\`serve --config FILE\` runs several conferences, each on its own display, with the participants,
permissions (start / join / launch), tokens and focus triggers of the JSON configuration file; it keeps
running when a conference closes. See docs/XCONFERENCE.md ("Running several conferences").

SPEC (focus-switch trigger): a key chord such as ctrl+alt+f (consumed), button or button1..button5 (a
click from a non-focus participant, forwarded), or none (only \`tandem-xconf ctl focus\`).
Control socket (default ${defaultCtlSocket()}): mode 0600 in a 0700 directory.
--busy-poll-us N: after each write the daemon polls its sockets without sleeping for N µs (default 50),
saving the process wake-ups a relay adds to each round trip; 0 turns it off (see docs/XCONFERENCE.md).`;

interface Flags {
  display: string;
  master: string;
  participants: string[];
  trigger: string;
  tcp: boolean;
  quiet: boolean;
  requireCookie: boolean;
  socket: string | undefined;
  config: string | undefined;
  busyPollMicros: number | undefined;
}

function parseArgs(argv: string[], serve: boolean): Flags {
  const out: Flags = { display: '', master: '', participants: [], trigger: 'ctrl+alt+f', tcp: false, quiet: false, requireCookie: false, socket: undefined, config: undefined, busyPollMicros: undefined };
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
    else if (a === '--busy-poll-us') {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n > 1_000_000) throw new Error(`--busy-poll-us needs a whole number of microseconds from 0 to 1000000, got ${v}`);
      out.busyPollMicros = n;
    }
    else if (serve && a === '--config') out.config = value();
    else if (!serve && a === '--display') out.display = value();
    else if (!serve && a === '--master') out.master = value();
    else if (!serve && a === '--participant') out.participants.push(value());
    else if (!serve && a === '--focus-trigger') out.trigger = value();
    else if (!serve && a === '--tcp') out.tcp = true;
    else if (!serve && a === '--require-cookie') out.requireCookie = true;
    else throw new Error(`unknown argument ${a}`);
  }
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
      : configFromFlags({ display: flags.display, master: flags.master, participants: flags.participants, trigger: flags.trigger, tcp: flags.tcp, requireCookie: flags.requireCookie });
  } catch (err) {
    if (err instanceof ConfigError) console.error(`tandem-xconf: ${err.message}`);
    else console.error(`tandem-xconf: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const log = flags.quiet ? () => {} : (line: string): void => console.error(line);
  let resolveDone!: (reason: string) => void;
  const done = new Promise<string>((r) => (resolveDone = r));
  const server = await XconfServer.start(config, {
    log,
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
  const names = [...server.conferences.values()].map((h) => `${h.name} on ${h.display}`).join(', ');
  console.log(serve ? `tandem-xconf: ready (${names || 'no conferences yet'})${server.ctlPath ? `; ctl ${server.ctlPath}` : ''}` : `tandem-xconf: ready on ${flags.display}`);
  const stop = (): void => resolveDone('signal');
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const reason = await done;
  await server.close(reason);
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
