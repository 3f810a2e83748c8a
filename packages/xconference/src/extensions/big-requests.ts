/**
 * BIG-REQUESTS, which Xlib enables on its first request: requests longer than 256 KiB carry a 32-bit length.
 * Its one request, BigReqEnable, goes to every server (category InitResourceIds) with each server's own
 * major opcode; once it is enabled the request framer reads 32-bit lengths.
 */
import { Opcode } from '../generated/xproto.js';
import { write16 } from '../wire/bytes.js';

export const BIG_REQUESTS = 'BIG-REQUESTS';

/** True if `opcode` is BigReqEnable: the major opcode the application was given for BIG-REQUESTS. */
export function isBigReqEnable(opcode: number, appOpcode: number): boolean {
  return opcode >= 128 && opcode === appOpcode;
}

/**
 * The BigReqEnable request `out` (`req`, or its translation) with the major opcode of one server: as is
 * when that server numbers BIG-REQUESTS alike or is not known to have it (servers of one build number
 * their extensions alike), else a copy with the server's opcode.
 */
export function withServerOpcode(out: Buffer, req: Buffer, serverOpcode: number): Buffer {
  if (serverOpcode === 0 || serverOpcode === req[0]) return out;
  const copy = out === req ? Buffer.from(req) : out;
  copy[0] = serverOpcode;
  return copy;
}

/** QueryExtension("BIG-REQUESTS"), the proxy's own request to a participant that joins later. */
export function queryBigRequests(le: boolean): Buffer {
  const q = Buffer.alloc(8 + BIG_REQUESTS.length);
  q[0] = Opcode.QueryExtension;
  write16(q, 2, q.length / 4, le);
  write16(q, 4, BIG_REQUESTS.length, le);
  q.write(BIG_REQUESTS, 8, 'latin1');
  return q;
}

/** BigReqEnable with a server's major opcode for BIG-REQUESTS. */
export function bigReqEnable(opcode: number, le: boolean): Buffer {
  const enable = Buffer.alloc(4);
  enable[0] = opcode;
  write16(enable, 2, 1, le);
  return enable;
}
