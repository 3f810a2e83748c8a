/**
 * The server's send loop, driven message by message through a scripted connection: acknowledgements
 * that reach the server together (one read holding several, as TCP delivers them under load) must all
 * count. The loop finds nothing to do, and only some microtasks later sleeps on its wake-up signal; a
 * notify in between used to be lost, and when it was the last acknowledgement the server never sent
 * snapEnd (a kv rolling upgrade hung until the joiner's idle timeout).
 */
import { describe, expect, it } from 'vitest';
import { createMemoryNetwork, type Connection } from '@tandem/transport';
import { decodeMessage, encodeMessage, ServiceHost, StateTransferServer, type TransferMessage } from '../src/index.js';
import { fill, kvServiceV1, sleep, testEnv } from './helpers.js';

/** A Connection the test feeds by hand: `push` makes messages readable at once, all in one go. */
function scriptedConnection(): { conn: Connection; push(...m: TransferMessage[]): void; sent: TransferMessage[] } {
  const queue: Uint8Array[] = [];
  let waiting: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  let closed = false;
  let closeInfo: (v: { by: 'local'; reason: string }) => void = () => {};
  const closedP = new Promise<{ by: 'local'; reason: string }>((r) => (closeInfo = r));
  const sent: TransferMessage[] = [];
  const end = (reason: string): void => {
    if (closed) return;
    closed = true;
    closeInfo({ by: 'local', reason });
    waiting?.({ done: true, value: undefined });
  };
  const conn = {
    id: 'scripted',
    localAddress: 'mem://server',
    remoteAddress: 'mem://joiner',
    maxMessageSize: 64 * 1024 * 1024,
    get isClosed() {
      return closed;
    },
    closed: closedP,
    send: (m: Uint8Array) => {
      sent.push(decodeMessage(m));
      return Promise.resolve();
    },
    close: (reason = 'closed') => {
      end(reason);
      return Promise.resolve();
    },
    abort: (err?: Error) => end(err?.message ?? 'aborted'),
    [Symbol.asyncIterator]: () => ({
      next: (): Promise<IteratorResult<Uint8Array>> => {
        const m = queue.shift();
        if (m) return Promise.resolve({ done: false, value: m });
        if (closed) return Promise.resolve({ done: true, value: undefined });
        return new Promise((r) => (waiting = r));
      },
    }),
  } as unknown as Connection;
  return {
    conn,
    sent,
    push(...ms) {
      for (const m of ms) queue.push(encodeMessage(m));
      const w = waiting;
      if (!w) return;
      waiting = undefined;
      w({ done: false, value: queue.shift()! });
    },
  };
}

async function settle(cond: () => boolean, ms = 2_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(2);
  return cond();
}

describe('state transfer server: acknowledgements read together', () => {
  // Several arrangements of the same burst (with 0–4 stale acks in front of the last two), so the
  // ack that ends the snapshot lands at different points of the send loop's way to sleep.
  for (const stale of [0, 1, 2, 3, 4]) {
    it(`sends snapEnd when the last two acks (after ${stale} stale ones) arrive in one read`, async () => {
      const env = testEnv(createMemoryNetwork());
      const primary = new ServiceHost({ service: kvServiceV1(), env });
      fill((r) => primary.execute(r), 400);
      const server = new StateTransferServer({ env, source: primary, chunkBytes: 2048, follow: false });
      const { conn, push, sent } = scriptedConnection();
      void server.handle(conn);
      push({
        t: 'open',
        service: 'kv',
        nodeId: 'j',
        version: 1,
        formats: [{ format: 'records', minVersion: 1 }],
        window: 1024,
        encodings: ['text-slices'],
      });
      // Every chunk goes out at once (the window is larger than the state); the server then waits for
      // acks. All of them are out when their records add up to the snapshot's (a fixed pause could end
      // while a busy machine still had the server producing, and the acks below then covered too few).
      const chunks = (): number => sent.filter((m) => m.t === 'chunk').length;
      const records = (): number => sent.reduce((sum, m) => sum + (m.t === 'chunk' ? m.records : 0), 0);
      expect(await settle(() => sent.some((m) => m.t === 'meta'))).toBe(true);
      const meta = sent.find((m) => m.t === 'meta');
      if (meta?.t !== 'meta' || meta.totalRecords === undefined) throw new Error('no meta with totalRecords');
      expect(await settle(() => records() === meta.totalRecords, 10_000)).toBe(true);
      const n = chunks();
      expect(n).toBeGreaterThan(3);
      const ack = (next: number): TransferMessage => ({ t: 'ack', transferId: meta.transferId, nextChunk: next, appliedSeq: 0 });
      push(ack(n - 2));
      await sleep(20);
      push(...Array.from({ length: stale }, () => ack(n - 2)), ack(n - 1), ack(n));
      expect(await settle(() => sent.some((m) => m.t === 'snapEnd'))).toBe(true);
      conn.abort();
      await server.close();
    });
  }
});
