import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.js';
import { emptyParticipantCounters, type ParticipantCounters } from './options.js';
import { ServerMessageFramer } from '../wire/framing.js';
import type { IdMap } from '../translate/id-map.js';
import type { ServerSetup } from '../wire/setup.js';
import { SocketWriter } from './socket-writer.js';
import { write16 } from '../wire/bytes.js';

/** Flags kept per server request. */
export const RESPONDER = 1;
export const INTERNAL = 2;

/**
 * One application's connection to one participant's server: its own sequence counter and a table from
 * its 16-bit sequence numbers to the application's (requests go to subsets of servers, so counters diverge).
 */
export class ServerLink {
  /** Last sequence number used on this server (wraps at 2^16 on the wire). */
  seq = 0;
  readonly appSeqOf = new Float64Array(65536);
  readonly opcodeOf = new Uint8Array(65536);
  readonly flagsOf = new Uint8Array(65536);
  private readonly internal = new Map<number, (reply: Buffer) => void>();
  readonly writer: SocketWriter;
  readonly framer: ServerMessageFramer;
  /** Major opcode of BIG-REQUESTS on this server (0 = unknown / absent). */
  bigRequestsOpcode = 0;
  /** Keycode of the focus trigger key on this server (0 = unknown). */
  triggerKeycode = 0;
  closed = false;
  /** Handles one framed message from this server (set by the session). */
  onMessage: (msg: Buffer) => void = () => {};

  constructor(
    readonly index: number,
    readonly name: string,
    readonly socket: Socket,
    readonly setup: ServerSetup,
    readonly ids: IdMap,
    le: boolean,
    poll?: BusyPoll,
    /** The participant's counters, shared with its other connections (bytes in and out are added to them). */
    readonly counters: ParticipantCounters = emptyParticipantCounters(),
  ) {
    this.writer = new SocketWriter(socket, undefined, poll);
    this.framer = new ServerMessageFramer(le);
  }

  get isMaster(): boolean {
    return this.index === 0;
  }

  /** Sends one request on behalf of the application's request `appSeq`. */
  send(req: Buffer, opcode: number, appSeq: number, flags: number): void {
    const s = (this.seq = (this.seq + 1) & 0xffff);
    this.appSeqOf[s] = appSeq;
    this.opcodeOf[s] = opcode;
    this.flagsOf[s] = flags;
    this.counters.bytesOut += req.length;
    this.writer.write(req);
  }

  /** Sends a request of the proxy's own; its reply goes to `onReply`, its events/errors map to `appSeq`. */
  sendInternal(req: Buffer, appSeq: number, onReply: (reply: Buffer) => void): void {
    const s = (this.seq = (this.seq + 1) & 0xffff);
    this.appSeqOf[s] = appSeq;
    this.opcodeOf[s] = req[0]!;
    this.flagsOf[s] = INTERNAL;
    this.internal.set(s, onReply);
    this.counters.bytesOut += req.length;
    this.writer.write(req);
  }

  /** Takes the handler of an internal request's reply (once). */
  takeInternal(seq: number): ((reply: Buffer) => void) | undefined {
    const h = this.internal.get(seq);
    this.internal.delete(seq);
    return h;
  }
}

/** Writes the application's sequence number into bytes 2–3 of a reply, event or error. */
export function setSequence(msg: Buffer, appSeq: number, le: boolean): void {
  write16(msg, 2, appSeq & 0xffff, le);
}
