// The daemon's local sockets: whether a socket is live, the X socket directory, abstract-namespace squatters,
// and unix sockets only the daemon's user can connect to.
import { chmodSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { connect, type Server } from 'node:net';

/** Whether something accepts connections on the unix socket at `path` (a live daemon or server, not a stale file). */
export function socketAcceptsConnections(path: string): Promise<boolean> {
  return new Promise<boolean>((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** The directory of X display sockets. */
export const X11_SOCKET_DIR = '/tmp/.X11-unix';

/**
 * Creates (mode 1777, as X servers do) or checks the directory the display socket goes in: a real directory
 * (not a symlink) owned by root or by this user, and sticky if others may write to it. Otherwise another
 * user could remove the daemon's socket and put their own in its place; the daemon refuses to start.
 */
export function prepareX11SocketDirectory(dir: string = X11_SOCKET_DIR, uid: number | undefined = process.getuid?.()): void {
  try {
    mkdirSync(dir, { mode: 0o1777 });
    chmodSync(dir, 0o1777); // the umask took some bits off
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symlink or file there could redirect the display socket)`);
  if (uid !== undefined && st.uid !== 0 && st.uid !== uid)
    throw new Error(`${dir} belongs to uid ${st.uid}, neither root nor this user (${uid}): its owner could replace the display socket`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new Error(
      `${dir} is writable by others without the sticky bit (mode ${(st.mode & 0o7777).toString(8)}): anyone could replace the display socket`,
    );
  }
}

/**
 * The abstract-namespace name libxcb tries *before* the socket file for display `:n` on Linux, written as
 * /proc/net/unix shows it. A process listening there receives the display's clients (and the cookies they present).
 */
export const abstractXSocketName = (n: number): string => `@${X11_SOCKET_DIR}/X${n}`;

/** Listening (the __SO_ACCEPTCON flag in /proc/net/unix). */
const SO_ACCEPTCON = 0x10000;

/**
 * Whether some process listens on the abstract unix socket `name` (`@…`, as /proc/net/unix writes it), or
 * null when this cannot be told (no /proc/net/unix). `table` replaces /proc/net/unix (tests).
 */
export function abstractSocketListening(name: string, table?: string): boolean | null {
  let text = table;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/net/unix', 'latin1');
    } catch {
      return null;
    }
  }
  for (const line of text.split('\n')) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f.slice(7).join(' ') !== name) continue;
    if ((parseInt(f[3]!, 16) & SO_ACCEPTCON) !== 0) return true;
  }
  return false;
}

/**
 * Listens on the unix socket `path` with mode 0600: only this user (and root) can connect. Where the process
 * may set its umask (not in worker threads) the socket is created so; it is chmod-ed in any case.
 */
export function listenOwnerOnly(server: Server, path: string): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined; // worker thread: chmod below
    }
    try {
      // Node binds the socket synchronously inside listen(), so the umask applies to it and nothing else.
      server.listen(path, () => {
        try {
          chmodSync(path, 0o600);
        } catch (err) {
          server.close();
          rej(err as Error);
          return;
        }
        server.removeListener('error', rej);
        server.on('error', () => {});
        res();
      });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}
