/**
 * A TCP relay that delays every chunk from the dialler to the target by `delayMs` (order kept; the other
 * direction passes at once) — "Pro2's message to Pro3 is held for at least 200 ms".
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class DelayRelay {
  delayMs = 0;
  address = '';
  /** The longest any chunk was held, and how many chunks were delayed. */
  maxHeldMs = 0;
  delayedChunks = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #target: { host: string; port: number };

  private constructor(target: string) {
    const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(target);
    if (!m) throw new Error(`relay target must be tcp://host:port, got ${target}`);
    this.#target = { host: m[1]!, port: Number(m[2]) };
    this.#server = createServer((inbound) => this.#accept(inbound));
  }

  static async start(target: string): Promise<DelayRelay> {
    const r = new DelayRelay(target);
    await new Promise<void>((res, rej) => {
      r.#server.once('error', rej);
      r.#server.listen(0, '127.0.0.1', () => res());
    });
    const a = r.#server.address();
    r.address = `tcp://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    return r;
  }

  #accept(inbound: Socket): void {
    const outbound = connect(this.#target.port, this.#target.host);
    this.#sockets.add(inbound);
    this.#sockets.add(outbound);
    const end = (): void => {
      inbound.destroy();
      outbound.destroy();
      this.#sockets.delete(inbound);
      this.#sockets.delete(outbound);
    };
    inbound.on('error', end).on('close', end);
    outbound.on('error', end).on('close', end);
    let last = 0; // release time of the previous chunk: order is kept
    inbound.on('data', (chunk: Buffer) => {
      const now = Date.now();
      const at = Math.max(now + this.delayMs, last);
      last = at;
      if (at <= now) {
        outbound.write(chunk);
        return;
      }
      this.delayedChunks++;
      setTimeout(() => {
        this.maxHeldMs = Math.max(this.maxHeldMs, Date.now() - now);
        if (!outbound.destroyed) outbound.write(chunk);
      }, at - now);
    });
    outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((res) => this.#server.close(() => res()));
  }
}
