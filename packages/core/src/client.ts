/**
 * The client stack: one logical server made of two replicas. Requests go to the replica believed to be
 * primary; a request without a reply within requestTimeoutMs is re-sent to both (same requestId, so it
 * is applied at most once); the reply is handed to the application first, then its state information is
 * forwarded to the other replica.
 */
import type { CloseInfo } from '@tandem/transport';
import type { CallResult, Client, ClientOptions, ReplicationConfig } from './api.js';
import { codec } from './codec.js';
import { computeTimingBounds, resolveConfig } from './config.js';
import type { Env, TimerHandle } from './env.js';
import {
  ApplicationError,
  InvalidRequestError,
  ProtocolViolationError,
  ServiceUnavailableError,
  StaleEpochError,
  StoppedError,
} from './errors.js';
import { ForwardQueue } from './forward-queue.js';
import { KeyRing } from './auth.js';
import { AuthenticationError } from './handshake.js';
import type { Link } from './link.js';
import type { Entry, Hello, Message, NotPrimary, Rep as RepMessage } from './messages.js';
import type { ClientCallOutcome, ClientMetricsSink } from './metrics.js';
import { ServerConnection } from './server-connection.js';

interface PendingCall {
  requestId: number;
  body: unknown;
  bytes: Uint8Array;
  startedAt: number;
  timer: TimerHandle | undefined;
  redirected: boolean;
  withInfo: boolean;
  /** The last reply this call got from a deposed primary (the cause when its deadline passes). */
  stale: StaleEpochError | undefined;
  /** A quick re-send to a backup that may be about to take over (see #onNotPrimary). */
  quickRetry: TimerHandle | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (b + 0x100).toString(16).slice(1);
  return s;
}

/** A client of the replicated service at `options.servers`. */
export function createClient<Req, Rep>(options: ClientOptions<Req, Rep>): Client<Req, Rep> & ClientDiagnostics {
  return new ReplicatedClient(options);
}

/** Extra read-only counters a client exposes (tests, benchmarks). */
export interface ClientDiagnostics {
  /** Highest epoch seen in any reply. */
  readonly epoch: number;
  /** Replies ignored because their epoch was older than one already seen. */
  readonly staleReplies: number;
  /** Forwarded entries not yet acknowledged by the backup. */
  readonly pendingForwards: number;
  /** Index (0/1) of the server currently believed to be primary. */
  readonly primaryIndex: 0 | 1;
  /** The metrics sink (ClientOptions.metrics); assign one to start reporting (undefined: none). */
  metrics: ClientMetricsSink | undefined;
}

class ReplicatedClient<Req, Rep> implements Client<Req, Rep>, ClientDiagnostics {
  readonly clientId: string;
  metrics: ClientMetricsSink | undefined;
  readonly #opts: ClientOptions<Req, Rep>;
  readonly #cfg: ReplicationConfig;
  readonly #env: Env;
  readonly #servers: [ServerConnection, ServerConnection];
  readonly #forwards: ForwardQueue;
  readonly #calls = new Map<number, PendingCall>();
  #nextRequestId = 1;
  #primary: 0 | 1 = 0;
  #epoch = 0;
  #staleReplies = 0;
  #closed = false;
  #resync = false;
  /** The server's connection was reset or closed by it (or the network) and nothing has come from it
   * since: its process may be dead (docs/PROTOCOL.md, "Fast path for a dead process"). */
  readonly #lostAt: [number, number] = [Number.NaN, Number.NaN];
  /** How long after such a loss a backup that says notPrimary is asked again quickly. */
  readonly #quickRetryForMs: number;
  /** Each server's last dial failure (no transport for the scheme, refused, …); cleared by a dial that
   * connects. A call that times out without any reply carries it as its ServiceUnavailableError's cause. */
  readonly #dialErrors: [Error | undefined, Error | undefined] = [undefined, undefined];

