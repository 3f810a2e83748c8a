import { existsSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import {
  Conference,
  encodeClientSetup,
  parseServerSetup,
  serverSetupSize,
  type FocusTrigger,
  type Upstream,
} from '@tandem/xconference';
import { parseDisplay, unixSocketPath, upstreamFor } from './display.js';

export interface XconfOptions {
  /** The display the daemon serves, e.g. ":95". */
  readonly display: string;
  /** The master's display (first participant). */
  readonly master: string;
  /** Other participants' displays. */
  readonly participants: readonly string[];
  readonly trigger: FocusTrigger;
  /** Also listen on TCP port 6000+n on 127.0.0.1. */
  readonly tcp?: boolean;
  /** Xauthority file with the servers' cookies (default: $XAUTHORITY). */
  readonly xauthority?: string;
  readonly log?: (line: string) => void;
}

export interface XconfDaemon {
  readonly conference: Conference;
  readonly socketPath: string;
  /** Resolves when the conference closes (the master left, or close() was called). */
  readonly closed: Promise<string>;
  close(reason?: string): Promise<void>;
}

/** Starts tandem-xconf: listens as an X display and connects each application to all participants. */
export async function startXconf(opts: XconfOptions): Promise<XconfDaemon> {
  const log = opts.log ?? (() => {});
  const display = parseDisplay(opts.display);
  const upstreams: Upstream[] = [opts.master, ...opts.participants].map((d) => upstreamFor(d, opts.xauthority ?? process.env.XAUTHORITY));
  const socketPath = unixSocketPath(display.number);
  const lockPath = `/tmp/.X${display.number}-lock`;
  await claimDisplay(display.number, socketPath, lockPath);

  let resolveClosed!: (reason: string) => void;
  const closed = new Promise<string>((r) => (resolveClosed = r));
  const servers: Server[] = [];
  let monitor: Socket | null = null;

  const conference = new Conference({
    participants: upstreams,
    trigger: opts.trigger,
    log,
    onClose: (reason) => {
      monitor?.destroy();
      for (const s of servers) s.close();
      cleanup();
      resolveClosed(reason);
    },
  });
  const cleanup = (): void => {
    rmSync(socketPath, { force: true });
    try {
      if (readFileSync(lockPath, 'latin1').trim() === String(process.pid)) rmSync(lockPath, { force: true });
    } catch {
      /* already gone */
    }
  };

  // The master's presence is watched by a connection of the daemon's own: if it closes, so does the conference.
  monitor = await openMonitor(upstreams[0]!);
  monitor.on('close', () => conference.close(`master ${opts.master} left the conference`));
  monitor.on('error', () => conference.close(`master ${opts.master} left the conference`));

  const onConnection = (sock: Socket): void => {
    conference.addApplication(sock);
  };
  const unixServer = createServer(onConnection);
  servers.push(unixServer);
  await listen(unixServer, socketPath);
  if (opts.tcp) {
    const tcpServer = createServer(onConnection);
    servers.push(tcpServer);
    await new Promise<void>((res, rej) => {
      tcpServer.once('error', rej);
      tcpServer.listen(6000 + display.number, '127.0.0.1', () => res());
    });
  }
  log(`tandem-xconf: display :${display.number} → master ${opts.master}, participants ${opts.participants.join(' ') || '(none)'}; focus trigger ${opts.trigger.label}`);

  return {
    conference,
    socketPath,
    closed,
    async close(reason = 'daemon stopped') {
      conference.close(reason);
      await closed;
    },
  };
}

async function claimDisplay(n: number, socketPath: string, lockPath: string): Promise<void> {
  mkdirSync('/tmp/.X11-unix', { recursive: true, mode: 0o1777 });
  if (existsSync(lockPath)) {
    const pid = Number(readFileSync(lockPath, 'latin1').trim());
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (alive && pid !== process.pid) throw new Error(`display :${n} is in use (lock ${lockPath}, pid ${pid})`);
    rmSync(lockPath, { force: true });
  }
  if (existsSync(socketPath)) {
    const inUse = await new Promise<boolean>((res) => {
      const s = connect(socketPath);
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (inUse) throw new Error(`display :${n} is in use (${socketPath} accepts connections)`);
    rmSync(socketPath, { force: true });
  }
  writeFileSync(lockPath, `${String(process.pid).padStart(10)}\n`);
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
}

/** Connects to the master and completes setup; the returned socket stays open as a presence monitor. */
function openMonitor(up: Upstream): Promise<Socket> {
  return new Promise((res, rej) => {
    const sock = up.connect();
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const size = serverSetupSize(buf, true);
      if (size === null || buf.length < size) return;
      sock.removeListener('data', onData);
      const setup = parseServerSetup(buf, true);
      if (setup.status !== 'success') {
        sock.destroy();
        rej(new Error(`master ${up.name} refused the connection: ${setup.reason}`));
        return;
      }
      sock.on('data', () => {}); // events for the monitor are ignored
      res(sock);
    };
    sock.on('data', onData);
    sock.once('error', (err) => rej(new Error(`cannot connect to master ${up.name}: ${err.message}`)));
    sock.write(encodeClientSetup('LE', up.auth?.name ?? '', up.auth?.data));
  });
}
