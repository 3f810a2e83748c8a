/**
 * The state-transfer protocol's messages (docs/STATE-TRANSFER.md), msgpack-encoded, each validated
 * with zod on decode. J = joiner (receiving replica), S = serving replica.
 */
import { z } from 'zod';
import { pack, unpack } from '../codec.js';
import { TransferProtocolError } from '../errors.js';

const nat = z.number().int().min(0);
const id = z.string().min(1).max(256);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected binary data' });
const format = z.enum(['records', 'blob']);

/** J→S, first message on every connection: a new transfer, or the resumption of one. */
export const openSchema = z.object({
  t: z.literal('open'),
  service: z.string().max(256),
  nodeId: id,
  /** The joiner's state format version. */
  version: nat,
  /** Formats the joiner can take, best first, each with the oldest state version it can migrate from. */
  formats: z
    .array(z.object({ format, minVersion: nat }))
    .min(1)
    .max(2),
  /** Most unacknowledged chunks in flight. */
  window: z.number().int().min(1).max(1024),
  /** Chunk encodings the joiner understands beyond the original one (e.g. 'text-slices'). */
  encodings: z.array(z.string().max(64)).max(16).optional(),
  resume: z
    .object({
      transferId: id,
      /** Index of the next chunk the joiner needs (everything before it is applied). */
      nextChunk: nat,
      /** Highest seq the joiner has applied (the snapshot seq once installed, 0 before). */
      appliedSeq: nat,
    })
    .optional(),
});

/** S→J: a transfer starts (fresh) or continues (resumed) from `startChunk`. */
export const metaSchema = z.object({
  t: z.literal('meta'),
  transferId: id,
  resumed: z.boolean(),
  /** The snapshot's seq S (every entry ≤ S is in it). */
  seq: nat,
  epoch: nat,
  /** The state format version of the snapshot. */
  version: nat,
  format,
  totalRecords: nat.optional(),
  startChunk: nat,
});

export const sectionSchema = z.enum(['state', 'aux']);

/** S→J: one chunk of the snapshot. */
export const chunkSchema = z.object({
  t: z.literal('chunk'),
  transferId: id,
  index: nat,
  section: sectionSchema,
  /** Records in this chunk (records format), 0 for blob parts. */
  records: nat,
  /** CRC-32 of `data`. */
  crc: nat,
  data: bytes,
});

/** S→J: every chunk has been sent; totals and the whole-state checksum. */
export const snapEndSchema = z.object({
  t: z.literal('snapEnd'),
  transferId: id,
  chunks: nat,
  records: nat,
  bytes: nat,
  /** SHA-256 (truncated) over every chunk's (index, length, CRC-32) in index order (checksum.ts). */
  checksum: z.string().max(128),
});

/** J→S: cumulative acknowledgement of chunks (< nextChunk) and log entries (≤ appliedSeq). */
export const ackSchema = z.object({ t: z.literal('ack'), transferId: id, nextChunk: nat, appliedSeq: nat });

/** J→S: chunk `index` failed its checksum; send it (and what follows) again. */
export const nackSchema = z.object({ t: z.literal('nack'), transferId: id, index: nat, reason: z.string().max(1024) });

/** S→J: log entries after the snapshot, contiguous. */
export const logSchema = z.object({
  t: z.literal('log'),
  transferId: id,
  entries: z.array(z.looseObject({ seq: z.number().int().min(1) })),
});

/** S→J: the joiner has every entry up to `seq`; the serving replica's state digest at `seq`. */
export const caughtUpSchema = z.object({ t: z.literal('caughtUp'), transferId: id, seq: nat, digest: z.string().max(256) });

/** J→S: the joiner's digest at that seq and whether it matched. */
export const verifiedSchema = z.object({
  t: z.literal('verified'),
  transferId: id,
  seq: nat,
  digest: z.string().max(256),
  ok: z.boolean(),
});

/** Either way: a fatal condition. `retry` = the joiner may start a fresh transfer. */
export const failSchema = z.object({
  t: z.literal('fail'),
  code: z.string().max(128),
  message: z.string().max(64 * 1024),
  retry: z.boolean(),
});

/** The zod schema of every state-transfer message, discriminated by `t`. */
export const transferMessageSchema = z.discriminatedUnion('t', [
  openSchema,
  metaSchema,
  chunkSchema,
  snapEndSchema,
  ackSchema,
  nackSchema,
  logSchema,
  caughtUpSchema,
  verifiedSchema,
  failSchema,
]);

/** Any state-transfer protocol message. */
export type TransferMessage = z.infer<typeof transferMessageSchema>;
export type OpenMsg = z.infer<typeof openSchema>;
export type MetaMsg = z.infer<typeof metaSchema>;
export type ChunkMsg = z.infer<typeof chunkSchema>;
export type SnapEndMsg = z.infer<typeof snapEndSchema>;
export type AckMsg = z.infer<typeof ackSchema>;
export type NackMsg = z.infer<typeof nackSchema>;
export type LogMsg = z.infer<typeof logSchema>;
export type CaughtUpMsg = z.infer<typeof caughtUpSchema>;
export type VerifiedMsg = z.infer<typeof verifiedSchema>;
export type FailMsg = z.infer<typeof failSchema>;

/** Encode a message with msgpack. */
export function encodeMessage(m: TransferMessage): Uint8Array {
  return pack(m);
}

/** Decode and validate; throws TransferProtocolError. */
export function decodeMessage(bytes: Uint8Array): TransferMessage {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (err) {
    throw new TransferProtocolError(`undecodable transfer message (${bytes.length} bytes): ${(err as Error).message}`, { cause: err });
  }
  const r = transferMessageSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new TransferProtocolError(
      `invalid transfer message: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'schema mismatch'}`,
      { cause: r.error },
    );
  }
  return r.data;
}
