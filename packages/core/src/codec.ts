/**
 * The wire codec: msgpack (msgpackr) + zod validation on decode. One value, `codec`, used for every
 * message; invalid bytes or shapes throw ProtocolViolationError.
 */
import { Packr } from 'msgpackr';
import { ProtocolViolationError } from './errors.js';
import { messageSchema, type Message } from './messages.js';

export interface Codec<T> {
  encode(value: T): Uint8Array;
  /** Throws ProtocolViolationError when the bytes are not a valid message. */
  decode(bytes: Uint8Array): T;
}

/** Plain msgpack without msgpackr's record extension, so any msgpack implementation can interoperate. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encode any msgpack-encodable value (used for digests and snapshots). */
export function encodeValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decodeValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

export const codec: Codec<Message> = {
  encode(message: Message): Uint8Array {
    return packr.pack(message);
  },
  decode(bytes: Uint8Array): Message {
    let raw: unknown;
    try {
      raw = packr.unpack(bytes);
    } catch (err) {
      throw new ProtocolViolationError(`undecodable message (${bytes.length} bytes): ${(err as Error).message}`, { cause: err });
    }
    const parsed = messageSchema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new ProtocolViolationError(
        `invalid message: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'schema mismatch'}`,
        { cause: parsed.error },
      );
    }
    return parsed.data;
  },
};
