/**
 * A frame-aware TCP relay for fault tests: it sits between a dialler and a tcp:// listener, reads each
 * direction with the transport's own FrameDecoder, forwards the 8-byte stream preamble and then whole
 * frames (4-byte big-endian length + payload), and can
 *  - drop frames at random (seeded; never the first frame of a direction, the hello),
 *  - cut connections (destroy both sockets),
 *  - freeze: from now on silently discard everything (the connection stays open: a black hole),
 *  - partition and heal: a black hole for a while, then fresh connections flow again.
 * Dropping whole frames keeps the framing valid, so what the endpoints see is real message loss.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mulberry32 } from '@tandem/core/internal';
import { encodeFrame, FrameDecoder, MAX_FRAME_LENGTH, STREAM_PREAMBLE } from '@tandem/transport';

export interface RelayOptions {
  /** tcp://host:port the relay forwards to. */
  target: string;
  /** Probability of dropping each frame (after the first) in each direction. */
  dropRate?: number;
  seed?: number;
}

export class Relay {
  readonly options: RelayOptions;
  address = '';
  framesForwarded = 0;
  framesDropped = 0;
  bytesDiscarded = 0;
  #server: Server;
  #pairs = new Set<[Socket, Socket]>();
  #frozen = false;
  #rng: () => number;
  dropRate: number;

  private constructor(options: RelayOptions) {
    this.options = options;
    this.dropRate = options.dropRate ?? 0;
    this.#rng = mulberry32(options.seed ?? 1);
    this.#server = createServer((inbound) => this.#accept(inbound));
  }

  static async start(options: RelayOptions): Promise<Relay> {
    const r = new Relay(options);
    await new Promise<void>((resolve, reject) => {
      r.#server.once('error', reject);
      r.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const a = r.#server.address();
    r.address = `tcp://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    return r;
  }

  #accept(inbound: Socket): void {
    const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(this.options.target);
    if (!m) throw new Error(`relay target must be tcp://host:port, got ${this.options.target}`);
    const outbound = connect(Number(m[2]), m[1]!);
    const pair: [Socket, Socket] = [inbound, outbound];
    this.#pairs.add(pair);
    const end = (): void => {
      this.#pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    for (const s of pair) {
      s.setNoDelay(true);
      s.on('error', end);
      s.on('close', end);
    }
    this.#pipe(inbound, outbound, end);
    this.#pipe(outbound, inbound, end);
  }

  /** Forward `from` → `to` frame by frame; bytes that are not the stream framing end the pair. */
  #pipe(from: Socket, to: Socket, end: () => void): void {
    const decoder = new FrameDecoder({ maxMessageSize: MAX_FRAME_LENGTH, expectPreamble: true });
    let preambleSent = false;
    let frames = 0;
    from.on('data', (chunk: Buffer) => {
      if (this.#frozen) {
        this.bytesDiscarded += chunk.length;
        return;
      }
      let messages: Uint8Array[];
      try {
        messages = decoder.push(chunk);
      } catch {
        end();
        return;
      }
      if (!preambleSent && decoder.preambleReceived) {
        to.write(STREAM_PREAMBLE);
        preambleSent = true;
      }
      for (const message of messages) {
        frames++;
        if (frames > 1 && this.dropRate > 0 && this.#rng() < this.dropRate) {
          this.framesDropped++;
          continue;
        }
        this.framesForwarded++;
        to.write(encodeFrame(message));
      }
    });
  }

  /** Discard all traffic from now on (connections stay open). */
  freeze(): void {
    this.#frozen = true;
  }

  /** A network partition: everything is discarded (connections stay open, new ones are accepted and go
   * nowhere: dials do not fail as "refused", the peer just falls silent) until `heal`. */
  partition(): void {
    this.#frozen = true;
  }

  /** End a partition: the connections that lost bytes are cut (as TCP gives up on them); new ones flow. */
  heal(): void {
    this.cutAll();
    this.#frozen = false;
  }

  /** Destroy every relayed connection (both sides see a reset/close). */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const [a, b] of [...this.#pairs]) {
      a.destroy();
      b.destroy();
    }
    return n;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
