/**
 * The first messages of a connection (docs/SECURITY.md, "Handshake"): a dialler's `hello` makes it a
 * client, a peer or a state-transfer connection. With keys, a peer (and an authenticating client) must
 * complete a mutual HMAC challenge–response before anything else it sends is read:
 *
 *   dialler → acceptor   hello {kind, service, nodeId, epoch, nonce_d [, keyId]}
 *   acceptor → dialler   authChallenge {nodeId, nonce_a, proof_a = MAC(k, "accept", transcript)}
 *   dialler → acceptor   authProof {proof_d = MAC(k, "dial", transcript)}
 *
 * transcript = (service, kind, both node ids, both nonces, the dialler's epoch). Fresh nonces on both
 * sides make a recorded handshake useless; the side label keeps a proof from being reflected. Until
 * its proof verifies, a connection changes nothing; a failed one gets a typed `authRefused` and is
 * closed.
 */
import type { Connection } from '@tandem/transport';
import { handshakeProof, NONCE_BYTES, verifyHandshakeProof, type HandshakeTranscript, type KeyRing } from './auth.js';
import { codec } from './codec.js';
import type { Env, TimerHandle } from './env.js';
import { ProtocolViolationError } from './errors.js';
import type { Link } from './link.js';
import type { AuthRefusalCode, Hello, Message } from './messages.js';
import type { ResolvedSecurity } from './security.js';

/** A connection's handshake failed (refused by the other side, a bad proof, or no answer in time). */
export class AuthenticationError extends Error {
  static override readonly name = 'AuthenticationError';
  override readonly name = 'AuthenticationError';
  readonly code: AuthRefusalCode;
  constructor(code: AuthRefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Who an admitted connection speaks for. */
export type Principal = 'peer' | 'transfer' | 'client' | 'admin';

interface Pending {
  hello: Hello;
  ring: KeyRing;
  transcript: HandshakeTranscript;
  timer: TimerHandle | undefined;
}

export interface RefusalReport {
  link: Link;
  code: AuthRefusalCode;
  reason: string;
  kind: string | undefined;
  nodeId: string | undefined;
}

/**
 * The acceptor's side: every accepted link passes through `onMessage` until it is admitted (`admitted`
 * returns its hello). Messages before that are handled here and never reach the protocol.
 */
export class AcceptGate {
  readonly #sec: ResolvedSecurity;
  readonly #service: string;
  readonly #nodeId: string;
  readonly #env: Env;
  readonly #onRefused: (r: RefusalReport) => void;
  readonly #pending = new WeakMap<Link, Pending>();
  readonly #deadlines = new WeakMap<Link, TimerHandle>();
  readonly #refused = new WeakSet<Link>();

  constructor(sec: ResolvedSecurity, service: string, nodeId: string, env: Env, onRefused: (r: RefusalReport) => void) {
    this.#sec = sec;
    this.#service = service;
    this.#nodeId = nodeId;
    this.#env = env;
    this.#onRefused = onRefused;
  }

  /** A new accepted link: it must be admitted within handshakeTimeoutMs. */
  watch(link: Link): void {
    const timer = this.#env.setTimer(this.#sec.handshakeTimeoutMs, () => {
      this.#deadlines.delete(link);
      if (link.hello === undefined && !link.isClosed)
        this.#refuse(link, 'handshake-timeout', `no complete hello within ${this.#sec.handshakeTimeoutMs} ms`, undefined);
    });
    this.#deadlines.set(link, timer);
    void link.conn.closed.then(() => {
      timer.cancel();
      this.#pending.get(link)?.timer?.cancel();
    });
  }

