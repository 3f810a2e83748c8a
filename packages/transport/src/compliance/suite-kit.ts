/**
 * The compliance suite's toolkit (index.ts and the case files): bounded waits, readers and acceptors
 * with one long-lived iterator each, the per-test scope that closes everything, byte patterns, and the
 * context every case file gets.
 */
import { expect } from 'vitest';
import { isTransportError, type TransportErrorName } from '../errors.js';
import { encodeFrameHeader, STREAM_PREAMBLE } from '../framing.js';
import type { Connection, Listener, Transport } from '../types.js';
import type { ComplianceHarness } from './harness.js';

/** Bound on the heavy tests (1,000 connections, 200 MB, 10,000 messages) on a busy machine. */
export const HEAVY_TEST_TIMEOUT_MS = 90_000;

/** The number of tests `describeTransportCompliance` registers (the same for every transport). */
export const COMPLIANCE_TEST_COUNT = 25;

const enc = new TextEncoder();
const dec = new TextDecoder();
export const text = (s: string): Uint8Array => enc.encode(s);
export const str = (b: Uint8Array): string => dec.decode(b);

/** Rejects with a clear message when `p` has not settled after `ms` (a bound on waiting, not a timing assertion). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The error `p` rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error(`${what} should have failed but succeeded`);
}

export function expectTransportError(err: unknown, name: TransportErrorName): void {
  expect(isTransportError(err), `expected a transport error ${name}, got ${String(err)}`).toBe(true);
  expect((err as Error).name).toBe(name);
}

/** Reads from one connection with a single long-lived iterator. */
export class Reader {
  readonly #it: AsyncIterator<Uint8Array>;
  constructor(readonly conn: Connection) {
    this.#it = conn[Symbol.asyncIterator]();
  }
  /** The next message; fails if the connection ends first. */
  async next(what = 'a message', ms = 10_000): Promise<Uint8Array> {
    const r = await within(this.#it.next(), ms, `${what} on ${this.conn.id}`);
    if (r.done) throw new Error(`connection ${this.conn.id} ended while waiting for ${what}`);
    return r.value;
  }
  /** Resolves true when iteration ends (the connection closed and its queue is drained). */
  async end(ms = 10_000): Promise<true> {
    const r = await within(this.#it.next(), ms, `end of ${this.conn.id}`);
    if (!r.done) throw new Error(`expected the end of ${this.conn.id}, got a ${r.value.byteLength}-byte message`);
    return true;
  }
  release(): void {
    void this.#it.return?.();
  }
}

/** Takes connections from one listener with a single long-lived iterator. */
export class Acceptor {
  readonly #it: AsyncIterator<Connection>;
  constructor(
    listener: Listener,
    private readonly scope: Scope,
  ) {
    this.#it = listener[Symbol.asyncIterator]();
  }
  async next(ms = 10_000): Promise<Connection> {
    const r = await within(this.#it.next(), ms, 'an accepted connection');
    if (r.done) throw new Error('listener ended while waiting for a connection');
    return this.scope.conn(r.value);
  }
  /** Resolves with `done` of the next iteration step. */
  async step(ms = 10_000): Promise<IteratorResult<Connection>> {
    const r = await within(this.#it.next(), ms, 'the listener');
    if (!r.done) this.scope.conn(r.value);
    return r;
  }
}

/** Everything a test opened, closed afterwards whatever happened. */
export class Scope {
  readonly listeners: Listener[] = [];
  readonly conns: Connection[] = [];
  readonly cleanups: (() => unknown)[] = [];
  listener(l: Listener): Listener {
    this.listeners.push(l);
    return l;
  }
  conn(c: Connection): Connection {
    this.conns.push(c);
    return c;
  }
  async dispose(): Promise<void> {
    for (const c of this.conns) c.abort();
    await Promise.allSettled(this.listeners.map((l) => l.close()));
    await Promise.allSettled(this.cleanups.map((f) => f()));
  }
}

/** Echo every message back on every accepted connection (runs until the listener closes). */
export function serveEcho(listener: Listener, scope: Scope): void {
  void (async () => {
    for await (const conn of listener) {
      scope.conn(conn);
      void (async () => {
        try {
          for await (const m of conn) await conn.send(m);
        } catch {
          // the connection closed under us: fine for an echo server
        }
      })();
    }
  })();
}

export function pattern(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function seq(n: number, extra = 0): Uint8Array {
  const b = new Uint8Array(4 + extra);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
export const seqOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);

export const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** The stream framing's preamble, then the header of a 10-byte message and 3 of its bytes. */
export const DEFAULT_PARTIAL_FRAME = concat(STREAM_PREAMBLE, encodeFrameHeader(10), Uint8Array.of(1, 2, 3));

/** Takes every further connection of `listener` (through its `acceptor`) into `accepted` until `stop()`. */
export function collect(listener: Listener, acceptor: Acceptor): { accepted: Connection[]; stop: () => Promise<void> } {
  const accepted: Connection[] = [];
  let accepting = true;
  const loop = (async () => {
    while (accepting) {
      const r = await acceptor.step(60_000).catch(() => ({ done: true as const, value: undefined }));
      if (r.done) return;
      accepted.push(r.value);
    }
  })();
  return {
    accepted,
    stop: async () => {
      accepting = false;
      await listener.close();
      await loop;
    },
  };
}

/** A listener on the harness address, plus a connected (dialler, acceptor) pair. */
export interface ConnectedPair {
  listener: Listener;
  acceptor: Acceptor;
  client: Connection;
  server: Connection;
  transports: { server: Transport; client: Transport };
}

/** What every case file gets from describeTransportCompliance. */
export interface SuiteContext {
  readonly harness: ComplianceHarness;
  /** The running test's scope (a new one for every test). */
  readonly scope: Scope;
  /** Two transports from the harness: the listening side and the dialling side. */
  transports(): Promise<{ server: Transport; client: Transport }>;
  connectedPair(options?: { listen?: Parameters<Transport['listen']>[1]; dial?: Parameters<Transport['dial']>[1] }): Promise<ConnectedPair>;
}
