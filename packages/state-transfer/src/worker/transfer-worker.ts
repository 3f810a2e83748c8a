/**
 * Entry of a transfer worker thread (started by serveTransfersInWorker): a StateTransferServer on its
 * own event loop, reading snapshots from the owner's shared slabs and asking the owner, synchronously,
 * for the rest (capture, head, backlog entries). See worker-server.ts.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Buffer } from 'node:buffer';
import { createRegistry, type Transport } from '@tandem/transport';
import type { BacklogView, LogEntry } from '../backlog.js';
import type { TransferFormat } from '../migrations.js';
import { unpack } from '../codec.js';
import { TransferWorkerError } from '../errors.js';
import { nodeTransferEnv } from '../node-env.js';
import { StateTransferServer } from '../protocol/server.js';
import { SlabRunCursor } from '../maps/slab-cursor.js';
import type { CapturedState, StateHead, TransferSource } from '../source.js';
import type { SnapshotCursor } from '../transferable.js';
import {
  FLAG_ANSWERED,
  FLAG_WANT_APPEND,
  type CapturedOverPort,
  type OwnerCommand,
  type RpcQuestion,
  type RpcReply,
  type RpcRequest,
  type WorkerData,
  type WorkerReport,
} from './worker-protocol.js';

/** How long a question to the owner may stay unanswered before the worker gives up on it. */
const RPC_TIMEOUT_MS = 30_000;
/** How long a question spins for its answer before the worker sleeps on it. */
const RPC_SPIN_MS = 1;
/** Most log entries per backlog question (the owner may answer fewer: see OBJECT_READ_MAX in worker-server.ts). */
const READ_MAX = 512;

const data = workerData as WorkerData & { rpc: MessagePort; control: MessagePort };
const flags = new Int32Array(data.flags);
const backlogSeqs = new Float64Array(data.backlog);
const report = (m: WorkerReport): void => data.control.postMessage(m);

/** A synchronous question to the owner; the answer's value (throws what the owner threw). */
type Ask = <T>(question: RpcQuestion) => T;

/** Questions timed with `now` (the env's clock), posted on the RPC port. */
function asker(now: () => number): Ask {
  let nextQuestion = 1;
  return <T>(question: RpcQuestion): T => {
    const req: RpcRequest = { id: nextQuestion++, ...question };
    Atomics.store(flags, FLAG_ANSWERED, 0);
    data.rpc.postMessage(req);
    // The owner usually answers within tens of microseconds. Spin that long before sleeping: a worker
    // woken from Atomics.wait may wait a whole scheduler tick for its core (e.g. SCHED_IDLE beside a
    // busy joiner), which made every answer cost milliseconds.
    const spinUntil = now() + RPC_SPIN_MS;
    while (Atomics.load(flags, FLAG_ANSWERED) === 0 && now() < spinUntil);
    const deadline = now() + RPC_TIMEOUT_MS;
    while (Atomics.load(flags, FLAG_ANSWERED) === 0) {
      if (now() > deadline) throw new TransferWorkerError(`transfer worker: no answer to ${req.op} within ${RPC_TIMEOUT_MS} ms`);
      Atomics.wait(flags, FLAG_ANSWERED, 0, 100);
    }
    // Answers to questions that timed out earlier may come first: skip them.
    let reply: RpcReply | undefined;
    for (let got = receiveMessageOnPort(data.rpc); got; got = receiveMessageOnPort(data.rpc)) {
      reply = got.message as RpcReply;
      if (reply.id === req.id) break;
    }
    if (!reply || reply.id !== req.id) throw new TransferWorkerError(`transfer worker: the answer to ${req.op} is missing`);
    if (!reply.ok) throw new TransferWorkerError(reply.error);
    return reply.value as T;
  };
}

/**
 * The owner's backlog as the server sees it: seqs from shared memory, entries on request. The owner
 * says "it grew" once per arming; reading lastSeq arms it (the server reads lastSeq just before it
 * decides to wait for the log), so a snapshot phase, which never reads it, costs the owner no message
 * per request. Arming is an exchange: when the owner's last disarm is what it reads, the seqs written
 * before that disarm are visible to the read that follows.
 */
