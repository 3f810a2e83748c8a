import type { Socket } from 'node:net';
import { encodeClientSetup, parseServerSetup, serverSetupSize, type ServerSetup } from './setup.js';
import type { Upstream } from './session.js';

/** A server connection whose setup succeeded; `rest` holds bytes that arrived after the setup reply. */
export interface ConnectedServer {
  readonly socket: Socket;
  readonly setup: ServerSetup;
  readonly raw: Buffer;
  readonly rest: Buffer;
}

/**
 * Opens a connection to a participant's server and completes the X connection setup in the given byte
 * order. Rejects (and destroys the socket) on refusal, connection error, garbage or timeout.
 */
export function connectServer(up: Upstream, byteOrder: 'LE' | 'BE', timeoutMs = 10_000): Promise<ConnectedServer> {
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
      reject(new Error(`${up.name}: ${why}`));
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
