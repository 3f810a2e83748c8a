#!/usr/bin/env node
import { parseFocusTrigger } from '@tandem/xconference';
import { startXconf } from './daemon.js';

const USAGE = `usage: tandem-xconf --display :N --master DISPLAY [--participant DISPLAY]... [--focus-trigger ctrl+alt+f|button|button1..5|none] [--tcp] [--quiet]

Listens as X display :N (unix socket /tmp/.X11-unix/XN, and TCP 6000+N with --tcp) and shares every
application that connects with the master and the participants' X servers.`;

function parseArgs(argv: string[]): { display: string; master: string; participants: string[]; trigger: string; tcp: boolean; quiet: boolean } {
  const out = { display: '', master: '', participants: [] as string[], trigger: 'ctrl+alt+f', tcp: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--display') out.display = value();
    else if (a === '--master') out.master = value();
    else if (a === '--participant') out.participants.push(value());
    else if (a === '--focus-trigger') out.trigger = value();
    else if (a === '--tcp') out.tcp = true;
    else if (a === '--quiet') out.quiet = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!out.display || !out.master) throw new Error('--display and --master are required');
  return out;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`tandem-xconf: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const log = args.quiet ? undefined : (line: string): void => console.error(line);
  const daemon = await startXconf({
    display: args.display,
    master: args.master,
    participants: args.participants,
    trigger: parseFocusTrigger(args.trigger),
    tcp: args.tcp,
    log,
  });
  console.log(`tandem-xconf: ready on ${args.display}`);
  const stop = (): void => void daemon.close('signal');
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const reason = await daemon.closed;
  console.error(`tandem-xconf: ${reason}`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(`tandem-xconf: ${(err as Error).message}`);
  process.exit(1);
});
