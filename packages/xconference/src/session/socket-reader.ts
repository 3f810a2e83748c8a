import type { Socket } from 'node:net';

/** Bytes of one slab that reads fill one after another; a read is offered at least `MIN_READ` bytes. */
const SLAB_BYTES = 256 * 1024;
const MIN_READ = 64 * 1024;

type ReadCallback = (nread: number, buf: Buffer) => void;
interface StreamHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/**
 * Calls `onChunk` with every chunk read from `socket`, like a 'data' listener, but through Node's `onread`
 * mechanism (the one `net.connect({ onread })` documents) switched on for a socket that already exists:
 * reads go straight from libuv to the callback, skipping the Readable stream's per-chunk work (push,
 * 'data' emission, a deferred read-more per chunk) and the per-read ArrayBuffer allocation. Each read
 * fills the next free part of a 256 KiB slab, so a chunk is never overwritten: holding on to a chunk (or a
 * subarray of it) is as safe as with 'data' — it only keeps its slab alive, so code that keeps messages for
 * long copies them (as the framers, the resend table and the resource tracker do).
 * End of stream, errors and 'close' behave as before. Where the switch is not available (a socket without a
 * libuv stream handle, another Node version), it falls back to a 'data' listener. Returns true if switched.
 */
export function readSocket(socket: Socket, onChunk: (chunk: Buffer) => void): boolean {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  const fields = userBufferFields(socket);
  if (!handle || typeof handle.useUserBuffer !== 'function' || fields === null) {
    socket.on('data', onChunk);
    return false;
  }
  let slab = Buffer.allocUnsafe(SLAB_BYTES);
  let used = 0;
  const onRead: ReadCallback = (nread, buf) => {
    // `buf` is the free part of the slab the read was given; advance past it (8-byte aligned) first.
    used += (nread + 7) & ~7;
    if (SLAB_BYTES - used < MIN_READ) {
      slab = Buffer.allocUnsafe(SLAB_BYTES);
      used = 0;
    }
    onChunk(buf.subarray(0, nread));
  };
  const first = slab.subarray(0);
  const target = socket as unknown as Record<symbol, unknown>;
  target[fields.buffer] = first;
  target[fields.callback] = onRead;
  target[fields.generator] = (): Buffer => slab.subarray(used);
  handle.useUserBuffer(first);
  return true;
}

let cached: { buffer: symbol; callback: symbol; generator: symbol } | undefined;

/** The symbols under which net.Socket keeps its `onread` buffer, callback and buffer generator. */
function userBufferFields(socket: Socket): { buffer: symbol; callback: symbol; generator: symbol } | null {
  if (cached !== undefined) return cached;
  const symbols = Object.getOwnPropertySymbols(socket);
  const find = (name: string): symbol | undefined => symbols.find((s) => s.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  if (!buffer || !callback || !generator) return null;
  cached = { buffer, callback, generator };
  return cached;
}
