// A socket whose first bytes were already read (by the launch gate), handed on with those bytes in front.
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * Returns a stream that reads `prelude` and then everything `sock` receives, and writes to `sock`; closing
 * either side closes both. It stands in for `sock` where the reader of the socket bypasses the Readable
 * buffer (ApplicationSession reads through libuv's onread), so `sock.unshift(prelude)` would be lost.
 * Costs one stream hop per chunk, on connections that went through the gate only.
 */
export function withPrelude(sock: Socket, prelude: Buffer): Socket {
  const relay = new Duplex({
    read() {
      if (sock.isPaused()) sock.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (sock.destroyed) cb(new Error('connection closed'));
      else sock.write(chunk, (err) => cb(err ?? null));
    },
    writev(chunks, cb) {
      if (sock.destroyed) return cb(new Error('connection closed'));
      sock.cork();
      for (const c of chunks) sock.write(c.chunk as Buffer);
      sock.uncork();
      cb();
    },
    final(cb) {
      sock.end(() => cb());
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  if (prelude.length) relay.push(prelude);
  sock.on('data', (chunk: Buffer) => {
    if (!relay.push(chunk)) sock.pause();
  });
  sock.on('end', () => relay.push(null));
  sock.on('error', (err) => relay.destroy(err));
  sock.on('close', () => relay.destroy());
  const socketLike = relay as unknown as Socket & { setNoDelay(on?: boolean): Socket };
  socketLike.setNoDelay = (on?: boolean) => {
    sock.setNoDelay(on);
    return socketLike;
  };
  return socketLike;
}
