/**
 * Follows the WebSocket frame boundaries (RFC 6455 §5.2) of the bytes a socket receives, without touching
 * them: ws parses the frames, this only knows whether the stream currently stops inside a frame (or inside
 * a fragmented message), which is what the partial-frame deadline needs. It reads the 2–14 header bytes of
 * each frame and skips its payload.
 *
 * Attach it while no byte of the socket can have been emitted yet (see `watchFrames`), or it would start
 * in the middle of a frame.
 */
import type { Socket } from 'node:net';

export class FrameWatch {
  readonly #header = new Uint8Array(14);
  #headerFill = 0;
  #headerNeed = 2;
  #payloadLeft = 0;
  /** Inside a data message sent in fragments (a frame without FIN seen, its final frame not yet). */
  #fragmented = false;
  #listener: ((midFrame: boolean) => void) | undefined;
  #chunks = 0;

  /** True when the bytes so far stop inside a frame header, a payload or a fragmented message. */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#payloadLeft > 0 || this.#fragmented;
  }

  /** Chunks seen so far. */
  get chunks(): number {
    return this.#chunks;
  }

  /** Called after every chunk with `midFrame` (one listener). */
  onChunk(listener: ((midFrame: boolean) => void) | undefined): void {
    this.#listener = listener;
  }

  push(chunk: Uint8Array): void {
    this.#chunks++;
    const end = chunk.byteLength;
    let pos = 0;
    while (pos < end) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, end - pos);
        this.#payloadLeft -= take;
        pos += take;
        continue;
      }
      this.#header[this.#headerFill++] = chunk[pos++]!;
      if (this.#headerFill === 2) {
        const b1 = this.#header[1]!;
        const len7 = b1 & 0x7f;
        this.#headerNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      }
      if (this.#headerFill >= 2 && this.#headerFill === this.#headerNeed) this.#endOfHeader();
    }
    this.#listener?.(this.midFrame);
  }

  #endOfHeader(): void {
    const h = this.#header;
    const opcode = h[0]! & 0x0f;
    const fin = (h[0]! & 0x80) !== 0;
    const len7 = h[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = (h[2]! << 8) | h[3]!;
    else if (len7 === 127)
      length =
        (h[2]! * 2 ** 24 + ((h[3]! << 16) | (h[4]! << 8) | h[5]!)) * 2 ** 32 + (h[6]! * 2 ** 24 + ((h[7]! << 16) | (h[8]! << 8) | h[9]!));
    // control frames (opcode 8+) may come between fragments and do not end the message
    if (opcode < 8) this.#fragmented = !fin;
    this.#headerFill = 0;
    this.#headerNeed = 2;
    this.#payloadLeft = length;
  }
}

/**
 * A FrameWatch fed by `socket`'s 'data' events. Call it synchronously after ws attached the socket (its
 * 'open' event, or the server's upgrade callback): ws queued the bytes that came with the upgrade and
 * starts emitting on the next tick, so both listeners see every byte.
 */
export function watchFrames(socket: Socket): FrameWatch {
  const watch = new FrameWatch();
  socket.on('data', (chunk: Buffer) => watch.push(chunk));
  return watch;
}
