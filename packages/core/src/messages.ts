/**
 * Every message of the replication protocol, as zod schemas. `Message` is the union; the codec
 * (codec.ts) validates every decoded message against it. docs/PROTOCOL.md describes each one.
 */
import { z } from 'zod';

const seqNo = z.number().int().min(0);
const epochNo = z.number().int().min(0);
const count = z.number().int().min(0);
const id = z.string().min(1).max(256);
const bytes = (min: number, max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length >= min && v.length <= max, `expected ${min}–${max} bytes`);
/** A handshake nonce or a MAC (auth.ts: NONCE_BYTES, MAC_BYTES). */
const nonce = bytes(16, 64);
const macTag = bytes(16, 16);

/** One sequenced request with everything the backup needs to replay it deterministically. */
export const entrySchema = z.object({
  seq: z.number().int().min(1),
  epoch: epochNo,
  clientId: id,
  requestId: z.number().int().min(0),
  /** The request exactly as the client sent it (both sides parse it with the service's schema). */
  body: z.unknown(),
  /** ctx.time chosen by the primary. */
  time: z.number(),
  /** ctx.random() seed chosen by the primary (uint32). */
  seed: z.number().int().min(0).max(0xffffffff),
  /** Digest of the encoded reply (claims 3/8). */
  digest: z.string().max(64),
  /** 'seq-digest' mode with a cluster key: the primary's MAC over the entry (auth.ts entryMac), which the
   * client copies from the reply so the backup can verify what it forwards. */
  mac: macTag.optional(),
});
/** One sequenced request as the primary sends it to the backup: seq, epoch, client and request ids, body, time, seed, digest. */
export type Entry = z.infer<typeof entrySchema>;

export const roleSchema = z.enum(['starting', 'primary', 'backup', 'solo-primary', 'joining', 'stopped']);

export const remoteErrorSchema = z.object({ name: z.string().max(256), message: z.string().max(64 * 1024) });
/** An error as it crosses the wire: its name and message. */
export type RemoteError = z.infer<typeof remoteErrorSchema>;

export const helloSchema = z.object({
  t: z.literal('hello'),
  /** 'transfer': a joiner's state-transfer connection; the replica hands it to its StateSync strategy.
   * 'admin': an operator's tool (status, promote); authenticated like a peer. */
  kind: z.enum(['client', 'peer', 'transfer', 'admin']),
  service: z.string().max(256),
  nodeId: id,
  epoch: epochNo,
  /** A replica's role when it dials its peer (absent for clients). */
  role: roleSchema.optional(),
  /** The dialler's handshake nonce: present when it authenticates (cluster key, or a client key). */
  nonce: nonce.optional(),
  /** A client authenticating with a client key: which one. */
  keyId: id.optional(),
  /** A solo primary covering its dropped backup: it piggybacks every entry after this seq, so the
   * dropped replica can follow by the clients' forwards (docs/PROTOCOL.md, "Follower"). */
  follow: seqNo.optional(),
});

/** Acceptor → dialler, answering a hello with a nonce: its own nonce and its proof (auth.ts). */
export const authChallengeSchema = z.object({ t: z.literal('authChallenge'), nodeId: id, nonce, proof: macTag });
/** Dialler → acceptor: its proof; the connection is authenticated once it verifies. */
export const authProofSchema = z.object({ t: z.literal('authProof'), proof: macTag });
/** Why a connection is refused before it is closed (a typed refusal, docs/SECURITY.md). */
export const authRefusedSchema = z.object({
  t: z.literal('authRefused'),
  code: z.enum([
    'key-required',
    'no-key-here',
    'bad-proof',
    'unknown-client',
    'client-auth-required',
    'handshake-timeout',
    'peer-only',
    'not-a-peer',
  ]),
  reason: z.string().max(1024),
});

export const reqSchema = z.object({
  t: z.literal('req'),
  clientId: id,
  requestId: z.number().int().min(0),
  body: z.unknown(),
  /** 'entries' mode: the client gave up a forward; this reply must carry every unacknowledged entry again. */
  resync: z.literal(true).optional(),
});

