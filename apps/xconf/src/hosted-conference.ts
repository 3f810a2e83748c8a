// One conference served on one X display: the display socket (and TCP port), its lock file, the launch
// cookie gate, and a monitor connection that notices when the master's server goes away.
import { existsSync, lstatSync, readFileSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { Conference, unsupportedVisual, type FocusTrigger, type LateJoinInfo, type Upstream } from '@tandem/xconference';
import { connectServer, type ConnectedServer } from '@tandem/xconference/internal';
import { parseDisplay, unixSocketPath } from './display.js';
import { gateApplication, newCookie, writeXauthority } from './launch-auth.js';
import {
  abstractSocketListening,
  abstractXSocketName,
  listenOwnerOnly,
  prepareX11SocketDirectory,
  socketAcceptsConnections,
} from './unix-socket.js';

/** A participant of a hosted conference: its name, display and how to reach its X server. */
export interface HostedParticipant {
  readonly name: string;
  readonly display: string;
  readonly upstream: Upstream;
}

/** Options of HostedConference.start: name, display, participants, focus trigger, TCP, cookie file, allow-list, logging, tuning. */
export interface HostOptions {
  readonly name: string;
  /** The display the conference serves, `:N`. */
  readonly display: string;
  readonly master: HostedParticipant;
  readonly participants: readonly HostedParticipant[];
  readonly trigger: FocusTrigger;
  readonly tcp?: boolean;
  /**
   * Where to write the conference's Xauthority file: applications must present the cookie written there.
   * `null` admits every application that can connect, without a cookie (a warning is printed); there is
   * no default, so that no caller opens a conference by leaving the field out.
   */
  readonly xauthorityPath: string | null;
  /** Who may join later (by name); undefined = anyone allowed to join. */
  readonly allow?: readonly string[] | undefined;
  /** Receives the conference's log lines (default: none). */
  readonly log?: (line: string) => void;
  /** Security warnings (a conference without a cookie); default: `log`. */
  readonly warn?: (line: string) => void;
  /** Busy-poll budget after each write, µs (ConferenceOptions.busyPollMicros). */
  readonly busyPollMicros?: number | undefined;
  /** A new application's wait for each participant's setup reply (ConferenceOptions.setupTimeoutMs). */
  readonly setupTimeoutMs?: number | undefined;
  /** Called after each successful late join (ConferenceOptions.onLateJoin). */
  readonly onLateJoin?: ((info: LateJoinInfo) => void) | undefined;
}

/** A Conference served on its own X display (Unix socket, optional TCP port, cookie file), as the daemon runs it. */
export class HostedConference {
  readonly name: string;
  readonly display: string;
  readonly displayNumber: number;
  readonly socketPath: string;
  readonly conference: Conference;
  readonly trigger: FocusTrigger;
  readonly allow: readonly string[] | undefined;
  /** The file with the conference's cookie for launched applications, or null when no cookie is required. */
  readonly xauthorityPath: string | null;
  /** Resolves with the reason when the conference closes. */
  readonly closed: Promise<string>;
  private readonly members = new Map<string, HostedParticipant>();
  private readonly masterName: string;
  private readonly servers: Server[] = [];
  private readonly lockPath: string;
  private monitor: Socket | null = null;
  /** Set once the display's socket path and lock are this conference's to remove. */
  private ownsDisplay = false;
  private resolveClosed!: (reason: string) => void;

  private constructor(opts: HostOptions) {
    const d = parseDisplay(opts.display);
    this.name = opts.name;
    this.display = `:${d.number}`;
    this.displayNumber = d.number;
    this.socketPath = unixSocketPath(d.number);
    this.lockPath = `/tmp/.X${d.number}-lock`;
    this.trigger = opts.trigger;
    this.allow = opts.allow;
    this.xauthorityPath = opts.xauthorityPath;
    this.masterName = opts.master.name;
    for (const p of [opts.master, ...opts.participants]) this.members.set(p.name, p);
    this.closed = new Promise<string>((r) => (this.resolveClosed = r));
    const log = opts.log ?? (() => {});
    this.conference = new Conference({
      participants: [opts.master.upstream, ...opts.participants.map((p) => p.upstream)],
      trigger: opts.trigger,
      log: (line) => log(`[${this.name}] ${line}`),
      onClose: (reason) => this.cleanup(reason),
      busyPollMicros: opts.busyPollMicros,
      setupTimeoutMs: opts.setupTimeoutMs,
      onLateJoin: opts.onLateJoin,
    });
  }

  /** Claims the display, connects the master's monitor and starts listening. */
  static async start(opts: HostOptions): Promise<HostedConference> {
    const host = new HostedConference(opts);
    try {
      await claimDisplay(host.displayNumber, host.socketPath, host.lockPath);
      host.ownsDisplay = true;
      // The colour depths seen by these first connections are noted for `ctl status`.
      const noteDepth = (name: string, setup: ConnectedServer['setup']): void => {
        host.conference.participantCounters(name).depth = setup.screens[0]?.rootDepth ?? null;
      };
      host.monitor = await openMonitor(opts.master.upstream, (setup) => noteDepth(opts.master.name, setup));
      await refuseUnsupportedParticipants(opts.participants, noteDepth);
      const masterLeft = (): void => host.conference.close(`master ${opts.master.name} (${opts.master.display}) left the conference`);
      host.monitor.on('close', masterLeft);
      host.monitor.on('error', masterLeft);
      let onConnection: (sock: Socket) => void;
      if (opts.xauthorityPath !== null) {
        const cookie = newCookie();
        writeXauthority(opts.xauthorityPath, host.displayNumber, cookie);
        const admit = (sock: Socket, setup: Buffer): void => void host.conference.addApplication(sock, setup);
        onConnection = (sock) => gateApplication(sock, cookie, admit, { log: opts.log, label: `[${host.name}]` });
      } else {
        onConnection = (sock) => void host.conference.addApplication(sock);
      }
      // The display socket: only this user (and root) may connect; every X client of the user can.
      const unixServer = createServer(onConnection);
      host.servers.push(unixServer);
      await listenOwnerOnly(unixServer, host.socketPath);
      if (opts.tcp) {
        // Loopback only: every local process (of any user) can connect; none from another host.
        const tcpServer = createServer(onConnection);
        host.servers.push(tcpServer);
        await listen(tcpServer, (s, cb) => s.listen(6000 + host.displayNumber, '127.0.0.1', cb));
      }
    } catch (err) {
      host.conference.close(`could not start: ${(err as Error).message}`);
      throw err;
    }
    const others = opts.participants.map((p) => `${p.name} (${p.display})`).join(', ') || '(none)';
    opts.log?.(
      `[${host.name}] display ${host.display} → master ${opts.master.name} (${opts.master.display}), participants ${others}; focus trigger ${opts.trigger.label}` +
        (host.xauthorityPath ? `; applications need the conference cookie (${host.xauthorityPath})` : '; NO cookie required'),
    );
    if (host.xauthorityPath === null) {
      (opts.warn ?? opts.log)?.(
        noCookieWarning({
          name: host.name,
          display: host.display,
          socketPath: host.socketPath,
          tcpPort: opts.tcp ? 6000 + host.displayNumber : null,
          participants: [opts.master, ...opts.participants].map((p) => p.display),
        }),
      );
    }
    return host;
  }

  /** True once the conference has closed. */
  get isClosed(): boolean {
    return this.conference.isClosed;
  }

  /** The master participant. */
  get master(): HostedParticipant {
    return this.members.get(this.masterName)!;
  }

  /** Participants in the conference, master first. */
  get participants(): HostedParticipant[] {
    return this.conference.participantNames.map((n) => this.members.get(n)).filter((p): p is HostedParticipant => p !== undefined);
  }

  /** True when the participant is in the conference now. */
  has(name: string): boolean {
    return this.conference.participantNames.includes(name);
  }

  /** A participant joins: it is shown every open application (late join) and every later one. */
  async join(p: HostedParticipant): Promise<void> {
    this.members.set(p.name, p);
    await this.conference.addParticipant(p.upstream);
  }

  /** A participant leaves; the master leaving closes the conference. */
  leave(name: string): boolean {
    return this.conference.removeParticipant(name);
  }

  /** Close the conference; resolves with the reason once its sockets and files are removed. */
  close(reason: string): Promise<string> {
    this.conference.close(reason);
    return this.closed;
  }

  private cleanup(reason: string): void {
    this.monitor?.destroy();
    for (const s of this.servers) s.close();
    if (this.xauthorityPath) rmSync(this.xauthorityPath, { force: true });
    if (this.ownsDisplay) rmSync(this.socketPath, { force: true });
    try {
      if (readFileSync(this.lockPath, 'latin1').trim() === String(process.pid)) rmSync(this.lockPath, { force: true });
    } catch {
      /* already gone */
    }
    this.resolveClosed(reason);
  }
}

/**
 * What the daemon prints when a conference admits applications without a cookie: who can connect, and what
 * an application they connect can do.
 */
export function noCookieWarning(c: {
  readonly name: string;
  readonly display: string;
  readonly socketPath: string;
  readonly tcpPort: number | null;
  readonly participants: readonly string[];
  readonly user?: { readonly uid: number; readonly username: string } | undefined;
}): string {
  const user = c.user ?? currentUser();
  const owner = user === undefined ? 'this user' : user.uid === 0 ? 'root' : `user "${user.username}" (uid ${user.uid}) or root`;
  const tcp = c.tcpPort !== null ? `, and every local process of any user to 127.0.0.1:${c.tcpPort}` : '';
  return (
    `tandem-xconf: WARNING: conference "${c.name}" on ${c.display} admits X applications WITHOUT a cookie (--no-cookie / requireCookie: false). ` +
    `Every process running as ${owner} can connect to ${c.socketPath}${tcp}; any of them can open windows on every participant's display ` +
    `(${c.participants.join(', ')}) and read that display's input — the keys and clicks of whoever has the input focus, its selections and its ` +
    `screen contents — as an X client of each participant's server. Leave the cookie on (drop --no-cookie, or set requireCookie: true) unless all of them are trusted.`
  );
}

function currentUser(): { uid: number; username: string } | undefined {
  try {
    const u = userInfo();
    return { uid: u.uid, username: u.username };
  } catch {
    return undefined;
  }
}

async function claimDisplay(n: number, socketPath: string, lockPath: string): Promise<void> {
  prepareX11SocketDirectory();
  // libxcb connects to this abstract name before trying the socket file: whoever listens there gets the
  // display's applications (and their cookies). A real X server holds it; so may one whose file was removed.
  if (abstractSocketListening(abstractXSocketName(n))) {
    throw new Error(
      `display :${n} is in use: a process listens on the abstract socket ${abstractXSocketName(n)}, which X clients try before ${socketPath}`,
    );
  }
  let lock: Stats | undefined;
  try {
    lock = lstatSync(lockPath);
  } catch {
    lock = undefined;
  }
  // A symlink (even a dangling one) is not followed: the daemon would write its pid wherever it points.
  if (lock && !lock.isFile())
    throw new Error(`display :${n}: ${lockPath} is not a regular file (a symlink?); remove it if no X server uses :${n}`);
  if (lock) {
    const pid = Number(readFileSync(lockPath, 'latin1').trim());
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (alive && pid !== process.pid) throw new Error(`display :${n} is in use (lock ${lockPath}, pid ${pid})`);
    if (alive && pid === process.pid) throw new Error(`display :${n} is already served by this daemon`);
    rmSync(lockPath, { force: true });
  }
  if (existsSync(socketPath)) {
    const inUse = await socketAcceptsConnections(socketPath);
    if (inUse) throw new Error(`display :${n} is in use (${socketPath} accepts connections)`);
    rmSync(socketPath, { force: true });
  }
  try {
    // O_EXCL: never through a symlink someone put there, and never over a lock another server just took.
    writeFileSync(lockPath, `${String(process.pid).padStart(10)}\n`, { flag: 'wx', mode: 0o444 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`display :${n} is in use (lock ${lockPath} was created meanwhile)`);
    throw err;
  }
}

function listen(server: Server, start: (s: Server, cb: () => void) => void): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    start(server, () => {
      server.removeListener('error', rej);
      server.on('error', () => {});
      res();
    });
  });
}

