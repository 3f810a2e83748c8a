/**
 * The public API of @tandem/core (types only). Implementations live in service.ts, client.ts,
 * replica.ts (primary + backup), config.ts. This file is the agreement between the core, the apps
 * (apps/kv), the simulator (@tandem/testkit) and state transfer (@tandem/state-transfer).
 */
import type { Connection } from '@tandem/transport';
import type { z } from 'zod';
import type { Env } from './env.js';
import type { AuthRefusalCode, Entry } from './messages.js';
import type { ClientMetricsSink, ReplicaMetricsSink } from './metrics.js';
import type { ClientCredentials, ReplicaSecurity } from './security.js';

export type { ClientCredentials, ReplicaSecurity } from './security.js';

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
  /** The client's number for this request (with clientId, the exactly-once key). */
  readonly requestId: number;
}

/** A user-defined deterministic state machine. */
export interface ServiceDefinition<State, Req, Rep> {
  /** Name, checked at handshake so a client cannot talk to the wrong service. */
  name: string;
  /** State format version (state-transfer uses it for migrations). Default 1. */
  version?: number;
  /** Schema of a request: requests that fail it are refused with InvalidRequestError before sequencing. */
  request: z.ZodType<Req>;
  /** Schema of a reply: the client validates replies with it. */
  reply: z.ZodType<Rep>;
  /** The state of a fresh replica (before any request). */
  initialState(): State;
  /** Apply one request. May mutate `state` in place. Must be deterministic given (state, request, ctx).
   * A thrown error becomes an application error reply (also deterministic, also recorded). */
  apply(state: State, request: Req, ctx: ApplyContext): Rep;
  /** A msgpack-encodable copy of the state. */
  snapshot(state: State): unknown;
  /** A state from a `snapshot` result (after a state transfer or a restart). */
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

/** Replication settings shared by a pair and its clients: piggyback and reply modes, flush, heartbeat, ack and request timing, bounds. */
export interface ReplicationConfig {
  /** What a reply carries for the backup: every unacknowledged entry (`entries`, default) or the seq and digest (`seq-digest`). */
  piggyback: PiggybackMode;
  /** `async` (default): the primary replies at once, the client forwards; `sync`: the primary replies once the backup holds the entry. */
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
  /** Process-crash fast path: a reset from the primary confirmed by a refused dial lets the backup take
   * over after processCrashGraceMs instead of the heartbeat silence (docs/PROTOCOL.md). Default false:
   * it rests on timing (every answered client's forward arrives within processCrashTransitMs beyond
   * forwardDelayMs), not on a proof — a client or network later than that loses its last write (reported as
   * `lost-entries`). Turn it on where that allowance holds (one host, loopback, no packet loss). */
  fastFailover: boolean;
  /** The allowance, beyond forwardDelayMs, for a reply's transit, a client's scheduling lateness and its
   * forward's transit on the process-crash fast path. Default 20. */
  processCrashTransitMs: number;
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

/** A replica's role: starting, primary, backup, primary without a backup (solo-primary), joining by state transfer, or stopped. */
export type Role = 'starting' | 'primary' | 'backup' | 'solo-primary' | 'joining' | 'stopped';

/** Options of createReplica: the service, the Env, this replica's and its peer's addresses, role hint, settings, security, hooks. */
export interface ReplicaOptions<State, Req, Rep> {
  /** The replicated service (both replicas must run the same name and version). */
  service: ServiceDefinition<State, Req, Rep>;
  /** Clock, timers, randomness, network and logger (`nodeEnv(...)` in a real process). */
  env: Env;
  /** Address this replica listens on for clients and its peer, e.g. tcp://127.0.0.1:7001. */
  listen: string;
  /** The peer replica's address. */
  peer: string;
  /** 'primary' / 'backup' force the initial role when no active primary is found; 'auto' probes the peer first. */
  roleHint?: 'primary' | 'backup' | 'auto';
  /** Stable id for logs; default derived from the listen address. */
  nodeId?: string;
  /** Replication settings (defaults: DEFAULT_REPLICATION_CONFIG); both replicas and their clients must agree. */
  config?: Partial<ReplicationConfig>;
  /** Consulted before this replica serves alone (takeover, or dropping a faulty backup). Default: allow.
   * The door for a third-party witness that breaks P/B partitions (docs/PROTOCOL.md). */
  witness?: Witness;
  /** How a joining backup gets the primary's state. Default: the whole-state copy (`wholeStateSync`). */
  stateSync?: StateSync;
  /** Who may connect as the peer and as a client (docs/SECURITY.md). Without a cluster key the replica
   * refuses to listen beyond loopback unless `insecure`. */
  security?: ReplicaSecurity;
  /** Optional hooks for a layer above the core (causal replication, `@tandem/causal`); without them the
   * replica behaves exactly as before. */
  hooks?: ReplicaHooks;
  /** Where the replica reports request outcomes and latencies, flush round trips, forwards, connections,
   * bytes and events (`@tandem/metrics-prometheus` maps them to Prometheus). Default: none (no cost). */
  metrics?: ReplicaMetricsSink;
}

/** A request as a serving replica's admission hook sees it (before it is sequenced). */
export interface HeldRequest {
  /** The caller's client id. */
  readonly clientId: string;
  /** The caller's request number (with clientId, the exactly-once key). */
  readonly requestId: number;
  /** The request body exactly as the client sent it (already valid for the service's request schema). */
  readonly body: unknown;
}

/**
 * Small generic hooks into a serving replica (primary or solo primary). They run only where requests are
 * sequenced — the backup replays the log and never calls them — so whatever they decide must show in the
 * log (the order of entries, their bodies) to be replicated. `@tandem/causal`'s `causalReplicaHooks` uses
 * them to sequence a request only after its causal predecessors and to send a service's outbound messages.
 */
export interface ReplicaHooks {
  /**
   * Called before sequencing a request that is not a duplicate (duplicates are answered from the dedup
   * window first) with the current state (read only). `true` sequences it now; `false` holds it: not
   * sequenced, not answered. Held requests are offered again, in arrival order, after every entry this
   * replica applies; a retransmission replaces the held copy. A request held longer than
   * `holdTimeoutMs` is answered with an error reply (`seq` 0, name `HoldTimeoutError`), never sequenced.
   */
  admit?(request: HeldRequest, state: unknown): boolean;
  /** How long a request may stay held by `admit` (default 10 000 ms). */
  holdTimeoutMs?: number;
  /**
   * Called after the serving replica applied `entry` (state already updated), before its reply goes out.
   * A returned promise delays that reply until it settles (FIG. 4a: reply only after a callee answered);
   * anything else lets it go at once. A retransmission of that request waits for the same promise. (With
   * replyMode 'sync' the reply waits for the backup's acknowledgement only.)
   */
  afterApply?(entry: Entry, state: unknown): Promise<void> | undefined;
}

/** Why a replica asks its witness: a backup taking over, a primary dropping a faulty backup, a replica
 * starting with no peer, or a replica serving alone whose grant lapsed (`Witness.holds` said false). */
export type WitnessReason = 'takeover' | 'peer-faulty' | 'startup' | 'renew';

/** What a replica asks its witness. */
export interface WitnessRequest {
  /** The asking replica. */
  nodeId: string;
  /** The epoch the replica will serve at (a takeover asks with its epoch + 1). */
  epoch: number;
  /** Why it asks: a takeover, a peer declared faulty, startup, or a renewal. */
  reason: WitnessReason;
}

/**
 * A third party that decides whether a replica may serve alone (e.g. a lock in a coordination service:
 * `@tandem/witness-etcd`). Safety rule a witness must keep: while one replica's grant is in force, no
 * other replica is granted; a request with an epoch lower than one already granted is refused.
 *
 * A replica asks before it serves alone; a refusal (or a rejected promise: the witness is unreachable)
 * keeps it passive and it asks again later. While the pair is healthy (primary and backup in contact)
 * nothing asks: the witness is off the request path.
 */
export interface Witness {
  /** Grant (true) or refuse (false) serving alone at `request.epoch`. */
  mayServeAlone(request: WitnessRequest): boolean | Promise<boolean>;
  /**
   * Optional: true while the last grant is certainly still in force for at least `marginMs` more (a lease
   * renewed in time: no other replica can be granted before then). A replica serving alone answers only
   * while it is true, with `marginMs` = its forward window — so every reply it sent has been forwarded to
   * the peer before the peer can be granted a takeover; once false it holds requests and asks again with
   * reason 'renew' — and steps down when refused. Without it a grant lasts until `release`.
   */
  holds?(marginMs: number): boolean;
  /** Optional: the replica no longer serves alone (a backup joined, it stepped down, it stopped): give the
   * grant up so the peer need not wait for a lease to expire. Errors are logged, never thrown. */
  release?(request: { nodeId: string; epoch: number }): void | Promise<void>;
  /** Optional: how long a grant outlives its holder's silence (a lease TTL), in ms: a takeover after the
   * holder died can wait this long. Counted in the printed worst-case failover with a witness. */
  readonly leaseMs?: number;
  /** Optional: one line for logs and status ("owner at epoch 3, lease renewed 120 ms ago", "unreachable"). */
  describe?(): string;
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
  /**
   * Serving replica (optional): called each time this replica starts serving (solo primary or primary)
   * with a live view of its state; the attachment lives until `detach()` (step-down, stop). Lets a
   * strategy stream a consistent state to joiners while this replica goes on serving
   * (`streamingStateSync` in @tandem/state-transfer).
   */
  attachPrimary?(view: PrimaryStateView): PrimaryAttachment;
  /**
   * Joining replica (optional): bring `ctx.target` to a state verified equal to the primary's at some
   * seq N before asking to join. Resolves with N and the state digest there (the joiner then sends
   * `stateReq {haveSeq: N, haveDigest}`), or undefined / a rejection to fall back to the whole-state copy.
   */
  fetch?(ctx: StateFetchContext): Promise<StateFetchResult | undefined>;
}

/** A serving replica's state as a StateSync strategy sees it. Properties are live: read them when needed. */
export interface PrimaryStateView {
  /** The serving replica's node id. */
  readonly nodeId: string;
  /** The service's name. */
  readonly serviceName: string;
  /** The service's state format version. */
  readonly version: number;
  /** The live state (read only: never mutate it). */
  readonly state: unknown;
  /** Highest seq applied. */
  readonly appliedSeq: number;
  /** The current epoch. */
  readonly epoch: number;
  /** The injected environment of the replica (clock, timers, network). */
  readonly env: Env;
  /** The dedup window now (copies of its records, oldest first): the exactly-once data fixed with a snapshot. */
  exportDedup(): [string, unknown][];
  /** The replica's state digest at appliedSeq (service state + seq + dedup window); a joiner's equals it at
   * the same seq exactly when their states are equal. */
  digest(): string;
  /** Every entry this replica applies from now on, in seq order, synchronously after applying it (feeds a
   * catch-up backlog). Returns an unsubscribe function. */
  onApplied(listener: (entry: Entry) => void): () => void;
}

/** What a strategy gives a serving replica (see StateSync.attachPrimary). */
export interface PrimaryAttachment {
  /** A connection whose first message was `hello {kind: 'transfer'}`, handed over by the replica's accept
   * loop with its remaining messages (without one, such connections are closed). */
  acceptTransfer?(conn: Connection, hello: { nodeId: string }): void;
  /** A joiner asks to join holding a state at `haveSeq` with digest `haveDigest`: true when this strategy
   * verified that joiner equal to this replica at exactly that seq and digest (may wait briefly for the
   * verification to be reported). */
  verifiedAt?(request: { nodeId: string; haveSeq: number; haveDigest: string }): boolean | Promise<boolean>;
  /** The entries after `seq` up to appliedSeq, in order (from the strategy's backlog), or undefined when
   * they are no longer all held. Synchronous: read in the same turn as the join. */
  entriesAfter?(seq: number): readonly Entry[] | undefined;
  /** This replica stopped serving: end transfers, forget verifications, stop listening to onApplied. */
  detach(): void;
}

/** What a joining replica's StateSync.fetch works with. */
export interface StateFetchContext {
  /** The primary's address (the replica's peer). */
  readonly peer: string;
  /** The joining replica's node id. */
  readonly nodeId: string;
  /** The service's name. */
  readonly serviceName: string;
  /** The joining replica's environment (clock, timers, network). */
  readonly env: Env;
  /** The joiner's own state, to install a snapshot into and apply the log to. */
  readonly target: JoinTarget;
  /** Open a state-transfer connection to the peer: its listen address, first message `hello {kind:
   * 'transfer'}`; the peer's replica hands it to its strategy's `acceptTransfer`. */
  dialTransfer(): Promise<Connection>;
  /** Called when the fetch must stop (the replica stops or leaves the join). */
  onCancel(listener: () => void): void;
}

/** The joining replica's state machine, as StateSync.fetch drives it. */
export interface JoinTarget {
  /** Highest seq applied to the joiner's state. */
  readonly appliedSeq: number;
  /** Replace the state: `state` (already restored by the service), every entry ≤ seq applied, and the
   * dedup window fixed at seq (validated; throws on malformed records). */
  install(installed: { seq: number; state: unknown; dedup: readonly unknown[] }): void;
  /** Apply the next log entry (validated; seq must be appliedSeq + 1). Throws on a reply-digest mismatch
   * (reported as a `divergence` event) or a malformed entry. */
  apply(entry: unknown): void;
  /** State digest at appliedSeq (comparable with PrimaryStateView.digest). */
  digest(): string;
}

/** The outcome of a state fetch: the seq and digest the joiner's state was verified at. */
export interface StateFetchResult {
  /** The seq the joiner's state was verified at. */
  seq: number;
  /** Its state digest there. */
  digest: string;
}

/** What a replica reports of itself: role, epoch, applied seq, digest, unacknowledged entries, failure counters. */
export interface ReplicaStatus {
  /** The replica's node id. */
  nodeId: string;
  /** Its current role. */
  role: Role;
  /** Its current epoch (raised at every takeover). */
  epoch: number;
  /** Highest sequence number applied. */
  appliedSeq: number;
  /** Digest of its state at appliedSeq (equal on both replicas at the same seq). */
  stateDigest: string;
  /** Entries sequenced but not yet acknowledged by the backup (primary only). */
  unackedEntries: number;
  /** Divergences detected: state information (flushed or forwarded) that did not match what this replica sequenced or holds. */
  divergences: number;
  /** Handshakes that failed: connections this replica refused (no or wrong key, a client posing as a
   * peer, timeouts) and dials of the peer that it refused or that could not prove the key. */
  authFailures: number;
  /** Forwarded state information that failed the primary's MAC (reported, never applied). */
  forgedForwards: number;
  /** A dropped backup following the solo primary of `epoch` by the clients' forwards (docs/PROTOCOL.md,
   * "Follower"): it can resume as backup without a state transfer, or take over if that primary dies. */
  following?: { epoch: number; pendingEntries: number };
  /** A solo primary covering its dropped backup: every entry after `fromSeq` is piggybacked for it. */
  covering?: { fromSeq: number };
  /** This replica cannot serve and cannot prove that nothing acknowledged is lost; it waits for its peer,
   * or for an operator (`promote({ acceptLoss: true })`, `tandem-kv promote --accept-loss`). */
  blocked?: BlockedStatus;
  /** With a witness: what it last answered (granted, refused, unreachable…) and its own one-line state. */
  witness?: string;
  /** A primary's backup lag: entries sequenced but not acknowledged by the backup (`seq`), and the age in ms
   * (env.wallClock) of the oldest of them (`ms`, 0 when none). Absent on every other role. */
  backupLag?: { seq: number; ms: number };
  /** Client connections open now. */
  clientsConnected: number;
  /** Records in the exactly-once (dedup) window now. */
  dedupEntries: number;
  /** ms since `start()` (env.now()). */
  uptimeMs: number;
  /** The @tandem/core version this replica runs. */
  version: string;
  /** The timing bounds in force (from the configuration and, with a witness that says, its lease). */
  bounds: StatusBounds;
}

/** The computed timing bounds a replica reports in its status (docs/PROTOCOL.md, "Timing bounds"). */
export interface StatusBounds {
  /** Worst case from the primary's death to the backup serving. */
  takeoverMs: number;
  /** Worst case from the primary's host crash (silence) to a client's first successful reply. */
  worstCaseFailoverMs: number;
  /** Process crash (reset + refused dial): to a client's first reply; equals worstCaseFailoverMs without fastFailover. */
  processCrashFailoverMs: number;
  /** The window the backup waits for in-flight forwards after silence. */
  forwardWindowMs: number;
  /** With a witness that reports its lease: the worst case when the dead replica served alone and held the grant. */
  worstCaseFailoverAfterSoloMs?: number;
}

/** Why a replica cannot serve without an operator (see Replica.promote): the seqs whose acknowledged writes could be lost. */
export interface BlockedStatus {
  /** Why it is blocked, in words. */
  reason: string;
  /** The seq this replica's state holds. */
  haveSeq: number;
  /** Acknowledged writes from this seq on may be lost if an operator promotes this replica… */
  mayLoseFrom: number;
  /** …up to this one, when known (the highest seq seen from the replica that served). */
  mayLoseTo?: number;
}

/** What a replica reports as it runs: role changes, takeovers, divergences, lost entries, state transfers, refused peers. */
export type ReplicaEvent =
  | { type: 'role'; role: Role; epoch: number }
  /** `follower`: a dropped backup took over from a solo primary that died, with the entries the clients
   * forwarded to it meanwhile. */
  | { type: 'takeover'; epoch: number; appliedSeq: number; silenceMs: number; follower?: true }
  | { type: 'step-down'; epoch: number; newerEpoch: number }
  | { type: 'divergence'; seq: number; expectedDigest: string; actualDigest: string }
  | { type: 'peer-faulty'; reason: string }
  /** `mode`: 'copy' = the whole state was sent in one stateSnap; 'delta' = the joiner streamed a verified
   * state first and received only the entries after `seq`. */
  /** 'resume': a dropped backup that followed came back with the entries after its own seq (no transfer). */
  | { type: 'peer-joined'; seq: number; mode?: 'copy' | 'delta' | 'resume' }
  | { type: 'protocol-error'; remote: string; error: Error }
  /** Entries a backup held beyond a gap at takeover (or forwarded too late): replies clients may have
   * received that the new primary cannot reflect — the seq-digest primary-host-crash gap. */
  | { type: 'lost-entries'; epoch: number; seqs: number[] }
  /** A handshake failed and the connection was closed; nothing else changed. `side`: 'accepted' = this
   * replica refused a connection; 'dialled' = its dial of the peer was refused or the peer's proof failed. */
  | { type: 'auth-refused'; side: 'accepted' | 'dialled'; remote: string; code: AuthRefusalCode; reason: string }
  /** The replica cannot serve and cannot prove nothing acknowledged is lost (see ReplicaStatus.blocked). */
  | ({ type: 'blocked' } & BlockedStatus)
  /** An operator promoted this replica (`promote({ acceptLoss: true })`): it serves from `appliedSeq` at
   * `epoch`; writes in [lostFrom, lostTo] acknowledged by the failed primary may be lost. */
  | { type: 'promoted'; epoch: number; appliedSeq: number; lostFrom: number; lostTo?: number }
  /** A client forwarded state information without the primary's valid MAC: not applied. `seqs`: the
   * entry seqs (seq-digest mode) or the reply seq the list was attached to (entries mode). */
  | { type: 'forged-forward'; remote: string; seqs: number[]; reason: string };

/** One replica of a primary/backup pair, created by createReplica. */
export interface Replica<State> {
  /** Listen, find the peer and take the initial role; resolves once the replica serves or is backup. */
  start(): Promise<void>;
  /** Stop: close the listener and every connection, cancel every timer. Idempotent. */
  stop(): Promise<void>;
  /** The replica's current status. */
  status(): ReplicaStatus;
  /**
   * Operator action for a replica that cannot prove nothing acknowledged is lost (ReplicaStatus.blocked):
   * serve now, from the state it holds (and every forwarded entry it can order), at a new epoch.
   * Acknowledged writes it does not hold are lost — hence `acceptLoss`. No effect on a serving replica.
   */
  promote(options: { acceptLoss: true }): Promise<void>;
  /** The metrics sink (ReplicaOptions.metrics); assign one to start reporting (undefined: none). */
  metrics: ReplicaMetricsSink | undefined;
  /** The bound listen address (with the real port when port 0 was asked for). */
  readonly address: string;
  /** Read-only view of the current state (for tests and digests; do not mutate). */
  readonly state: State;
  /** Subscribe to the replica's events; returns a function that unsubscribes. */
  on(listener: (event: ReplicaEvent) => void): () => void;
}

/** Options of createClient: the service's schemas and name, the Env, the pair's two addresses, settings, id, credentials, metrics. */
export interface ClientOptions<Req, Rep> {
  /** The service's schemas (for validating replies) and name. */
  service: Pick<ServiceDefinition<unknown, Req, Rep>, 'name' | 'request' | 'reply'>;
  /** Clock, timers, randomness, network and logger (`nodeEnv(...)` in a real process). */
  env: Env;
  /** The logical server: the two replicas' addresses. */
  servers: readonly [string, string];
  /** Replication settings; the timing ones must match the replicas'. */
  config?: Partial<ReplicationConfig>;
  /** Default: 16 random bytes from env, hex. */
  clientId?: string;
  /** A client key, for replicas that require client authentication (ReplicaSecurity.requireClientAuth). */
  credentials?: ClientCredentials;
  /** Where the client reports calls by outcome and latency, retries and failovers seen. Default: none. */
  metrics?: ClientMetricsSink;
}

/** A reply with the sequence number and epoch it was applied at. */
export interface CallResult<Rep> {
  /** The service's reply. */
  reply: Rep;
  /** The sequence number the request was applied at. */
  seq: number;
  /** The epoch of the replica that answered. */
  epoch: number;
}

/** A client of a replicated service: exactly-once calls that fail over between the pair's two addresses. */
export interface Client<Req, Rep> {
  /** This client's id (random unless given): with each request number, the exactly-once key. */
  readonly clientId: string;
  /** Send one request; resolves with the reply as soon as the primary answers (before any forwarding).
   * Exactly-once: retries reuse the same requestId. Rejects with ServiceUnavailableError after
   * callDeadlineMs, or ApplicationError when the service threw. */
  call(request: Req): Promise<Rep>;
  /** Like `call`, with the sequence number and epoch the reply was applied at. */
  callWithInfo(request: Req): Promise<CallResult<Rep>>;
  /** Wait until every forward has been acknowledged by the backup (or dropped as faulty). */
  drain(): Promise<void>;
  /** Close the client: calls in progress reject with StoppedError, forwarding stops (call `drain` first to wait for it). */
  close(): Promise<void>;
}