export const repSchema = z.object({
  t: z.literal('rep'),
  requestId: z.number().int().min(0),
  /** The replier's current epoch (clients reject replies older than the newest epoch they know). */
  epoch: epochNo,
  /** Sequence number of the request (0 = not sequenced: the request was invalid). */
  seq: seqNo,
  /** Epoch in which the entry was sequenced, when different from `epoch` (a replayed dedup record). */
  entryEpoch: epochNo.optional(),
  digest: z.string().max(64),
  time: z.number(),
  seed: z.number().int().min(0).max(0xffffffff),
  body: z.unknown().optional(),
  error: remoteErrorSchema.optional(),
  /** 'entries' piggyback mode: every entry the backup has not acknowledged, up to this one, as a
   * msgpack-encoded Entry[] — opaque to the client, which relays it to the backup unparsed. */
  entries: z.custom<Uint8Array>((v) => v instanceof Uint8Array).optional(),
  /** replyMode 'sync': the backup already holds the entry, nothing to forward. */
  replicated: z.literal(true).optional(),
  /** With a cluster key, 'entries' mode: the primary's MAC over (seq, entries) (auth.ts packedEntriesMac). */
  entriesMac: macTag.optional(),
  /** With a cluster key, 'seq-digest' mode: the primary's MAC over the entry (auth.ts entryMac). */
  mac: macTag.optional(),
});

export const notPrimarySchema = z.object({
  t: z.literal('notPrimary'),
  requestId: z.number().int().min(0),
  epoch: epochNo,
  role: roleSchema,
});
export const fwdSchema = z.object({
  t: z.literal('fwd'),
  fwdId: z.number().int().min(0),
  /** Entries the client built itself ('seq-digest' mode). */
  entries: z.array(entrySchema),
  /** Packed Entry[] relayed from replies ('entries' mode); the backup decodes and validates them. */
  packed: z
    .array(
      z.object({ upToSeq: z.number().int().min(1), bytes: z.custom<Uint8Array>((v) => v instanceof Uint8Array), mac: macTag.optional() }),
    )
    .max(1024)
    .optional(),
});
export const fwdAckSchema = z.object({ t: z.literal('fwdAck'), fwdId: z.number().int().min(0), epoch: epochNo, role: roleSchema });
export const flushSchema = z.object({
  t: z.literal('flush'),
  epoch: epochNo,
  flushId: z.number().int().min(0),
  entries: z.array(entrySchema),
});
export const flushAckSchema = z.object({
  t: z.literal('flushAck'),
  epoch: epochNo,
  flushId: z.number().int().min(0),
  upToSeq: seqNo,
  role: roleSchema,
});
export const statusSchema = z.object({ t: z.literal('status') });
export const statusReplySchema = z.object({
  t: z.literal('statusReply'),
  role: roleSchema,
  epoch: epochNo,
  appliedSeq: seqNo,
  nodeId: id,
  roleHint: z.enum(['primary', 'backup', 'auto']).optional(),
  /** As in hello: a solo primary covering its dropped backup from this seq. */
  follow: seqNo.optional(),
  /** The replica cannot serve and cannot prove that nothing acknowledged is lost: an operator decides. */
  blocked: z.object({ reason: z.string().max(1024), haveSeq: seqNo, mayLoseFrom: seqNo, mayLoseTo: seqNo.optional() }).optional(),
  /** With a witness: what it last said (witness-gate.ts describe()). */
  witness: z.string().max(512).optional(),
  /** Sent to operator (admin) connections only; older replicas omit it, older operators ignore it. */
  detail: z
    .object({
      unackedEntries: count,
      backupLag: z.object({ seq: count, ms: z.number().min(0) }).optional(),
      clientsConnected: count,
      dedupEntries: count.optional(),
      uptimeMs: z.number().min(0),
      version: z.string().max(64),
      divergences: count,
      bounds: z.object({
        takeoverMs: z.number().min(0),
        worstCaseFailoverMs: z.number().min(0),
        processCrashFailoverMs: z.number().min(0),
        forwardWindowMs: z.number().min(0),
        worstCaseFailoverAfterSoloMs: z.number().min(0).optional(),
      }),
    })
    .optional(),
});
/** P → B: "you are no longer my backup" (P declared it faulty). B acknowledges, then re-joins. */
export const dropSchema = z.object({ t: z.literal('drop'), epoch: epochNo, reason: z.string().max(1024) });
export const dropAckSchema = z.object({ t: z.literal('dropAck'), epoch: epochNo });
/** Operator → a replica that cannot prove nothing is lost: serve with what you have (answered by statusReply). */
export const promoteSchema = z.object({ t: z.literal('promote'), acceptLoss: z.literal(true) });
export const stateReqSchema = z.object({
  t: z.literal('stateReq'),
  nodeId: id,
  /** The joiner already holds a state verified equal to the primary's at this seq (streamed through the
   * StateSync strategy); with `haveDigest`, its state digest there. The primary may answer with a delta. */
  haveSeq: seqNo.optional(),
  haveDigest: z.string().max(256).optional(),
  /** A dropped backup that followed the solo primary: its state is the primary's history up to `seq` in
   * `epoch`; the primary may admit it with the entries after `seq` from its log, no state transfer. */
  resume: z.object({ seq: seqNo, epoch: epochNo }).optional(),
});
export const dedupRecordSchema = z.tuple([
  z.string(), // key: clientId + '\u0000' + requestId
  z.object({
    seq: z.number().int().min(1),
    epoch: epochNo,
    digest: z.string(),
    time: z.number(),
    seed: z.number(),
    body: z.unknown().optional(),
    error: remoteErrorSchema.optional(),
  }),
]);
export const stateSnapSchema = z.object({
  t: z.literal('stateSnap'),
  epoch: epochNo,
  seq: seqNo,
  version: z.number().int().min(0),
  snapshot: z.unknown(),
  dedup: z.array(dedupRecordSchema),
  /** Answer to a stateReq with haveSeq (or resume): no state (the joiner keeps the one it holds at `seq`). */
  delta: z.literal(true).optional(),
  /** With `delta`: the entries after `seq` up to the primary's head, which the joiner applies before it
   * calls itself backup — so a backup holds every write its primary acknowledged before admitting it
   * (when they fit in one message; otherwise they come with the first flushes). */
  entries: z.array(entrySchema).optional(),
});

