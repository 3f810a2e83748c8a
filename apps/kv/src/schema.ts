/**
 * The kv service's wire vocabulary: requests and replies as zod discriminated unions. Both the client
 * (before sending) and the replicas (before applying) validate with these schemas, so a malformed
 * request is refused with a typed error and never sequenced.
 */
import { z } from 'zod';

/** Longest key or lock name, in characters. */
export const MAX_KEY_LENGTH = 1024;
/** Longest value, in characters. */
export const MAX_VALUE_LENGTH = 1024 * 1024;
/** Most entries one scan returns; `more` says whether it stopped early. */
export const MAX_SCAN_LIMIT = 1000;
/** Entries a scan returns when it gives no `limit`. */
export const DEFAULT_SCAN_LIMIT = 100;
/** Longest lease a lock can be granted for (one day). */
export const MAX_TTL_MS = 24 * 60 * 60 * 1000;

const key = z.string().min(1).max(MAX_KEY_LENGTH);
const value = z.string().max(MAX_VALUE_LENGTH);
const lockName = z.string().min(1).max(MAX_KEY_LENGTH);
const token = z.number().int().positive();
const ttlMs = z.number().int().positive().max(MAX_TTL_MS);

/** A write guarded by a lock: applied only while `lock` is held with exactly this fencing `token`. */
export const fenceSchema = z.object({ lock: lockName, token }).strict();
/** A fencing condition: lock name and token. */
export type Fence = z.infer<typeof fenceSchema>;

/** The kv service's request schema: get, set, delete, cas, append, incr, scan, and the lock operations acquire, renew, release. */
export const kvRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('get'), key }).strict(),
  z.object({ op: z.literal('set'), key, value, fence: fenceSchema.optional() }).strict(),
  z.object({ op: z.literal('delete'), key, fence: fenceSchema.optional() }).strict(),
  /** Compare-and-set: write `value` only if the current value equals `expected` (null = absent). */
  z.object({ op: z.literal('cas'), key, expected: value.nullable(), value, fence: fenceSchema.optional() }).strict(),
  z.object({ op: z.literal('append'), key, value, fence: fenceSchema.optional() }).strict(),
  /** Add `by` (default 1) to an integer value (absent = 0). */
  z
    .object({
      op: z.literal('incr'),
      key,
      by: z
        .number()
        .int()
        .min(-(2 ** 31))
        .max(2 ** 31)
        .optional(),
    })
    .strict(),
  /** Keys starting with `prefix` in ascending order, strictly after `after` when given. */
  z
    .object({
      op: z.literal('scan'),
      prefix: z.string().max(MAX_KEY_LENGTH),
      after: key.optional(),
      limit: z.number().int().min(1).max(MAX_SCAN_LIMIT).optional(),
    })
    .strict(),
  /** Acquire (or re-acquire, extending the lease) a lock for `ttlMs`. `owner` defaults to the caller's clientId. */
  z.object({ op: z.literal('acquire'), name: lockName, ttlMs, owner: z.string().min(1).max(256).optional() }).strict(),
  z.object({ op: z.literal('renew'), name: lockName, token, ttlMs }).strict(),
  z.object({ op: z.literal('release'), name: lockName, token }).strict(),
]);
/** A request to the kv service. */
export type KvRequest = z.infer<typeof kvRequestSchema>;
/** The name of a kv operation. */
export type KvOp = KvRequest['op'];

/** The kv service's reply schema, by `kind`: value, deleted, cas, scan, granted, held, renewed, released. */
export const kvReplySchema = z.discriminatedUnion('kind', [
  /** get / set / append / incr: the key's value after the operation (null = absent). */
  z.object({ kind: z.literal('value'), key, value: value.nullable() }),
  z.object({ kind: z.literal('deleted'), key, existed: z.boolean() }),
  /** cas: whether it wrote, and the value now stored. */
  z.object({ kind: z.literal('cas'), key, ok: z.boolean(), value: value.nullable() }),
  z.object({ kind: z.literal('scan'), entries: z.array(z.tuple([key, value])), more: z.boolean() }),
  z.object({ kind: z.literal('granted'), name: lockName, token, owner: z.string(), expiresAt: z.number() }),
  z.object({ kind: z.literal('held'), name: lockName, owner: z.string(), until: z.number() }),
  z.object({ kind: z.literal('renewed'), name: lockName, token, expiresAt: z.number() }),
  z.object({ kind: z.literal('released'), name: lockName, released: z.boolean() }),
]);
/** A reply of the kv service. */
export type KvReply = z.infer<typeof kvReplySchema>;
