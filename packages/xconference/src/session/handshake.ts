/**
 * The X connection setup on both sides of the proxy: the application's setup request, read from its first
 * bytes, and the upstream connections opened in the application's byte order, all at once when an
 * application connects (connectUpstreams) or one by one when a participant joins later (connectServer).
 */
import type { Socket } from 'node:net';
import { JoinError, XProtocolError } from '../errors.js';
import type { ByteOrder } from '../wire/bytes.js';
import {
  encodeClientSetup,
  parseClientSetup,
  parseServerSetup,
  serverSetupSize,
  type ClientSetup,
  type ServerSetup,
} from '../wire/setup.js';
import type { Upstream } from './options.js';

/** Longest connection setup accepted from an application. */
const MAX_CLIENT_SETUP_BYTES = 65536;

/** Collects an application's connection setup request from the first bytes it sends. */
export class ClientSetupReader {
  private buf: Buffer = Buffer.alloc(0);

  /**
   * Feeds a chunk. Returns the setup and the bytes that followed it once it is complete, else null.
   * Throws XProtocolError for a malformed or overlong setup and for a protocol version other than 11.
   */
  push(chunk: Buffer): { setup: ClientSetup; rest: Buffer } | null {
    this.buf = Buffer.concat([this.buf, chunk]);
    const setup = parseClientSetup(this.buf);
    if (!setup) {
      if (this.buf.length > MAX_CLIENT_SETUP_BYTES) throw new XProtocolError('malformed-setup', 'connection setup too long');
      return null;
    }
    if (setup.major !== 11) throw new XProtocolError('malformed-setup', `unsupported protocol version ${setup.major}`);
    const rest = this.buf.subarray(setup.size);
    this.buf = Buffer.alloc(0);
    return { setup, rest };
  }
}

/** A server connection whose setup succeeded; `rest` holds bytes that arrived after the setup reply. */
export interface ConnectedServer {
  readonly socket: Socket;
  readonly setup: ServerSetup;
  readonly raw: Buffer;
  readonly rest: Buffer;
}

/** One upstream's outcome in connectUpstreams: connected, or why not. */
export type UpstreamResult = ConnectedServer | { readonly error: string };

/**
 * Connects to every upstream at once and completes each one's setup in `byteOrder`. Calls `done` once
 * every upstream has answered, failed, or was cut off by the shared timeout, with the outcomes in
 * `upstreams` order and the master's (index 0) refusal as it sent it, if it refused and that was known
 * by then.
 */
export function connectUpstreams(
  upstreams: readonly Upstream[],
  byteOrder: ByteOrder,
  timeoutMs: number,
  done: (results: UpstreamResult[], masterRefusal: Buffer | null) => void,
): void {
  const le = byteOrder === 'LE';
  const n = upstreams.length;
  const results: UpstreamResult[] = new Array(n);
  let pending = n;
  let masterRefusal: Buffer | null = null;
  const finishers: Array<(r: { error: string }) => void> = [];
  // A server that does not answer setup in time is left out (the master's absence fails the session).
  const timer = setTimeout(() => {
    for (const f of finishers) f({ error: 'timed out waiting for the server setup reply' });
  }, timeoutMs);
  const one = (): void => {
    if (--pending > 0) return;
    clearTimeout(timer);
    done(results, masterRefusal);
  };
  upstreams.forEach((up, i) => {
    let buf = Buffer.alloc(0);
    let finished = false;
    const sock = up.connect();
    sock.setNoDelay?.(true);
    const finish = (r: UpstreamResult): void => {
      if (finished) return;
      finished = true;
      sock.removeListener('data', onData);
      results[i] = r;
      if ('error' in r) sock.destroy();
      one();
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const size = serverSetupSize(buf, le);
      if (size === null || buf.length < size) return;
      try {
        const setup = parseServerSetup(buf, le);
        if (setup.status !== 'success') {
          finish({ error: `${up.name} refused the connection: ${setup.reason}` });
          if (i === 0) masterRefusal = Buffer.from(buf.subarray(0, size));
          return;
        }
        finish({ socket: sock, setup, raw: Buffer.from(buf.subarray(0, size)), rest: Buffer.from(buf.subarray(size)) });
      } catch (err) {
        finish({ error: `${up.name}: ${(err as Error).message}` });
      }
    };
    finishers.push(finish);
    sock.on('data', onData);
    sock.once('error', (err) => finish({ error: `${up.name}: ${err.message}` }));
    sock.once('close', () => finish({ error: `${up.name}: connection closed during setup` }));
    sock.write(encodeClientSetup(byteOrder, up.auth?.name ?? '', up.auth?.data));
  });
}

/**
 * Opens a connection to a participant's server and completes the X connection setup in the given byte
 * order. Rejects with JoinError `unreachable` (and destroys the socket) on refusal, connection error,
 * garbage or timeout.
 */
export function connectServer(up: Upstream, byteOrder: ByteOrder, timeoutMs = 10_000): Promise<ConnectedServer> {
  return new Promise((resolve, reject) => {
    const le = byteOrder === 'LE';
    let buf = Buffer.alloc(0);
    let finished = false;
    let sock: Socket;
    const timer = setTimeout(() => fail('timed out waiting for the server setup reply'), timeoutMs);
    const fail = (why: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock?.destroy();
      reject(new JoinError('unreachable', `${up.name}: ${why}`));
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      let size: number | null;
      try {
        size = serverSetupSize(buf, le);
      } catch (err) {
        fail((err as Error).message);
        return;
      }
      if (size === null || buf.length < size) return;
      try {
        const setup = parseServerSetup(buf, le);
        if (setup.status !== 'success') {
          fail(`refused the connection: ${setup.reason}`);
          return;
        }
        finished = true;
        clearTimeout(timer);
        sock.removeListener('data', onData);
        sock.removeListener('error', onError);
        sock.removeListener('close', onClose);
        resolve({ socket: sock, setup, raw: Buffer.from(buf.subarray(0, size)), rest: Buffer.from(buf.subarray(size)) });
      } catch (err) {
        fail((err as Error).message);
      }
    };
    const onError = (err: Error): void => fail(err.message);
    const onClose = (): void => fail('connection closed during setup');
    try {
      sock = up.connect();
    } catch (err) {
      fail((err as Error).message);
      return;
    }
    sock.setNoDelay?.(true);
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('close', onClose);
    sock.write(encodeClientSetup(byteOrder, up.auth?.name ?? '', up.auth?.data));
  });
}