  constructor(options: ClientOptions<Req, Rep>) {
    this.#opts = options;
    this.metrics = options.metrics;
    this.#cfg = resolveConfig(options.config);
    this.#env = options.env;
    this.#quickRetryForMs = computeTimingBounds(this.#cfg).processCrashFailoverMs;
    this.clientId = options.clientId ?? toHex(options.env.randomBytes(16));
    const handlers = {
      onMessage: (link: Link, m: Message) => this.#onMessage(link, m),
      onClose: (link: Link, info: CloseInfo) => {
        const from = this.#indexOf(link);
        this.#servers[0].linkClosed(link);
        this.#servers[1].linkClosed(link);
        if (from !== undefined && info.by === 'remote') this.#onServerLost(from);
      },
      onViolation: (link: Link, error: ProtocolViolationError) =>
        this.#env.logger.log('warn', 'protocol-error', { remote: link.conn.remoteAddress, error: error.message }),
    };
    const hello = (): Hello => ({ t: 'hello', kind: 'client', service: options.service.name, nodeId: this.clientId, epoch: this.#epoch });
    const backoff = Math.max(1, this.#cfg.requestTimeoutMs / 4);
    this.#servers = [
      new ServerConnection(
        0,
        options.servers[0],
        this.#recordingDials(0),
        handlers,
        hello,
        this.#cfg.maxMessageSize,
        backoff,
        this.#cfg.requestTimeoutMs,
      ),
      new ServerConnection(
        1,
        options.servers[1],
        this.#recordingDials(1),
        handlers,
        hello,
        this.#cfg.maxMessageSize,
        backoff,
        this.#cfg.requestTimeoutMs,
      ),
    ];
    const creds = options.credentials;
    const auth = creds === undefined ? undefined : { ring: KeyRing.derive([creds.key], 'peer-auth'), keyId: creds.keyId };
    for (const s of this.#servers) {
      s.auth = auth;
      s.onAuthFailure = (err) => this.#failAll(err);
    }
    this.#forwards = new ForwardQueue(this.#env, this.#cfg, {
      send: (i, bytes) => this.#servers[i].send(bytes),
      // Entries ride each reply only once per connection: after giving up a forward, ask the primary to
      // send every unacknowledged entry again with the next reply, so this client still carries them all.
      dropped: () => {
        this.#resync = true;
      },
    });
  }

  get epoch(): number {
    return this.#epoch;
  }
  get staleReplies(): number {
    return this.#staleReplies;
  }
  get pendingForwards(): number {
    return this.#forwards.pending;
  }
  get primaryIndex(): 0 | 1 {
    return this.#primary;
  }

  call(request: Req): Promise<Rep> {
    return this.#call(request, false) as Promise<Rep>;
  }

  callWithInfo(request: Req): Promise<CallResult<Rep>> {
    return this.#call(request, true) as Promise<CallResult<Rep>>;
  }

