// Test helper (not built): a tiny X server on 127.0.0.1 that answers a handful of requests, records what
// it receives, and can emit events and errors — enough to check routing, filtering and translation.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Conference, type ConferenceOptions } from '../../src/conference.js';
import type { Upstream } from '../../src/session/options.js';
import { RequestFramer } from '../../src/wire/framing.js';
import { parseClientSetup } from '../../src/wire/setup.js';
import { encodeServerSetup, screen } from './setup-builder.js';
import { parseFocusTrigger } from '../../src/session/focus-trigger.js';
import { read16, write16, write32 } from '../../src/wire/bytes.js';

export interface Received {
  opcode: number;
  seq: number;
  bytes: Buffer;
}

/** The largest GetImage this fake answers (a 2048×2048 screen); a larger one gets BadMatch. */
const MAX_IMAGE_PIXELS = 2048 * 2048;

export class FakeXServer {
  readonly received: Received[] = [];
  private server: Server;
  private conns = new Set<{ sock: Socket; seq: number; le: boolean }>();
  port = 0;
  /** While true, replies are kept back until release() (a slow server). */
  holdReplies = false;
  private heldReplies: Array<{ sock: Socket; bytes: Buffer }> = [];

  constructor(
    readonly name: string,
    readonly opts: { base: number; root: number; atomBase: number; bigReqOpcode: number; errorOpcodes?: number[] },
  ) {
    this.server = createServer((sock) => this.accept(sock));
  }