class BacklogMirror implements BacklogView {
  readonly #listeners = new Set<() => void>();
  readonly #ask: Ask;
  constructor(ask: Ask) {
    this.#ask = ask;
  }
  get firstSeq(): number {
    return backlogSeqs[0]!;
  }
  get lastSeq(): number {
    Atomics.exchange(flags, FLAG_WANT_APPEND, 1);
    return backlogSeqs[1]!;
  }
  covers(seq: number): boolean {
    return seq >= this.firstSeq;
  }
  /** At most READ_MAX entries per question: each one is a pause of the owner's thread. */
  read(seq: number, max: number): LogEntry[] {
    return unpack(this.#ask<Uint8Array>({ op: 'read', seq, max: Math.min(max, READ_MAX) })) as LogEntry[];
  }
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
  /** The owner appended since lastSeq was last read. */
  appended(): void {
    for (const l of [...this.#listeners]) l();
  }
}

function cursorOver(c: Extract<CapturedOverPort['body'], { format: 'records' }>, ask: Ask): SnapshotCursor {
  const id = c.cursor;
  const close = (): void => void ask({ op: 'close', cursor: id });
  if (c.shared) {
    const runs = c.shared.slabs.map((s) => ({ buf: Buffer.from(s.buffer, s.byteOffset, s.byteLength), end: s.end }));
    return new SlabRunCursor(runs, c.shared.totalRecords, (slab) => ask<number[]>({ op: 'skips', cursor: id, slab }), close);
  }
  // Not shared memory: the owner reads its cursor and sends the records (its thread does that copy).
  let closed = false;
  return {
    recordWidth: c.recordWidth,
    ...(c.totalRecords === undefined ? {} : { totalRecords: c.totalRecords }),
    next(max: number): unknown[] | undefined {
      if (closed) return undefined;
      const recs = ask<unknown[] | undefined>({ op: 'next', cursor: id, max });
      if (!recs) closed = true;
      return recs;
    },
    close(): void {
      if (closed) return;
      closed = true;
      close();
    },
  };
}

function applyThreadSettings(): void {
  const t = data.thread;
  const applied: string[] = [];
  const refused: string[] = [];
  let tid = 0;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    if (t.nice || t.idle || t.cpus) refused.push('thread settings: /proc/thread-self is not readable (Linux only)');
  }
  if (tid > 0) {
    if (t.nice) {
      try {
        setPriority(tid, Math.min(19, Math.max(0, Math.floor(t.nice))));
        applied.push(`nice ${t.nice}`);
      } catch (err) {
        refused.push(`nice ${t.nice}: ${(err as Error).message}`);
      }
    }
    const run = (label: string, cmd: string, args: string[]): void => {
      const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      if (r.status === 0) applied.push(label);
      else refused.push(`${label}: ${r.error ? r.error.message : (r.stderr || `exit ${r.status}`).trim()}`);
    };
    if (t.idle) run('SCHED_IDLE', 'chrt', ['--idle', '-p', '0', String(tid)]);
    if (t.cpus) run(`cpus ${t.cpus}`, 'taskset', ['-p', '-c', t.cpus, String(tid)]);
  }
  report({ t: 'thread', tid, applied, refused });
}

async function main(): Promise<void> {
  applyThreadSettings();
  const transports: Transport[] = [];
  for (const spec of data.transports) {
    const mod = (await import(spec.module)) as Record<string, unknown>;
    const factory = mod[spec.factory];
    if (typeof factory !== 'function') throw new TypeError(`transfer worker: ${spec.module} has no function ${spec.factory}`);
    transports.push((factory as (o?: unknown) => Transport)(spec.options));
  }
  const network = createRegistry(transports);
  const env = nodeTransferEnv({ network });
  const ask = asker(env.now);
  const backlog = new BacklogMirror(ask);
  const source: TransferSource = {
    serviceName: data.serviceName,
    version: data.version,
    canStreamRecords: data.canStreamRecords,
    backlog,
    capture(format: TransferFormat): CapturedState {
      const c = ask<CapturedOverPort>({ op: 'capture', format });
      const body: CapturedState['body'] =
        c.body.format === 'records' ? { format: 'records', cursor: cursorOver(c.body, ask) } : { format: 'blob', bytes: c.body.bytes };
      return { seq: c.seq, epoch: c.epoch, version: c.version, body, ...(c.aux === undefined ? {} : { aux: c.aux }) };
    },
    head: () => ask<StateHead>({ op: 'head' }),
    headAfter(seq: number, max: number) {
      const r = ask<{ entries: Uint8Array; head?: StateHead }>({ op: 'headAfter', seq, max: Math.min(max, READ_MAX) });
      return { entries: unpack(r.entries) as LogEntry[], ...(r.head ? { head: r.head } : {}) };
    },
  };
  const server = new StateTransferServer({ env, source, ...data.server });
  server.on((event) => report({ t: 'event', event }));
  data.control.on('message', (m: OwnerCommand) => {
    if (m.t === 'append') backlog.appended();
    else if (m.t === 'close') {
      void server
        .close()
        .catch(() => undefined)
        .finally(() => data.control.close());
    }
  });
  const address = await server.listen(data.listen);
  report({ t: 'listening', address });
}

main().catch((err: Error) => {
  report({ t: 'failed', error: err.stack ?? err.message });
  data.control.close();
});
