/**
 * The public API of @tandem/core (types only). Implementations live in service.ts, client.ts,
 * replica.ts (primary + backup), config.ts. This file is the agreement between the core, the apps
 * (apps/kv), the simulator (@tandem/testkit) and state transfer (@tandem/state-transfer).
 */
import type { z } from 'zod';
import type { Env } from './env.js';

/** Deterministic context handed to `apply`; fixed by the primary when it sequences the request and
 * recorded in the log entry, so the backup replays identically. */
export interface ApplyContext {
  /** Sequence number of this entry (1, 2, 3, …). */
  readonly seq: number;
  /** Epoch in which the primary sequenced it. */
  readonly epoch: number;
  /** Wall-clock ms chosen by the primary (env.wallClock()) — use it instead of reading the system clock. */
  readonly time: number;
  /** Deterministic PRNG seeded from a value the primary drew and recorded — use it instead of a global random source. */
  random(): number;
  /** Who sent it (for services that need it, e.g. lock owners). */
  readonly clientId: string;
  readonly requestId: number;
}

/** A user-defined deterministic state machine. */
export interface ServiceDefinition<State, Req, Rep> {
  /** Name, checked at handshake so a client cannot talk to the wrong service. */
  name: string;
  /** State format version (state-transfer uses it for migrations). Default 1. */
  version?: number;
  request: z.ZodType<Req>;
  reply: z.ZodType<Rep>;
  initialState(): State;
  /** Apply one request. May mutate `state` in place. Must be deterministic given (state, request, ctx).
   * A thrown error becomes an application error reply (also deterministic, also recorded). */
  apply(state: State, request: Req, ctx: ApplyContext): Rep;
  /** A msgpack-encodable copy of the state. */
  snapshot(state: State): unknown;
  restore(snapshot: unknown): State;
  /** Optional digest of the state for convergence checks; default: hash of the encoded snapshot. */
  digest?(state: State): string;
}

/** How much state information a reply carries (claims 3/8 vs claims 2/7). */
export type PiggybackMode =
  /** epoch + seq + reply digest; the client forwards its own request with them. */
  | 'seq-digest'
  /** every log entry since the last flush the backup acknowledged; any surviving client carries all. */
  | 'entries';

/** `async` = this protocol (reply before backup); `sync` = conventional (primary waits for the backup's
 * ack before replying) — for comparison benchmarks only. */
export type ReplyMode = 'async' | 'sync';

export interface ReplicationConfig {
  piggyback: PiggybackMode;
  replyMode: ReplyMode;
  /** Flush the primary's queue to the backup when it holds this many entries (claims 5/10). */
  flushMaxEntries: number;
  /** …or when this many ms have passed; an empty flush is the heartbeat (claims 4/9). */
  flushIntervalMs: number;
  /** The backup suspects the primary after this long without a flush. */
  heartbeatTimeoutMs: number;
  /** A message without an ack is resent after this long… */
  ackTimeoutMs: number;
  /** …this many times before its peer is considered faulty. */
  maxRetransmits: number;
  /** A client request without a reply in time is resent to both servers after this long. */
  requestTimeoutMs: number;
  /** A client gives up a call after this long in total (ServiceUnavailableError). */
  callDeadlineMs: number;
  /** The client batches forwards for at most this long before sending them to the backup. */
  forwardDelayMs: number;
  /** Bound on a client's not-yet-acknowledged forwards; new calls wait when it is full. */
  maxPendingForwards: number;
  /** Bound on the primary's unacknowledged entries before the backup is declared faulty. */
  maxUnackedEntries: number;
  /** Bounded exactly-once window: remembered (clientId, requestId) → reply records. */
  dedupWindow: number;
  /** Bound on the bytes of reply bodies the dedup window keeps; beyond it the oldest records keep only
   * (seq, digest): a retransmission of such a request is answered with a ReplyExpiredError — never
   * applied twice. Keeps memory and the state copy bounded when replies are large. */
  dedupMaxBytes: number;
  /** Maximum message size on every connection. */
  maxMessageSize: number;
}

/** Derived timing bounds, printed at startup and documented in docs/PROTOCOL.md. */
export interface TimingBounds {
  /** Worst-case time from the primary's death to the backup serving (detection + forward window). */
  takeoverMs: number;
  /** The window the backup waits for in-flight client forwards after heartbeat silence. */
  forwardWindowMs: number;
  /** Worst-case time from the primary's death to a client's first successful reply. */
  worstCaseFailoverMs: number;
}

export type Role = 'starting' | 'primary' | 'backup' | 'solo-primary' | 'joining' | 'stopped';

