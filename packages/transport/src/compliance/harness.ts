/**
 * What a transport hands the compliance suite. Every hook has an equivalent for transports without the
 * underlying capability (e.g. the memory transport has no sockets or processes), so that every transport
 * runs the same tests.
 */
import type { Transport } from '../types.js';

/** A raw, unframed byte stream to a listener — what a port scanner or a confused HTTP client would open. */
export interface RawPeer {
  /** Write bytes as they are. */
  write(bytes: Uint8Array): void;
  /** Settles once the listener side has closed the stream (the suite waits for it). */
  readonly closed: Promise<unknown>;
  /** Drop the stream from this side (cleanup). */
  destroy(): void;
}

/** A peer that can be killed without a goodbye: a child process (SIGKILL) or the transport's equivalent. */
export interface KillablePeer {
  /** Kill it abruptly (SIGKILL for a process). */
  kill(): void | Promise<void>;
  /** Cleanup after the test; must be harmless after kill. */
  dispose(): void | Promise<void>;
}

/** A listening endpoint that accepts at the network level but never completes the transport's handshake. */
export interface SilentPeer {
  /** Where it listens. */
  readonly address: string;
  /** Stop listening and drop the sockets it holds. */
  close(): Promise<void>;
}

/** How the compliance suite drives one adapter: its transport, addresses to listen on, and optional capabilities. */
export interface ComplianceHarness {
  /** Shown in the test names, e.g. "tcp" or "tls". */
  readonly name: string;
  /**
   * A transport instance. The suite calls it twice per test (listening side, dialling side); both must
   * reach each other (return the same instance where the transport is a shared namespace, e.g. memory).
   */
  createTransport(): Transport | Promise<Transport>;
  /** An address to listen on with a system-chosen port (e.g. `tcp://127.0.0.1:0`); unique per call otherwise. */
  listenAddress(): string;
  /** An address where nothing listens (e.g. a port that was just bound and released). */
  refusedAddress(): string | Promise<string>;
  /** An endpoint where a dial hangs (so dial timeout and abort can be tested). */
  silentPeer(): Promise<SilentPeer>;
  /** Open a raw byte stream to the listener at `address` (the garbage test). */
  openRaw(address: string): Promise<RawPeer>;
  /**
   * A raw byte stream inside the transport's security layer, where it has one (tls: a TLS socket with a
   * client certificate), for the tests that write framed bytes by hand (partial and oversized frames).
   * Default `openRaw`.
   */
  openSession?(address: string): Promise<RawPeer>;
  /**
   * Bytes after which the stream stops inside the transport's handshake or first frame (the slow-loris
   * test writes them, then nothing). Default: the stream preamble and half of a frame (tcp, memory).
   */
  readonly partialFrame?: Uint8Array;
  /**
   * Bytes that (after any handshake) announce one message of more than `limit` bytes and stop before its
   * payload. Default: the stream preamble and a 4-byte header announcing `limit + 1` (tcp, memory).
   */
  oversizedFrame?(limit: number): Uint8Array;
  /**
   * Start a peer that dials `address`, sends one message (any content), then stays connected until killed.
   * Give either `startPeer` or `peerModule` (the suite then spawns a real child process, see
   * `spawnPeerProcess`, and kills it with SIGKILL).
   */
  startPeer?(address: string): Promise<KillablePeer>;
  /**
   * Absolute path (or file: URL) of a module exporting `createTransport()` (named or default export) that
   * returns the transport to use in the child process. TypeScript modules run through tsx.
   */
  peerModule?: string;
}
