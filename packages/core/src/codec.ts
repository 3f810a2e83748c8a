/**
 * The wire codec: msgpack (msgpackr) + zod validation on decode. One value, `codec`, used for every
 * message; invalid bytes or shapes throw ProtocolViolationError.
 */
import { Packr } from 'msgpackr';
import { ProtocolViolationError } from './errors.js';
import { z } from 'zod';
import { entrySchema, messageSchema, type Entry, type Message } from './messages.js';

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

/** Decode several msgpack values written one after another. */
export function decodeValues(bytes: Uint8Array): unknown[] {
  return packr.unpackMultiple(bytes) as unknown[];
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

/** Concatenate already-encoded entries into one msgpack array (no re-encoding). */
export function packEncoded(items: readonly Uint8Array[]): Uint8Array {
  const n = items.length;
  let size = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  for (const b of items) size += b.length;
  const out = new Uint8Array(size);
  let pos: number;
  if (n < 16) {
    out[0] = 0x90 | n;
    pos = 1;
  } else if (n < 0x10000) {
    out[0] = 0xdc;
    out[1] = n >>> 8;
    out[2] = n & 0xff;
    pos = 3;
  } else {
    out[0] = 0xdd;
    out[1] = (n >>> 24) & 0xff;
    out[2] = (n >>> 16) & 0xff;
    out[3] = (n >>> 8) & 0xff;
    out[4] = n & 0xff;
    pos = 5;
  }
  for (const b of items) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

const entriesSchema = z.array(entrySchema);

/** Decode a packed Entry[] (from a reply relayed by a client); throws ProtocolViolationError. */
export function decodeEntries(bytes: Uint8Array): Entry[] {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (err) {
    throw new ProtocolViolationError(`undecodable packed entries: ${(err as Error).message}`, { cause: err });
  }
  const parsed = entriesSchema.safeParse(raw);
  if (!parsed.success)
    throw new ProtocolViolationError(`invalid packed entries: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`, {
      cause: parsed.error,
    });
  return parsed.data;
}