  async start(): Promise<void> {
    await new Promise<void>((res) => this.server.listen(0, '127.0.0.1', () => res()));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Sends a 32-byte event to every connection, with that connection's current sequence number. */
  emit(build: (ev: Buffer, le: boolean) => void): void {
    for (const c of this.conns) {
      const ev = Buffer.alloc(32);
      build(ev, c.le);
      if ((ev[0]! & 0x7f) !== 11) write16(ev, 2, c.seq, c.le);
      c.sock.write(ev);
    }
  }

  /** Writes raw bytes to every connection (for malformed-input tests). */
  writeRaw(bytes: Buffer): void {
    for (const c of this.conns) c.sock.write(bytes);
  }

  ofOpcode(op: number): Received[] {
    return this.received.filter((r) => r.opcode === op);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }

  private accept(sock: Socket): void {
    const conn = { sock, seq: 0, le: true };
    this.conns.add(conn);
    sock.on('close', () => this.conns.delete(conn));
    sock.on('error', () => {});
    let setupBuf = Buffer.alloc(0);
    let framer: RequestFramer | null = null;
    sock.on('data', (chunk: Buffer) => {
      if (framer) {
        framer.push(chunk, (req) => this.handle(conn, framer!, req));
        return;
      }
      setupBuf = Buffer.concat([setupBuf, chunk]);
      const setup = parseClientSetup(setupBuf);
      if (!setup) return;
      conn.le = setup.byteOrder === 'LE';
      framer = new RequestFramer(conn.le);
      sock.write(encodeServerSetup({ le: conn.le, base: this.opts.base, mask: 0x1fffff, screen: screen(this.opts.root) }));
      const rest = setupBuf.subarray(setup.size);
      if (rest.length) framer.push(Buffer.from(rest), (req) => this.handle(conn, framer!, req));
    });
  }

  private reply(conn: { sock: Socket; seq: number; le: boolean }, fill: (r: Buffer) => void, extra = 0): void {
    const r = Buffer.alloc(32 + extra);
    r[0] = 1;
    write16(r, 2, conn.seq, conn.le);
    write32(r, 4, extra / 4, conn.le);
    fill(r);
    if (this.holdReplies) this.heldReplies.push({ sock: conn.sock, bytes: r });
    else conn.sock.write(r);
  }

  private error(conn: { sock: Socket; seq: number; le: boolean }, code: number, opcode: number, badValue = 0): void {
    const e = Buffer.alloc(32);
    e[0] = 0;
    e[1] = code;
    write16(e, 2, conn.seq, conn.le);
    write32(e, 4, badValue, conn.le);
    e[10] = opcode;
    conn.sock.write(e);
  }

  /** Sends the replies kept back while holdReplies was set. */
  release(): void {
    this.holdReplies = false;
    for (const h of this.heldReplies.splice(0)) h.sock.write(h.bytes);
  }

  /** Stops reading every connection (a participant slower than the application); resumeReading() undoes it. */
  pauseReading(): void {
    for (const c of this.conns) c.sock.pause();
  }

  resumeReading(): void {
    for (const c of this.conns) c.sock.resume();
  }

  /** Closes every connection without stopping the listener (the participant leaves). */
  dropConnections(): void {
    for (const c of this.conns) c.sock.destroy();
  }

  private handle(conn: { sock: Socket; seq: number; le: boolean }, framer: RequestFramer, req: Buffer): void {
    conn.seq = (conn.seq + 1) & 0xffff;
    const le = conn.le;
    const opcode = req[0]!;
    this.received.push({ opcode, seq: conn.seq, bytes: Buffer.from(req) });
    if (this.opts.errorOpcodes?.includes(opcode)) {
      this.error(conn, 3, opcode, req.length >= 8 ? req.readUInt32LE(4) : 0); // BadWindow
      return;
    }
    switch (opcode) {
      case 16: {
        // InternAtom: atoms numbered from this server's atomBase in order of first use
        const name = req.toString('latin1', 8, 8 + read16(req, 4, le));
        const atom = this.opts.atomBase + this.atomNames(name);
        this.reply(conn, (r) => write32(r, 8, atom, le));
        return;
      }
      case 14: // GetGeometry: root, 77x55 at (1,2), border 3
        this.reply(conn, (r) => {
          write32(r, 8, this.opts.root, le);
          write16(r, 12, 1, le);
          write16(r, 14, 2, le);
          write16(r, 16, 77, le);
          write16(r, 18, 55, le);
          write16(r, 20, 3, le);
        });
        return;
      case 38: // QueryPointer: root
        this.reply(conn, (r) => write32(r, 8, this.opts.root, le));
        return;
      case 43: // GetInputFocus
        this.reply(conn, (r) => write32(r, 8, this.opts.root, le));
        return;
      case 73: {
        // GetImage (ZPixmap): depth 24, 4 bytes per pixel, each pixel's value its index (x + y * width)
        const w = read16(req, 12, le);
        const h = read16(req, 14, le);
        if (w * h > MAX_IMAGE_PIXELS) {
          // As a real server does for a rectangle outside the drawable: BadMatch. Without it a mutated
          // GetImage of 65535×65535 made this fake build a 17 GB reply (a fuzz "hang", x11 input 7264).
          this.error(conn, 8, opcode);
          return;
        }
        this.reply(
          conn,
          (r) => {
            r[1] = 24;
            for (let i = 0; i < w * h; i++) write32(r, 32 + 4 * i, i, le);
          },
          4 * w * h,
        );
        return;
      }
      case 49: // ListFonts: no names
        this.reply(conn, () => {});
        return;
      case 98: {
        const name = req.toString('latin1', 8, 8 + read16(req, 4, le));
        this.reply(conn, (r) => {
          r[8] = 1;
          r[9] = name === 'BIG-REQUESTS' ? this.opts.bigReqOpcode : 140;
        });
        return;
      }
      case 101: {
        // GetKeyboardMapping: one keysym per keycode, 'f' on keycode 41
        const first = req[4]!;
        const count = req[5]!;
        this.reply(
          conn,
          (r) => {
            r[1] = 1;
            for (let k = 0; k < count; k++) write32(r, 32 + 4 * k, first + k === 41 ? 0x66 : 0, le);
          },
          4 * count,
        );
        return;
      }
      default:
        if (opcode === this.opts.bigReqOpcode) {
          framer.bigRequests = true;
          this.reply(conn, (r) => write32(r, 8, 4_000_000, le));
        }
    }
  }

  private names: string[] = [];
  private atomNames(name: string): number {
    let i = this.names.indexOf(name);
    if (i < 0) i = this.names.push(name) - 1;
    return i;
  }
}

/** How a conference reaches a fake server (a participant). */
export function upstreamOf(s: FakeXServer): Upstream {
  return { name: s.name, connect: () => connect(s.port, '127.0.0.1') };
}

/** A listener on 127.0.0.1 that hands every connection to `conference` as an application. */
export interface AppListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function listenForApplications(conference: Conference): Promise<AppListener> {
  const server = createServer((sock) => conference.addApplication(sock));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

/** A conference of fake servers with a listener for its applications (tests). */
export interface TestConference {
  readonly conference: Conference;
  /** The listener's port: applications connect here. */
  readonly port: number;
  /** Closes the conference and the listener, and stops the participants' servers. */
  close(): Promise<void>;
}

/**
 * Starts `participants` (master first), a conference of them (trigger `none` unless given) and a
 * listener that hands it every connection.
 */
export async function startConference(
  participants: readonly FakeXServer[],
  options: Partial<Omit<ConferenceOptions, 'participants'>> = {},
): Promise<TestConference> {
  await Promise.all(participants.map((s) => s.start()));
  const conference = new Conference({ trigger: parseFocusTrigger('none'), ...options, participants: participants.map(upstreamOf) });
  const listener = await listenForApplications(conference);
  return {
    conference,
    port: listener.port,
    close: async () => {
      conference.close('test over');
      await listener.close();
      await Promise.all(participants.map((s) => s.stop()));
    },
  };
}
