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
 * Creates the socket's directory with mode 0700, or checks an existing one: a real directory owned by this
 * user with no access for group or others. Otherwise it refuses (it never changes the mode of a directory it
 * did not create: `--socket /tmp/ctl.sock` must not make /tmp private). Only the daemon's user can then
 * reach the ctl socket and the conferences' Xauthority files kept beside it.
 */
export function prepareCtlDirectory(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to this user (${uid})`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `${dir} is open to other users (mode ${(st.mode & 0o7777).toString(8)}); the ctl socket and the conference cookies need a private directory: chmod 700 it, or choose another --socket / control.socket`,
    );
  }
}

/** Requests one connection may have waiting for their replies. */
const MAX_PENDING_REQUESTS = 64;

/** Answers one validated ctl request; a thrown CtlError becomes an error reply. */
export type CtlHandler = (req: CtlRequest) => Promise<unknown>;

/** A listening ctl socket. */
export interface CtlServer {
  readonly path: string;
  /** Stop listening and remove the socket file. */
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
  // allowHalfOpen: a client that half-closes after its last request still gets every reply.
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
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
  /** Set once the connection is refused: nothing it sends afterwards is read as a request. */
  let closing = false;
  const send = (reply: CtlReply): void => {
    if (!sock.destroyed && !sock.writableEnded) sock.write(`${JSON.stringify(reply)}\n`);
  };
  // Refuse the connection: the requests already accepted are answered first (in order), then the
  // reason, then the connection is closed.
  const refuse = (message: string): void => {
    closing = true;
    pending = '';
    queue = queue.then(() => {
      send({ ok: false, error: { code: 'bad-request', message } });
      sock.end();
    });
  };
  sock.setEncoding('utf8');
  sock.on('error', () => sock.destroy());
  // The client sent its last request (`… | nc -N -U ctl.sock`): answer what it sent, then close.
  sock.on('end', () => {
    closing = true;
    queue = queue.then(() => void sock.end());
  });
  sock.on('data', (chunk: string) => {
    if (closing) return;
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const raw = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      // Over-long whether or not its newline came in the same read as the rest of it.
      if (Buffer.byteLength(raw) > MAX_LINE_BYTES)
        return refuse(`request line longer than ${MAX_LINE_BYTES} bytes; closing the connection`);
      const line = raw.trim();
      if (!line) continue;
      if (waiting >= MAX_PENDING_REQUESTS)
        return refuse(`more than ${MAX_PENDING_REQUESTS} requests waiting on one connection; closing it`);
      waiting++;
      queue = queue.then(() => answer(line)).finally(() => waiting--);
    }
    if (Buffer.byteLength(pending) > MAX_LINE_BYTES) refuse(`request line longer than ${MAX_LINE_BYTES} bytes; closing the connection`);
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
