import { XProtocolError } from '../errors.js';
import { read16, read32 } from './bytes.js';

/**
 * Splits a byte stream into whole messages without copying: each message is a subarray of the chunk
 * it arrived in; only a message split across chunks is copied (once, when it completes).
 */
abstract class Framer {
  private rest: Buffer | null = null;

  constructor(protected readonly le: boolean) {}

  /** Size of the message starting at `off`, or -1 if more bytes are needed to know it. Throws on bad input. */
  protected abstract sizeAt(buf: Buffer, off: number): number;

  /** Feeds a chunk; calls `onMessage` for each complete message, in order. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let off = 0;
    const end = buf.length;
    while (off < end) {
      const size = this.sizeAt(buf, off);
      if (size < 0 || off + size > end) break;
      onMessage(buf.subarray(off, off + size));
      off += size;
    }
    if (off < end) this.rest = Buffer.from(buf.subarray(off));
  }

  /** Bytes held back waiting for the rest of a message. */
  get pending(): number {
    return this.rest?.length ?? 0;
  }
}

/** Frames the requests an application sends (4-byte units; BIG-REQUESTS 32-bit lengths once enabled). */
export class RequestFramer extends Framer {
  /** Set once BIG-REQUESTS has been enabled on this connection. */
  bigRequests = false;

  constructor(
    le: boolean,
    /** Largest accepted request in bytes. */
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {
    super(le);
  }

  protected sizeAt(buf: Buffer, off: number): number {
    if (buf.length - off < 4) return -1;
    const units = read16(buf, off + 2, this.le);
    if (units !== 0) return units * 4;
    if (!this.bigRequests) {
      throw new XProtocolError('bad-length', `request opcode ${buf[off]} has length 0 and BIG-REQUESTS is not enabled`);
    }
    if (buf.length - off < 8) return -1;
    const big = read32(buf, off + 4, this.le);
    if (big < 2) throw new XProtocolError('bad-length', `BIG-REQUESTS length ${big} is too small`);
    if (big * 4 > this.maxBytes) throw new XProtocolError('too-large', `request of ${big * 4} bytes exceeds ${this.maxBytes}`);
    return big * 4;
  }
}

/** Frames what a server sends after setup: 32-byte errors/events, replies and GenericEvents with extra length. */
export class ServerMessageFramer extends Framer {
  constructor(
    le: boolean,
    private readonly maxBytes = 256 * 1024 * 1024,
  ) {
    super(le);
  }

  protected sizeAt(buf: Buffer, off: number): number {
    if (buf.length - off < 32) return -1;
    const type = buf[off]! & 0x7f;
    if (buf[off] !== 1 && type !== 35) return 32;
    const extra = read32(buf, off + 4, this.le);
    if (extra > (this.maxBytes - 32) / 4) throw new XProtocolError('too-large', `server message of ${extra * 4 + 32} bytes`);
    return 32 + extra * 4;
  }
}

/** Size in bytes of a request header's length field region: 4, or 8 for a BIG-REQUESTS request. */
export function requestHeaderSize(req: Buffer, le: boolean): number {
  return read16(req, 2, le) === 0 ? 8 : 4;
}
