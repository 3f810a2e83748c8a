/**
 * The client's connection to one of the two replicas: dialled lazily, re-dialled with backoff after a
 * failure, with a small bounded queue for messages sent while the dial is in progress.
 */
import type { Env } from './env.js';
import { AuthenticationError, dialHandshake, type DialAuth } from './handshake.js';
import { Link, type LinkHandlers } from './link.js';
import type { Hello } from './messages.js';

const MAX_QUEUED = 4096;

export class ServerConnection {
  readonly address: string;
  readonly index: 0 | 1;
  #link: Link | undefined;
  #dialing = false;
  #dialStartedAt = 0;
  /** Bumped per dial: an abandoned dial's failure must not touch the state of the one beside it. */
  #dialGen = 0;
  #queue: Uint8Array[] = [];
  #failures = 0;
  #retryAt = 0;
  #closed = false;
  readonly #env: Env;
  readonly #handlers: LinkHandlers;
  readonly #hello: () => Hello;
  readonly #maxMessageSize: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  /** A client key to authenticate with (replicas that require client authentication). */
  auth: DialAuth | undefined;
  /** The replica refused our handshake (AuthenticationError). */
  onAuthFailure: ((error: AuthenticationError) => void) | undefined;

  /**
   * `maxBackoffMs` caps the re-dial backoff. The client passes requestTimeoutMs: a refused dial (nothing
   * listens yet) is cheap, and a longer backoff would let a long-lived client miss the new primary for
   * longer than worstCaseFailoverMs after a takeover (its re-sends every requestTimeoutMs would be dropped).
   */
  constructor(
    index: 0 | 1,
    address: string,
    env: Env,
    handlers: LinkHandlers,
    hello: () => Hello,
    maxMessageSize: number,
    baseBackoffMs: number,
    maxBackoffMs = baseBackoffMs * 4,
  ) {
    this.index = index;
    this.address = address;
    this.#env = env;
    this.#handlers = handlers;
    this.#hello = hello;
    this.#maxMessageSize = maxMessageSize;
    this.#baseBackoffMs = baseBackoffMs;
    this.#maxBackoffMs = Math.max(baseBackoffMs, maxBackoffMs);
  }

  /** When the next dial may be attempted after a failure (env clock); 0 when not backing off. */
  get retryAt(): number {
    return this.#retryAt;
  }

  get link(): Link | undefined {
    return this.#link;
  }

  /** Send now when connected; otherwise queue and dial (unless backing off: then the bytes are dropped,
   * the caller's retransmission covers them). Returns false when dropped. */
  send(bytes: Uint8Array): boolean {
    const link = this.#link;
    if (link !== undefined && !link.isClosed) return link.sendBytes(bytes);
    if (this.#closed) return false;
    if (!this.#dialing && this.#env.now() < this.#retryAt) return false;
    if (this.#queue.length >= MAX_QUEUED) return false;
    this.#queue.push(bytes);
    // A dial pending longer than maxBackoffMs (requestTimeoutMs) may hang on a host that is down (its SYN
    // unanswered): dial again beside it rather than let every re-send wait behind it — the client's
    // worst-case failover bound assumes its next attempt reaches the new primary within requestTimeoutMs.
    if (this.#dialing && this.#env.now() - this.#dialStartedAt >= this.#maxBackoffMs) this.#dialing = false;
    this.#dial();
    return true;
  }

  /** Forget the re-dial backoff: the next send dials at once (the other replica's connection was just
   * reset — this one may be about to take over, and the forwards must reach it within the grace). */
  retryNow(): void {
    this.#retryAt = 0;
  }

  /** Called by the owner when a link closes. */
  linkClosed(link: Link): void {
    if (this.#link === link) this.#link = undefined;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#queue = [];
    const link = this.#link;
    this.#link = undefined;
    return link ? link.conn.close('client closed').catch(() => undefined) : Promise.resolve();
  }

  #dial(): void {
    if (this.#dialing || this.#closed) return;
    this.#dialing = true;
    this.#dialStartedAt = this.#env.now();
    const gen = ++this.#dialGen;
    const timeoutMs = Math.max(1000, this.#baseBackoffMs * 10);
    this.#env.network
      .dial(this.address, { maxMessageSize: this.#maxMessageSize, timeoutMs })
      .then(async (conn) => {
        try {
          return { conn, it: await dialHandshake(conn, this.#hello(), this.auth, this.#env, timeoutMs) };
        } catch (err) {
          if (err instanceof AuthenticationError) this.onAuthFailure?.(err);
          throw err;
        }
      })
      .then(
        ({ conn, it }) => {
          if (gen === this.#dialGen) this.#dialing = false;
          if (this.#closed || (this.#link !== undefined && !this.#link.isClosed)) {
            conn.abort(); // closed, or a later dial beside this one connected first
            return;
          }
          this.#failures = 0;
          const link = new Link(conn, 'out', this.#handlers, this.#env.logger);
          this.#link = link;
          link.start(it);
          const queued = this.#queue;
          this.#queue = [];
          for (const b of queued) link.sendBytes(b);
        },
        (err: unknown) => {
          if (gen !== this.#dialGen) return; // abandoned: a later dial is under way
          this.#dialing = false;
          this.#queue = [];
          this.#failures++;
          const backoff = Math.min(this.#maxBackoffMs, this.#baseBackoffMs * 2 ** Math.min(this.#failures - 1, 10));
          this.#retryAt = this.#env.now() + backoff;
          this.#env.logger.log('debug', 'client-dial-failed', { address: this.address, error: (err as Error).message, backoffMs: backoff });
        },
      );
  }
}