/** Connects to the master and completes setup (within SETUP_MS); the returned socket stays open as a
 * presence monitor. A master whose default visual is not TrueColor is refused (see unsupportedVisual). */
async function openMonitor(up: Upstream, onSetup: (setup: ConnectedServer['setup']) => void): Promise<Socket> {
  let connected: ConnectedServer;
  try {
    connected = await connectServer(up, 'LE', SETUP_MS);
  } catch (err) {
    throw new Error(`cannot connect to master ${(err as Error).message}`);
  }
  const refused = unsupportedVisual(connected.setup);
  if (refused !== undefined) {
    connected.socket.destroy();
    throw new Error(`master ${up.name} cannot host a conference: ${refused}`);
  }
  onSetup(connected.setup);
  connected.socket.on('data', () => {}); // events for the monitor are ignored
  return connected.socket;
}

/** A participant whose server answers with a default visual that is not TrueColor is refused at the start
 * (an unreachable, slow or garbled one is not: it is left out of the applications it cannot join in time).
 * Every probe connection is closed: answered, failed or timed out after PROBE_MS. */
async function refuseUnsupportedParticipants(
  participants: readonly HostedParticipant[],
  onSetup: (name: string, setup: ConnectedServer['setup']) => void,
): Promise<void> {
  const probes = participants.map((p) =>
    connectServer(p.upstream, 'LE', PROBE_MS).then(
      ({ socket, setup }) => {
        socket.destroy();
        const refused = unsupportedVisual(setup);
        if (refused === undefined) onSetup(p.name, setup);
        return refused === undefined ? undefined : `participant ${p.name} (${p.display}) cannot join: ${refused}`;
      },
      () => undefined,
    ),
  );
  const refusals = (await Promise.all(probes)).filter((r) => r !== undefined);
  if (refusals.length > 0) throw new Error(refusals.join('; '));
}

const PROBE_MS = 3000;
/** The master's setup reply: past this the conference does not start. */
const SETUP_MS = 10_000;