export interface ReplicaOptions<State, Req, Rep> {
  service: ServiceDefinition<State, Req, Rep>;
  env: Env;
  /** Address this replica listens on for clients and its peer, e.g. tcp://127.0.0.1:7001. */
  listen: string;
  /** The peer replica's address. */
  peer: string;
  /** 'primary' / 'backup' force the initial role when no active primary is found; 'auto' probes the peer first. */
  roleHint?: 'primary' | 'backup' | 'auto';
  /** Stable id for logs; default derived from the listen address. */
  nodeId?: string;
  config?: Partial<ReplicationConfig>;
  /** Consulted before this replica serves alone (takeover, or dropping a faulty backup). Default: allow.
   * The door for a third-party witness that breaks P/B partitions (docs/PROTOCOL.md). */
  witness?: Witness;
  /** How a joining backup gets the primary's state. Default: the whole-state copy (`wholeStateSync`). */
  stateSync?: StateSync;
  /** TEST ONLY: switch on a deliberately broken behaviour so a simulator can prove it detects it.
   * 'no-forward-wait': take over at heartbeat timeout without the forward window;
   * 'unordered-apply': the backup applies entries as they arrive, skipping gaps;
   * 'skip-dedup': the primary applies a retransmitted request again. Never use in production. */
  faultInjection?: { variant: BrokenVariant };
}

export type BrokenVariant = 'no-forward-wait' | 'unordered-apply' | 'skip-dedup';

/** A third party that decides whether a replica may serve alone (e.g. a lock in a coordination service). */
export interface Witness {
  mayServeAlone(request: { nodeId: string; epoch: number; reason: 'takeover' | 'peer-faulty' | 'startup' }): boolean | Promise<boolean>;
}

/** The replicated state as it travels to a joining backup (the default copies all of it at once). */
export interface StateSnapshot {
  /** Sequence number the snapshot reflects (every entry ≤ seq applied). */
  seq: number;
  /** The service's state format version. */
  version: number;
  /** service.snapshot(state). */
  snapshot: unknown;
  /** The dedup window (exactly-once records), oldest first. */
  dedup: [string, unknown][];
}

/** Strategy for bringing a joining backup up to date (`@tandem/state-transfer` plugs in here). */
export interface StateSync {
  /** Primary: capture the state synchronously at the current seq. */
  capture(snapshot: StateSnapshot): StateSnapshot;
  /** Joining backup: check or convert what arrived before it is restored (e.g. version migration). */
  install(snapshot: StateSnapshot): StateSnapshot;
}

export interface ReplicaStatus {
  nodeId: string;
  role: Role;
  epoch: number;
  /** Highest sequence number applied. */
  appliedSeq: number;
  stateDigest: string;
  /** Entries sequenced but not yet acknowledged by the backup (primary only). */
  unackedEntries: number;
  divergences: number;
}

export type ReplicaEvent =
  | { type: 'role'; role: Role; epoch: number }
  | { type: 'takeover'; epoch: number; appliedSeq: number; silenceMs: number }
  | { type: 'step-down'; epoch: number; newerEpoch: number }
  | { type: 'divergence'; seq: number; expectedDigest: string; actualDigest: string }
  | { type: 'peer-faulty'; reason: string }
  | { type: 'peer-joined'; seq: number }
  | { type: 'protocol-error'; remote: string; error: Error }
  /** Entries a backup held beyond a gap at takeover (or forwarded too late): replies clients may have
   * received that the new primary cannot reflect — the seq-digest primary-host-crash gap. */
  | { type: 'lost-entries'; epoch: number; seqs: number[] };

export interface Replica<State> {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): ReplicaStatus;
  /** The bound listen address (with the real port when port 0 was asked for). */
  readonly address: string;
  /** Read-only view of the current state (for tests and digests; do not mutate). */
  readonly state: State;
  on(listener: (event: ReplicaEvent) => void): () => void;
}

export interface ClientOptions<Req, Rep> {
  /** The service's schemas (for validating replies) and name. */
  service: Pick<ServiceDefinition<unknown, Req, Rep>, 'name' | 'request' | 'reply'>;
  env: Env;
  /** The logical server: the two replicas' addresses. */
  servers: readonly [string, string];
  config?: Partial<ReplicationConfig>;
  /** Default: 16 random bytes from env, hex. */
  clientId?: string;
}

export interface CallResult<Rep> {
  reply: Rep;
  seq: number;
  epoch: number;
}

export interface Client<Req, Rep> {
  readonly clientId: string;
  /** Send one request; resolves with the reply as soon as the primary answers (before any forwarding).
   * Exactly-once: retries reuse the same requestId. Rejects with ServiceUnavailableError after
   * callDeadlineMs, or ApplicationError when the service threw. */
  call(request: Req): Promise<Rep>;
  callWithInfo(request: Req): Promise<CallResult<Rep>>;
  /** Wait until every forward has been acknowledged by the backup (or dropped as faulty). */
  drain(): Promise<void>;
  close(): Promise<void>;
}
