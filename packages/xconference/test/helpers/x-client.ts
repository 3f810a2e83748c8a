// Test helper (not built): a raw X client that sends setup and requests and collects what comes back.
import { connect, type Socket } from 'node:net';
import { ServerMessageFramer } from '../../src/wire/framing.js';
import { encodeClientSetup, parseServerSetup, serverSetupSize, type ServerSetup } from '../../src/wire/setup.js';
import { pad4, write16, write32 } from '../../src/wire/bytes.js';

export class RawXClient {
  readonly messages: Buffer[] = [];
  setup: ServerSetup | null = null;
  closed = false;
  seq = 0;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly sock: Socket,
    readonly le: boolean,
  ) {}

  static async open(port: number, le = true): Promise<RawXClient> {
    const sock = connect(port, '127.0.0.1');
    const c = new RawXClient(sock, le);
    let buf = Buffer.alloc(0);
    const framer = new ServerMessageFramer(le);
    sock.on('close', () => {
      c.closed = true;
      c.wake();
    });
    sock.on('error', () => {});
    sock.on('data', (chunk: Buffer) => {
      if (!c.setup) {
        buf = Buffer.concat([buf, chunk]);
        const size = serverSetupSize(buf, le);
        if (size === null || buf.length < size) return;
        c.setup = parseServerSetup(buf, le);
        chunk = buf.subarray(size);
        c.wake();
        if (!chunk.length) return;
      }
      framer.push(chunk, (m) => c.messages.push(Buffer.from(m)));
      c.wake();
    });
    await new Promise<void>((res) => sock.once('connect', () => res()));
    sock.write(encodeClientSetup(le ? 'LE' : 'BE'));
    await c.until(() => c.setup !== null);
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits (bounded) until `cond` holds. */
  async until(cond: () => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
      await new Promise<void>((res) => {
        this.waiters.push(res);
        setTimeout(res, 20);
      });
    }
  }

  /** Sends a request; `body` is what follows the 4-byte header. Returns its sequence number. */
  request(opcode: number, data: number, body: Buffer = Buffer.alloc(0)): number {
    const padded = Buffer.concat([body, Buffer.alloc(pad4(body.length))]);
    const req = Buffer.alloc(4 + padded.length);
    req[0] = opcode;
    req[1] = data;
    write16(req, 2, req.length / 4, this.le);
    padded.copy(req, 4);
    this.sock.write(req);
    return ++this.seq;
  }

  internAtom(name: string): number {
    const body = Buffer.alloc(4 + name.length);
    write16(body, 0, name.length, this.le);
    body.write(name, 4, 'latin1');
    return this.request(16, 0, body);
  }

  queryExtension(name: string): number {
    return this.internAtomLike(98, name);
  }

  private internAtomLike(opcode: number, name: string): number {
    const body = Buffer.alloc(4 + name.length);
    write16(body, 0, name.length, this.le);
    body.write(name, 4, 'latin1');
    return this.request(opcode, 0, body);
  }

  /** A request whose body is a list of 32-bit values. */
  words(opcode: number, data: number, values: number[]): number {
    const body = Buffer.alloc(values.length * 4);
    for (const [i, v] of values.entries()) write32(body, 4 * i, v, this.le);
    return this.request(opcode, data, body);
  }

  replies(): Buffer[] {
    return this.messages.filter((m) => m[0] === 1);
  }
  errors(): Buffer[] {
    return this.messages.filter((m) => m[0] === 0);
  }
  events(code?: number): Buffer[] {
    return this.messages.filter((m) => m[0]! > 1 && (code === undefined || (m[0]! & 0x7f) === code));
  }

  close(): void {
    this.sock.destroy();
  }
}