  drain(): Promise<void> {
    return this.#forwards.whenDrained();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#calls.values()) {
      c.timer?.cancel();
      c.quickRetry?.cancel();
      c.reject(new StoppedError('client closed'));
      this.#ended(c, 'stopped');
    }
    this.#calls.clear();
    this.#forwards.close();
    await Promise.all([this.#servers[0].close(), this.#servers[1].close()]);
  }

  #call(request: Req, withInfo: boolean): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StoppedError('client closed'));
    const check = this.#opts.service.request.safeParse(request);
    if (!check.success) {
      this.metrics?.call?.('invalid', 0);
      return Promise.reject(new InvalidRequestError(check.error.message));
    }
    if (this.#forwards.isFull) return this.#callWhenSpace(request, withInfo);
    return new Promise((resolve, reject) => this.#start(request, withInfo, resolve, reject));
  }

  async #callWhenSpace(request: Req, withInfo: boolean): Promise<unknown> {
    while (this.#forwards.isFull) {
      await this.#forwards.whenSpace();
      if (this.#closed) throw new StoppedError('client closed');
    }
    return new Promise((resolve, reject) => this.#start(request, withInfo, resolve, reject));
  }

  #start(body: unknown, withInfo: boolean, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
    const requestId = this.#nextRequestId++;
    const resync = this.#resync;
    this.#resync = false;
    const bytes = codec.encode(
      resync ? { t: 'req', clientId: this.clientId, requestId, body, resync } : { t: 'req', clientId: this.clientId, requestId, body },
    );
    const call: PendingCall = {
      requestId,
      body,
      bytes,
      startedAt: this.#env.now(),
      timer: undefined,
      redirected: false,
      withInfo,
      stale: undefined,
      quickRetry: undefined,
      resolve,
      reject,
    };
    this.#calls.set(requestId, call);
    this.#servers[this.#primary].send(bytes);
    call.timer = this.#env.setTimer(this.#cfg.requestTimeoutMs, () => this.#onTimeout(call));
  }

  #onTimeout(call: PendingCall): void {
    call.timer = undefined;
    if (!this.#calls.has(call.requestId)) return;
    const elapsed = this.#env.now() - call.startedAt;
    if (elapsed >= this.#cfg.callDeadlineMs) {
      this.#calls.delete(call.requestId);
      call.quickRetry?.cancel();
      const dialError = this.#dialErrors[this.#primary] ?? this.#dialErrors[this.#primary === 0 ? 1 : 0];
      const cause: Error | undefined = call.stale ?? dialError;
      const why =
        call.stale !== undefined
          ? ` (only a deposed primary answered: epoch ${call.stale.epoch} < ${call.stale.knownEpoch})`
          : dialError !== undefined
            ? ` (dial failed: ${dialError.message})`
            : '';
      call.reject(
        new ServiceUnavailableError(
          `no reply from ${this.#opts.servers.join(' or ')} within ${this.#cfg.callDeadlineMs} ms${why}`,
          cause === undefined ? undefined : { cause },
        ),
      );
      this.#ended(call, 'unavailable');
      return;
    }
    // Patent: a request without a reply is re-sent to both the primary and the backup.
    this.metrics?.retry?.();
    this.#servers[0].send(call.bytes);
    this.#servers[1].send(call.bytes);
    call.timer = this.#env.setTimer(Math.min(this.#cfg.requestTimeoutMs, this.#cfg.callDeadlineMs - elapsed), () => this.#onTimeout(call));
  }

  /** The env for server `i`'s connection: the same, with a network that records how its dials end. */
  #recordingDials(i: 0 | 1): Env {
    const network = this.#env.network;
    const dial: Env['network']['dial'] = (address, options) => {
      const dialling = network.dial(address, options);
      dialling.then(
        () => {
          this.#dialErrors[i] = undefined;
        },
        (err: unknown) => {
          this.#dialErrors[i] = err instanceof Error ? err : new Error(String(err));
        },
      );
      return dialling;
    };
    return { ...this.#env, network: { name: network.name, schemes: network.schemes, listen: (a, o) => network.listen(a, o), dial } };
  }

  #indexOf(link: Link): 0 | 1 | undefined {
    if (this.#servers[0].link === link) return 0;
    if (this.#servers[1].link === link) return 1;
    return undefined;
  }

  #onMessage(link: Link, m: Message): void {
    if (m.t === 'authRefused') {
      // Refused before any request was read (client authentication required, or a bad key). The
      // connection may already count as closed here: do not require it to be a current one.
      return this.#failAll(new AuthenticationError(m.code, `${link.conn.remoteAddress} refused this client: ${m.reason}`));
    }
    const from = this.#indexOf(link);
    if (from === undefined) return;
    this.#lostAt[from] = Number.NaN;
    switch (m.t) {
      case 'rep':
        return this.#onRep(from, m);
      case 'notPrimary':
        return this.#onNotPrimary(from, m);
      case 'fwdAck':
        if (m.epoch > this.#epoch) this.#epoch = m.epoch;
        return this.#forwards.onAck(m.fwdId);
      case 'statusReply':
        return;
      default:
        throw new ProtocolViolationError(`unexpected ${m.t} at a client`);
    }
  }

  #onRep(from: 0 | 1, rep: RepMessage): void {
    const call = this.#calls.get(rep.requestId);
    if (call === undefined) return; // a late duplicate (retry answered twice)
    if (rep.epoch < this.#epoch) {
      // A deposed primary: never accept its answer once a newer epoch is known (StaleEpochError: the
      // cause, should the call's deadline pass before the current primary answers).
      this.#staleReplies++;
      call.stale = new StaleEpochError(rep.epoch, this.#epoch);
      this.#env.logger.log('warn', 'stale-reply', { requestId: rep.requestId, epoch: rep.epoch, knownEpoch: this.#epoch });
      return;
    }
    if (rep.epoch > this.#epoch && this.#epoch > 0) this.metrics?.failover?.(rep.epoch);
    this.#epoch = rep.epoch;
    this.#primary = from;
    this.#calls.delete(rep.requestId);
    call.timer?.cancel();
    call.quickRetry?.cancel();
    if (rep.error !== undefined) {
      const invalid = rep.seq === 0 && rep.error.name === 'InvalidRequestError';
      call.reject(invalid ? new InvalidRequestError(rep.error.message) : new ApplicationError(rep.error.name, rep.error.message));
      this.#ended(call, invalid ? 'invalid' : 'app-error');
    } else {
      const parsed = this.#opts.service.reply.safeParse(rep.body);
      if (!parsed.success) {
        call.reject(new ProtocolViolationError(`reply does not match the service's reply schema: ${parsed.error.message}`));
        this.#ended(call, 'protocol-error');
      } else {
        call.resolve(call.withInfo ? { reply: parsed.data, seq: rep.seq, epoch: rep.epoch } : parsed.data);
        this.#ended(call, 'ok');
      }
    }
    // The application has its answer (its continuation runs before any timer); now the state information.
    if (rep.seq === 0 || rep.replicated === true) return;
    const target: 0 | 1 = from === 0 ? 1 : 0;
    if (rep.entries !== undefined) {
      this.#forwards.enqueuePacked(target, rep.seq, rep.entries, rep.entriesMac);
      return;
    }
    const entry: Entry = {
      seq: rep.seq,
      epoch: rep.entryEpoch ?? rep.epoch,
      clientId: this.clientId,
      requestId: rep.requestId,
      body: call.body,
      time: rep.time,
      seed: rep.seed,
      digest: rep.digest,
    };
    if (rep.mac !== undefined) entry.mac = rep.mac;
    this.#forwards.enqueue(target, [entry]);
  }

  /** The replicas refused this client: no call can succeed, fail them now with the reason. */
  #failAll(err: AuthenticationError): void {
    this.#env.logger.log('warn', 'client-refused', { code: err.code, error: err.message });
    for (const c of this.#calls.values()) {
      c.timer?.cancel();
      c.quickRetry?.cancel();
      c.reject(err);
      this.#ended(c, 'refused');
    }
    this.#calls.clear();
  }

  /** Report a call's end to the metrics sink, if any. */
  #ended(call: PendingCall, outcome: ClientCallOutcome): void {
    this.metrics?.call?.(outcome, this.#env.now() - call.startedAt);
  }

  /**
   * Server `i` reset or closed our connection. When it is the one we believe primary, its process may
   * be dead and the backup may take over within processCrashGraceMs: push the pending forwards to the
   * backup at once (so it holds every entry we were answered with before it decides), and send the calls
   * waiting for a reply to the backup now — it holds them while it checks, and answers them once it
   * serves (or tells us notPrimary when the primary turns out alive: then they go back to it).
   */
  #onServerLost(i: 0 | 1): void {
    if (this.#closed || !this.#cfg.fastFailover) return;
    this.#lostAt[i] = this.#env.now();
    if (i !== this.#primary) return;
    const other: 0 | 1 = i === 0 ? 1 : 0;
    this.#servers[other].retryNow();
    this.#forwards.pushNow();
    this.#primary = other;
    for (const call of this.#calls.values()) this.#servers[other].send(call.bytes);
  }

  #onNotPrimary(from: 0 | 1, m: NotPrimary): void {
    if (m.epoch > this.#epoch) this.#epoch = m.epoch;
    const other: 0 | 1 = from === 0 ? 1 : 0;
    const call = this.#calls.get(m.requestId);
    if (m.role === 'backup' && this.#env.now() - this.#lostAt[other] <= this.#quickRetryForMs) {
      // The other one reset our connection: it may be dead, and this backup about to take over (it may
      // have answered before it saw the reset itself). Stay with it, ask it again shortly — and the
      // other one too, once, in case it lives.
      this.#primary = from;
      if (call === undefined) return;
      if (!call.redirected) {
        call.redirected = true;
        this.#servers[other].send(call.bytes);
      }
      if (call.quickRetry === undefined) {
        const ms = Math.max(1, Math.min(this.#cfg.forwardDelayMs, this.#cfg.requestTimeoutMs / 10));
        call.quickRetry = this.#env.setTimer(ms, () => {
          call.quickRetry = undefined;
          if (this.#calls.get(call.requestId) === call) this.#servers[this.#primary].send(call.bytes);
        });
      }
      return;
    }
    this.#primary = other;
    if (call !== undefined && !call.redirected) {
      call.redirected = true;
      this.#servers[other].send(call.bytes);
    }
  }
}