  /**
   * Handle `m` on a link not admitted yet. Returns the principal and hello once admitted (the caller
   * sets link.hello and acts on it), undefined while the handshake goes on or after a refusal.
   */
  onMessage(link: Link, m: Message): { principal: Principal; hello: Hello } | undefined {
    if (this.#refused.has(link)) return undefined;
    const pending = this.#pending.get(link);
    if (pending !== undefined) {
      if (m.t !== 'authProof') return this.#refuse(link, 'bad-proof', `expected authProof, got ${m.t}`, pending.hello);
      if (!verifyHandshakeProof(pending.ring, 'dial', pending.transcript, m.proof)) {
        return this.#refuse(link, 'bad-proof', 'the handshake proof does not verify (wrong key?)', pending.hello);
      }
      this.#pending.delete(link);
      return this.#admit(link, pending.hello);
    }
    if (m.t !== 'hello') throw new ProtocolViolationError(`expected hello, got ${m.t}`);
    if (m.service !== this.#service) throw new ProtocolViolationError(`wrong service "${m.service}" (this is "${this.#service}")`);
    if (m.kind === 'client') return this.#clientHello(link, m);
    const ring = this.#sec.peerRing;
    if (ring === undefined) {
      if (m.nonce !== undefined)
        return this.#refuse(link, 'no-key-here', 'this replica has no cluster key: give both replicas the same key', m);
      return this.#admit(link, m); // keyless: peers are trusted (loopback only, docs/SECURITY.md)
    }
    if (m.nonce === undefined) return this.#refuse(link, 'key-required', 'peer connections must authenticate with the cluster key', m);
    return this.#challenge(link, m, ring);
  }

  #clientHello(link: Link, m: Hello): { principal: Principal; hello: Hello } | undefined {
    if (m.keyId === undefined && m.nonce === undefined) {
      if (this.#sec.requireClientAuth)
        return this.#refuse(link, 'client-auth-required', 'this service requires client authentication (a client key)', m);
      return this.#admit(link, m);
    }
    const ring = m.keyId === undefined ? undefined : this.#sec.clientRings.get(m.keyId);
    if (ring === undefined || m.nonce === undefined)
      return this.#refuse(link, 'unknown-client', `unknown client key id ${JSON.stringify(m.keyId ?? null)}`, m);
    return this.#challenge(link, m, ring);
  }

  #challenge(link: Link, hello: Hello, ring: KeyRing): undefined {
    const acceptorNonce = this.#env.randomBytes(NONCE_BYTES);
    const transcript: HandshakeTranscript = {
      service: this.#service,
      kind: hello.kind,
      dialerId: hello.nodeId,
      acceptorId: this.#nodeId,
      dialerNonce: hello.nonce!,
      acceptorNonce,
      dialerEpoch: hello.epoch,
    };
    this.#pending.set(link, { hello, ring, transcript, timer: undefined });
    link.send({ t: 'authChallenge', nodeId: this.#nodeId, nonce: acceptorNonce, proof: handshakeProof(ring, 'accept', transcript) });
    return undefined;
  }

  #admit(link: Link, hello: Hello): { principal: Principal; hello: Hello } {
    this.#deadlines.get(link)?.cancel();
    this.#deadlines.delete(link);
    return { principal: hello.kind, hello };
  }

  #refuse(link: Link, code: AuthRefusalCode, reason: string, hello: Hello | undefined): undefined {
    this.#refused.add(link);
    this.#pending.delete(link);
    this.#deadlines.get(link)?.cancel();
    link.send({ t: 'authRefused', code, reason });
    void link.conn.close(`refused: ${code}`).catch(() => undefined);
    this.#onRefused({ link, code, reason, kind: hello?.kind, nodeId: hello?.nodeId });
    return undefined;
  }
}

/** What a dialler authenticates with. */
export interface DialAuth {
  ring: KeyRing;
  /** A client key's id (clients only). */
  keyId?: string;
}

/**
 * Send `hello` on a freshly dialled connection and, with `auth`, complete the handshake. Resolves with
 * the iterator to read the rest of the connection from; rejects with AuthenticationError (the connection
 * is aborted) when the acceptor refuses, proves nothing, or does not answer within `timeoutMs`.
 */
export async function dialHandshake(
  conn: Connection,
  hello: Hello,
  auth: DialAuth | undefined,
  env: Env,
  timeoutMs: number,
): Promise<AsyncIterator<Uint8Array>> {
  const it = conn[Symbol.asyncIterator]();
  if (auth === undefined) {
    void conn.send(codec.encode(hello)).catch(() => undefined);
    return it;
  }
  const dialerNonce = env.randomBytes(NONCE_BYTES);
  const sent: Hello = { ...hello, nonce: dialerNonce };
  if (auth.keyId !== undefined) sent.keyId = auth.keyId;
  void conn.send(codec.encode(sent)).catch(() => undefined);
  let timer: TimerHandle | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = env.setTimer(timeoutMs, () => resolve('timeout'));
  });
  try {
    const first = await Promise.race([it.next(), timeout]);
    if (first === 'timeout')
      throw new AuthenticationError('handshake-timeout', `no handshake answer from ${conn.remoteAddress} within ${timeoutMs} ms`);
    if (first.done) throw new AuthenticationError('bad-proof', `${conn.remoteAddress} closed the connection during the handshake`);
    const m = codec.decode(first.value);
    if (m.t === 'authRefused') throw new AuthenticationError(m.code, `${conn.remoteAddress} refused the connection: ${m.reason}`);
    if (m.t !== 'authChallenge') throw new AuthenticationError('bad-proof', `${conn.remoteAddress} answered the handshake with ${m.t}`);
    const transcript: HandshakeTranscript = {
      service: hello.service,
      kind: hello.kind,
      dialerId: hello.nodeId,
      acceptorId: m.nodeId,
      dialerNonce,
      acceptorNonce: m.nonce,
      dialerEpoch: hello.epoch,
    };
    if (!verifyHandshakeProof(auth.ring, 'accept', transcript, m.proof)) {
      throw new AuthenticationError('bad-proof', `${conn.remoteAddress} does not hold the key (its handshake proof does not verify)`);
    }
    void conn.send(codec.encode({ t: 'authProof', proof: handshakeProof(auth.ring, 'dial', transcript) })).catch(() => undefined);
    return it;
  } catch (err) {
    conn.abort();
    if (err instanceof AuthenticationError) throw err;
    throw new AuthenticationError('bad-proof', `handshake with ${conn.remoteAddress} failed: ${(err as Error).message}`);
  } finally {
    timer?.cancel();
  }
}

/** At most `perWindow` lines per `windowMs` per key; the rest are counted and reported with the next line. */
export class RateLimitedLog {
  readonly #env: Env;
  readonly #windowMs: number;
  readonly #perWindow: number;
  readonly #windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(env: Env, perWindow = 5, windowMs = 10_000) {
    this.#env = env;
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  /** Calls `write(suppressed)` unless over the limit for `key`; `suppressed` = lines dropped since the last one written. */
  log(key: string, write: (suppressed: number) => void): void {
    const now = this.#env.now();
    let w = this.#windows.get(key);
    if (w === undefined || now - w.start >= this.#windowMs) {
      const suppressed = w?.suppressed ?? 0;
      if (this.#windows.size > 1024) this.#windows.clear();
      w = { start: now, count: 0, suppressed: 0 };
      this.#windows.set(key, w);
      w.count++;
      write(suppressed);
      return;
    }
    if (w.count >= this.#perWindow) {
      w.suppressed++;
      return;
    }
    w.count++;
    const s = w.suppressed;
    w.suppressed = 0;
    write(s);
  }
}