export const messageSchema = z.discriminatedUnion('t', [
  helloSchema,
  reqSchema,
  repSchema,
  notPrimarySchema,
  fwdSchema,
  fwdAckSchema,
  flushSchema,
  flushAckSchema,
  statusSchema,
  statusReplySchema,
  stateReqSchema,
  stateSnapSchema,
  dropSchema,
  dropAckSchema,
  authChallengeSchema,
  authProofSchema,
  authRefusedSchema,
  promoteSchema,
]);

/** Any message of the replication protocol, discriminated by `t` (docs/PROTOCOL.md). */
export type Message = z.infer<typeof messageSchema>;
/** The first message on a connection: who dials (client, peer, transfer, admin), for which service, at which epoch. */
export type Hello = z.infer<typeof helloSchema>;
/** Client → primary: one request, with the client's id and request number (the exactly-once key). */
export type Req = z.infer<typeof reqSchema>;
/** Primary → client: the reply, its seq, epoch and digest, and the state information the client forwards to the backup. */
export type Rep = z.infer<typeof repSchema>;
/** Replica → client: this replica does not serve (its role and epoch); try the other one. */
export type NotPrimary = z.infer<typeof notPrimarySchema>;
/** Client → backup: state information forwarded from replies (entries it built, or packed entries relayed as received). */
export type Fwd = z.infer<typeof fwdSchema>;
/** Backup → client: a forward was applied (with the backup's epoch and role). */
export type FwdAck = z.infer<typeof fwdAckSchema>;
/** Primary → backup: entries not yet acknowledged (an empty flush is the heartbeat). */
export type Flush = z.infer<typeof flushSchema>;
/** Backup → primary: every entry up to `upToSeq` is applied. */
export type FlushAck = z.infer<typeof flushAckSchema>;
/** A replica's answer to a status request: role, epoch, applied seq, node id, and more. */
export type StatusReply = z.infer<typeof statusReplySchema>;
/** Primary → joiner: a snapshot of the state at a seq and epoch, with its version and the exactly-once records. */
export type StateSnap = z.infer<typeof stateSnapSchema>;
/** Joiner → primary: send me your state (optionally: I already hold it verified at this seq). */
export type StateReq = z.infer<typeof stateReqSchema>;
/** Primary → backup: you are no longer my backup (declared faulty); acknowledge, then re-join. */
export type Drop = z.infer<typeof dropSchema>;
/** Backup → primary: the drop was received. */
export type DropAck = z.infer<typeof dropAckSchema>;
/** Acceptor → dialler during the handshake: its nonce and its proof. */
export type AuthChallenge = z.infer<typeof authChallengeSchema>;
/** Dialler → acceptor during the handshake: its proof. */
export type AuthProof = z.infer<typeof authProofSchema>;
/** A typed refusal sent before a connection is closed: its code and reason. */
export type AuthRefused = z.infer<typeof authRefusedSchema>;
/** Why a handshake was refused: key required or absent, bad proof, unknown client, client auth required, timeout, peer-only. */
export type AuthRefusalCode = AuthRefused['code'];
/** One exactly-once record as a snapshot carries it: [clientId + NUL + requestId, the recorded reply]. */
export type DedupRecordWire = z.infer<typeof dedupRecordSchema>;
/** The `t` of a protocol message. */
export type MessageType = Message['t'];
