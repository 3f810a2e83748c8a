/**
 * Which X extensions an application sees through the conference. An extension crosses only if every
 * participant's server can be made to agree on it (its major opcode, event and error bases, its resource
 * ids), so each supported family has its own module here (big-requests.ts) and its name in
 * SUPPORTED_EXTENSIONS; QueryExtension answers "not present" and ListExtensions leaves out all others.
 */
import { write32 } from '../wire/bytes.js';
import { BIG_REQUESTS } from './big-requests.js';

/** Extensions the conference supports; QueryExtension answers "not present" for all others. */
export const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set([BIG_REQUESTS]);

/** What the extension table needs to know of, and sets on, a server connection. */
export interface ExtensionServer {
  readonly isMaster: boolean;
  /** Major opcode of BIG-REQUESTS on this server (0 = unknown / absent). */
  bigRequestsOpcode: number;
}

/** One application's extensions: their major opcodes in its numbering (the master's) and on each server. */
export class ExtensionTable {
  /** The application's BIG-REQUESTS major opcode (the master's), 0 until the master reports it present. */
  appBigRequestsOpcode = 0;

  /**
   * `server` answered QueryExtension(`name`) with `reply`. The master's reply is what the application
   * receives: for an extension the conference does not support it is rewritten to "not present" in place,
   * so the client falls back to the core protocol.
   */
  learn(server: ExtensionServer, name: string, reply: Buffer): void {
    const present = reply[8] === 1;
    if (name === BIG_REQUESTS && present) server.bigRequestsOpcode = reply[9]!;
    if (!server.isMaster) return;
    if (SUPPORTED_EXTENSIONS.has(name) && present) {
      if (name === BIG_REQUESTS) this.appBigRequestsOpcode = reply[9]!;
      return;
    }
    reply[8] = 0;
    reply[9] = 0;
    reply[10] = 0;
    reply[11] = 0;
  }
}

/** Rewrites a ListExtensions reply to list only the extensions the conference supports. */
export function filterExtensionList(reply: Buffer, le: boolean): Buffer {
  const count = reply[1] ?? 0;
  const names: Buffer[] = [];
  let off = 32;
  for (let i = 0; i < count && off < reply.length; i++) {
    const len = reply[off]!;
    const name = reply.toString('latin1', off + 1, off + 1 + len);
    if (SUPPORTED_EXTENSIONS.has(name)) names.push(reply.subarray(off, off + 1 + len));
    off += 1 + len;
  }
  const body = Buffer.concat(names);
  const padded = (body.length + 3) & ~3;
  const out = Buffer.alloc(32 + padded);
  reply.copy(out, 0, 0, 32);
  out[1] = names.length;
  write32(out, 4, padded / 4, le);
  body.copy(out, 32);
  return out;
}
