/**
 * Frames of the group protocol on a transport connection. The dialling member sends HELLO, then DATA
 * frames; the accepting member answers each DATA with ACK (taken in: delivered, held or a duplicate) or
 * REFUSED (its held buffer is full: send it again later), and REJECT before closing on a bad HELLO.
 */
import { CausalProtocolError } from './errors.js';
import { ByteReader, ByteWriter } from './varint.js';

export const PROTOCOL_VERSION = 1;

export type Frame =
  | { type: 'hello'; version: number; fingerprint: number; from: number; size: number }
  | { type: 'data'; seq: number; body: Uint8Array }
  | { type: 'ack'; seq: number }
  | { type: 'refused'; seq: number }
  | { type: 'reject'; reason: string };

const CODES = { hello: 1, data: 2, ack: 3, refused: 4, reject: 5 } as const;

export function encodeFrame(frame: Frame): Uint8Array {
  const w = new ByteWriter(frame.type === 'data' ? frame.body.byteLength + 8 : 16);
  w.byte(CODES[frame.type]);
  switch (frame.type) {
    case 'hello':
      w.uint(frame.version);
      w.uint(frame.fingerprint);
      w.uint(frame.from);
      w.uint(frame.size);
      break;
    case 'data':
      w.uint(frame.seq);
      w.bytes(frame.body);
      break;
    case 'ack':
    case 'refused':
      w.uint(frame.seq);
      break;
    case 'reject':
      w.bytes(new TextEncoder().encode(frame.reason.slice(0, 512)));
      break;
  }
  return w.finish();
}

export function decodeFrame(bytes: Uint8Array): Frame {
  const r = new ByteReader(bytes);
  const code = r.byte();
  let frame: Frame;
  switch (code) {
    case CODES.hello:
      frame = { type: 'hello', version: r.uint(), fingerprint: r.uint(), from: r.uint(), size: r.uint() };
      break;
    case CODES.data:
      return { type: 'data', seq: r.uint(), body: r.rest() };
    case CODES.ack:
      frame = { type: 'ack', seq: r.uint() };
      break;
    case CODES.refused:
      frame = { type: 'refused', seq: r.uint() };
      break;
    case CODES.reject:
      return { type: 'reject', reason: new TextDecoder().decode(r.rest()) };
    default:
      throw new CausalProtocolError(`unknown causal group frame type ${code}`);
  }
  if (r.remaining !== 0) throw new CausalProtocolError(`${r.remaining} trailing bytes in a ${frame.type} frame`);
  return frame;
}

/** FNV-1a (32 bit) of the ordered member list: members of one group must agree on it. */
export function groupFingerprint(members: readonly string[]): number {
  let h = 0x811c9dc5;
  const bytes = new TextEncoder().encode(members.join('\n'));
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
