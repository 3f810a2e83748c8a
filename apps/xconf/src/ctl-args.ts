// `tandem-xconf ctl …`: command-line arguments → a control request, and the reply → text.
import { CtlError, type ConferenceInfo, type CtlRequest } from './ctl-protocol.js';
import type { XconfStatus } from './status.js';

/** The help text of `tandem-xconf ctl`. */
export const CTL_USAGE = `usage: tandem-xconf ctl [--socket PATH] [--json] COMMAND

Commands (a token can also be given in $TANDEM_XCONF_TOKEN, which keeps it out of the process list):
  list                                            conferences, displays, participants, applications, focus
  status [CONF]                                   the daemon and its conferences: participants (role, colour
                                                  depth, bytes in/out), applications and their focus, requests
  start CONF --master P [--token T] [--display :N] [--focus-trigger SPEC]
                                                  start a conference with participant P as its master
  join CONF P [--token T]                         participant P (name or display) joins; sees open apps
  leave CONF P [--token T]                        P leaves (the master leaving closes the conference)
  focus CONF P [--app ID] [--token T]             P becomes the input focus (of one application or all)
  launch CONF [--as P] [--token T] -- CMD [ARG…]  run CMD on the conference's display with its cookie
  drop CONF APP [--token T]                       close application APP (an id from list) for everyone
  stop CONF [--token T]                           close the conference and its applications`;

export interface CtlInvocation {
  readonly socket: string | undefined;
  readonly json: boolean;
  readonly request: CtlRequest;
}

/** Parses `ctl` arguments; throws CtlError('bad-request') with what is wrong. */
export function parseCtlArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CtlInvocation {
  let socket: string | undefined;
  let json = false;
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let rest: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    if (a === '--json') json = true;
    else if (a.startsWith('--')) {
      const v = argv[++i];
      if (v === undefined) throw new CtlError('bad-request', `${a} needs a value`);
      if (a === '--socket') socket = v;
      else flags.set(a.slice(2), v);
    } else positional.push(a);
  }
  const [cmd, ...args] = positional;
  const token = flags.get('token') ?? (env.TANDEM_XCONF_TOKEN || undefined);
  const allowed = (...names: string[]): void => {
    for (const k of flags.keys()) if (k !== 'token' && !names.includes(k)) throw new CtlError('bad-request', `${cmd} does not take --${k}`);
  };
  const need = (n: number, what: string): void => {
    if (args.length !== n) throw new CtlError('bad-request', `${cmd} takes ${what}`);
  };
  const tok = token !== undefined ? { token } : {};
  let request: CtlRequest;
  switch (cmd) {
    case 'list':
      need(0, 'no arguments');
      allowed();
      request = { cmd: 'list' };
      break;
    case 'status':
      if (args.length > 1) throw new CtlError('bad-request', 'status takes at most a conference name');
      allowed();
      request = args[0] === undefined ? { cmd: 'status' } : { cmd: 'status', conference: args[0] };
      break;
    case 'start': {
      need(1, 'a conference name');
      allowed('master', 'display', 'focus-trigger');
      const master = flags.get('master');
      if (!master) throw new CtlError('bad-request', 'start needs --master PARTICIPANT');
      const display = flags.get('display');
      const trigger = flags.get('focus-trigger');
      request = {
        cmd: 'start',
        conference: args[0]!,
        master,
        ...tok,
        ...(display ? { display } : {}),
        ...(trigger ? { focusTrigger: trigger } : {}),
      };
      break;
    }
    case 'join':
    case 'leave':
      need(2, 'a conference name and a participant');
      allowed();
      request = { cmd, conference: args[0]!, participant: args[1]!, ...tok };
      break;
    case 'focus': {
      need(2, 'a conference name and a participant');
      allowed('app');
      const app = flags.get('app');
      if (app !== undefined && !/^[1-9]\d*$/.test(app))
        throw new CtlError('bad-request', `--app takes an application id (see list), not "${app}"`);
      request = { cmd: 'focus', conference: args[0]!, participant: args[1]!, ...tok, ...(app ? { app: Number(app) } : {}) };
      break;
    }
    case 'launch': {
      need(1, 'a conference name, then -- and the command');
      allowed('as');
      if (!rest || rest.length === 0) throw new CtlError('bad-request', 'launch needs -- and the command to run');
      const as = flags.get('as');
      request = { cmd: 'launch', conference: args[0]!, argv: rest, ...tok, ...(as ? { as } : {}) };
      break;
    }
    case 'drop':
      need(2, 'a conference name and an application id');
      allowed();
      if (!/^[1-9]\d*$/.test(args[1]!)) throw new CtlError('bad-request', `drop takes an application id (see list), not "${args[1]}"`);
      request = { cmd: 'drop', conference: args[0]!, app: Number(args[1]), ...tok };
      break;
    case 'stop':
      need(1, 'a conference name');
      allowed();
      request = { cmd: 'stop', conference: args[0]!, ...tok };
      break;
    default:
      throw new CtlError('bad-request', cmd ? `unknown command "${cmd}"` : 'a command is needed');
  }
  if (rest && cmd !== 'launch') throw new CtlError('bad-request', `${cmd} takes nothing after --`);
  return { socket, json, request };
}

