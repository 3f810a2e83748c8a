// The control socket: a unix socket (mode 0600, in a 0700 directory) speaking line-delimited JSON.
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { CtlError, MAX_LINE_BYTES, parseCtlRequest, type CtlReply, type CtlRequest } from './ctl-protocol.js';
import { socketAcceptsConnections } from './unix-socket.js';

/** Default ctl socket: $XDG_RUNTIME_DIR/tandem-xconf/ctl.sock, else /tmp/tandem-xconf-$UID/ctl.sock. */
export function defaultCtlSocket(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  const base = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'tandem-xconf') : `/tmp/tandem-xconf-${uid}`;
  return join(base, 'ctl.sock');
}

/**
 * Creates the socket's directory with mode 0700 (or checks an existing one: owned by this user, no access
 * for group or others), so only the daemon's user can reach the socket.
 */
export function prepareCtlDirectory(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to this user (${uid})`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Requests one connection may have waiting for their replies. */
const MAX_PENDING_REQUESTS = 64;

export type CtlHandler = (req: CtlRequest) => Promise<unknown>;

export interface CtlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Listens on `path`; each request line is validated and passed to `handle`; every request gets one reply line. */
export async function startCtlServer(path: string, handle: CtlHandler, log: (line: string) => void = () => {}): Promise<CtlServer> {
  prepareCtlDirectory(dirname(path));
  if (existsSync(path)) {
    const live = await socketAcceptsConnections(path);
    if (live) throw new Error(`a tandem-xconf daemon already listens on ${path}`);
    rmSync(path, { force: true });
  }
  const clients = new Set<Socket>();
  const server: Server = createServer((sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    serveConnection(sock, handle, log);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => {
      server.removeListener('error', rej);
      res();
    });
  });
  chmodSync(path, 0o600);
  server.on('error', (err) => log(`ctl: ${err.message}`));
  return {
    path,
    close: () =>
      new Promise<void>((res) => {
        for (const c of clients) c.destroy();
        server.close(() => res());
        rmSync(path, { force: true });
      }),
  };
}

function serveConnection(sock: Socket, handle: CtlHandler, log: (line: string) => void): void {
  let pending = '';
  // Requests on one connection are answered in order.
  let queue: Promise<void> = Promise.resolve();
  let waiting = 0;
  const send = (reply: CtlReply): void => {
    if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
  };
  sock.setEncoding('utf8');
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      if (++waiting > MAX_PENDING_REQUESTS) {
        pending = '';
        send({ ok: false, error: { code: 'bad-request', message: `more than ${MAX_PENDING_REQUESTS} requests waiting on one connection; closing it` } });
        sock.end();
        sock.removeAllListeners('data');
        return;
      }
      queue = queue.then(() => answer(line)).finally(() => waiting--);
    }
    if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
      pending = '';
      queue = queue.then(() => {
        send({ ok: false, error: { code: 'bad-request', message: `request line longer than ${MAX_LINE_BYTES} bytes; closing the connection` } });
        sock.end();
      });
    }
  });
  const answer = async (line: string): Promise<void> => {
    let id: number | undefined;
    try {
      const req = parseCtlRequest(line);
      id = req.id;
      const result = await handle(req);
      send({ id, ok: true, result: result ?? null });
    } catch (err) {
      const e = err instanceof CtlError ? err : new CtlError('failed', err instanceof Error ? err.message : String(err));
      if (!(err instanceof CtlError)) log(`ctl: request failed: ${e.message}`);
      send({ ...(id !== undefined ? { id } : {}), ok: false, error: { code: e.code, message: e.message } });
    }
  };
}