/** Human-readable text for a reply. */
export function formatCtlResult(req: CtlRequest, result: unknown): string {
  const describe = (c: ConferenceInfo): string => {
    const lines = [`${c.name}  display ${c.display}  focus trigger ${c.focusTrigger}${c.requireCookie ? `  cookie ${c.xauthority}` : ''}`];
    for (const p of c.participants) lines.push(`  ${p.name === c.master ? 'master     ' : 'participant'} ${p.name}  ${p.display}`);
    for (const a of c.applications) lines.push(`  app ${a.id}  focus ${a.focus ?? '-'}  on ${a.participants.join(', ')}`);
    return lines.join('\n');
  };
  const r = result as Record<string, unknown>;
  switch (req.cmd) {
    case 'list': {
      const confs = (r.conferences ?? []) as ConferenceInfo[];
      return confs.length ? confs.map(describe).join('\n') : '(no conferences)';
    }
    case 'status':
      return formatStatus(result as XconfStatus);
    case 'start':
    case 'join':
    case 'drop':
      return describe(result as ConferenceInfo);
    case 'leave':
      return 'conferenceClosed' in r
        ? `${String(r.left)} (the master) left: ${String(r.conferenceClosed)}`
        : describe(result as ConferenceInfo);
    case 'focus':
      return `${String(r.focus)} is the input focus of ${String(r.applications)} application(s)`;
    case 'launch':
      return `pid ${String(r.pid)} on ${String(r.display)}`;
    case 'stop':
      return `${String(r.stopped)} stopped`;
  }
}

/** Human-readable `ctl status`: one block per conference, one line per participant and application. */
export function formatStatus(st: XconfStatus): string {
  const lines = [
    `tandem-xconf ${st.version}  pid ${st.pid}  up ${st.uptimeSeconds} s  metrics ${st.metrics ?? 'off'}  conferences ${st.conferences.length}`,
  ];
  for (const c of st.conferences) {
    const requests = Object.entries(c.requests)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `${c.name}  display ${c.display}  focus trigger ${c.focusTrigger}  applications ${c.applications.length}  focus changes ${c.focusChanges}  late joins ${c.lateJoins}${c.lateJoinFailures ? ` (${c.lateJoinFailures} failed)` : ''}`,
      `  requests: ${requests}`,
      `  bytes: in ${formatBytes(c.bytesIn)}, out ${formatBytes(c.bytesOut)}`,
    );
    for (const p of c.participants) {
      lines.push(
        `  ${p.role.padEnd(11)} ${p.name}  ${p.display}  depth ${p.depth ?? '?'}  in ${formatBytes(p.bytesIn)}  out ${formatBytes(p.bytesOut)}`,
      );
    }
    for (const a of c.applications) lines.push(`  app ${a.id}  focus ${a.focus ?? '-'}  on ${a.participants.join(', ')}`);
  }
  return lines.join('\n');
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
