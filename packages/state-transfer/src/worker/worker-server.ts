/**
 * Serve state transfers from a worker thread (Node). The owning thread keeps its state and answers
 * requests; the worker runs the StateTransferServer — chunk encoding, checksums, the socket writes,
 * acknowledgements, catch-up — on its own event loop and heap. The owner's part of a transfer is a
 * handful of synchronous answers: capture (fix S and open the snapshot), a slab's skip list, backlog
 * reads during catch-up, and the head's digest at the end.
 *
 * Streaming without copying on the owner needs the state's snapshot to be readable from another
 * thread: a SlabMap made with `{ shared: true }` (slabs in SharedArrayBuffers; the snapshot's part of a
 * slab is never written again while it is open). Any other records cursor works too, but then the
 * owner reads it and posts the records (its thread does that work); a blob is copied once.
 *
 * On a machine with few cores, the worker thread can be made background work: `thread: { nice,
 * idle, cpus }` (Linux) lowers its priority, or confines it, so that the owner's requests keep a core.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { ReplicationBacklog } from '../backlog.js';
import { pack } from '../codec.js';
import { TransferWorkerError } from '../errors.js';
import { isShareableCursor } from '../maps/slab-cursor.js';
import type { StateTransferServerEvent } from '../protocol/server.js';
import type { TransferEnv } from '../env.js';
import type { CapturedState, TransferSource } from '../source.js';
import type { SnapshotCursor } from '../transferable.js';
import {
  FLAG_ANSWERED,
  FLAG_WANT_APPEND,
  type CapturedOverPort,
  type RpcReply,
  type RpcRequest,
  type WorkerData,
  type WorkerReport,
  type WorkerServerSettings,
  type WorkerThreadSettings,
  type WorkerTransportSpec,
} from './worker-protocol.js';

export type { WorkerServerSettings, WorkerThreadSettings, WorkerTransportSpec } from './worker-protocol.js';

/** Options of serveTransfersInWorker: the Env, the source, the address to listen at, server, transport and thread settings. */
export interface TransferWorkerOptions {
  /** This thread's environment (its timers bound the worker's start and close). */
  env: TransferEnv;
  /** The state to serve (e.g. a ServiceHost). Its captures, head and backlog are read on this thread. */
  source: TransferSource;
  /** Address the worker listens on (e.g. "tcp://127.0.0.1:7001"). */
  listen: string;
  /** StateTransferServer options (the env is the worker's own). */
  server?: WorkerServerSettings;
  /** Transports of the worker's network (default: TCP from @tandem/transport-tcp). */
  transports?: WorkerTransportSpec[];
  /** Scheduling of the worker thread (default: as the owner's). */
  thread?: WorkerThreadSettings;
  /** Node options of the worker (default: the process's, e.g. a TypeScript loader). */
  execArgv?: string[];
  /** How long to wait for the worker to listen (default 30 000 ms). */
  startTimeoutMs?: number;
}

/** A transfer server running on a worker thread: its address, thread, answer counts, events, and a way to stop it. */
export interface TransferWorker {
  /** The address the worker listens on. */
  readonly address: string;
  /** The worker thread's OS thread id and the scheduling settings applied or refused. */
  readonly thread: { tid: number; applied: string[]; refused: string[] };
  /**
   * Questions this thread answered for the worker, by kind (capture, head, headAfter, read, skips,
   * next, close). A snapshot in shared memory needs no 'next': its records never pass through here.
   */
  readonly answered: Readonly<Record<string, number>>;
  /** Server events, as the worker's StateTransferServer emits them (they arrive a little later than there). */
  on(listener: (event: StateTransferServerEvent) => void): () => void;
  /** Settles when the worker thread has ended: with the error that ended it, or undefined after close(). */
  readonly ended: Promise<Error | undefined>;
  /** Stop listening, drop sessions, end the worker. */
  close(): Promise<void>;
}

const DEFAULT_TRANSPORTS: WorkerTransportSpec[] = [{ module: '@tandem/transport-tcp', factory: 'tcp' }];
/**
 * Most backlog entries encoded per question when the backlog keeps objects: this thread encodes them
 * while its requests wait (512 took 0.5–1 ms in the benchmark, 2026-11-29). Stored bytes ('encoded'
 * storage) are only copied, so those answers take what the worker asks for.
 */
const OBJECT_READ_MAX = 128;

/**
 * The worker entry next to this module. Built (.js): the file itself. From TypeScript sources (this
 * repository's tests and tools): a bootstrap that registers tsx's loader in the worker first, since a
 * worker does not inherit the loader hooks of its parent, and resolves workspace packages to sources.
 */
function workerEntry(): { entry: URL | string; eval: boolean; execArgv?: string[] } {
  if (!import.meta.url.endsWith('.ts')) return { entry: new URL('./transfer-worker.js', import.meta.url), eval: false };
  const entry = new URL('./transfer-worker.ts', import.meta.url).href;
  // The package's ESM entry (require.resolve gives the CommonJS one, which cannot register from a worker).
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return { entry: code, eval: true, execArgv: ['--conditions=@tandem/source'] };
}

/** Serve state transfers from a worker thread, so that chunk encoding and sending do not run on the replica's event loop. */
export async function serveTransfersInWorker(options: TransferWorkerOptions): Promise<TransferWorker> {
  const source = options.source;
  const flagsBuf = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const backlogBuf = new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT);
  const flags = new Int32Array(flagsBuf);
  const seqs = new Float64Array(backlogBuf);
  const rpc = new MessageChannel();
  const control = new MessageChannel();
  const data: WorkerData & { rpc: MessagePort; control: MessagePort } = {
    listen: options.listen,
    serviceName: source.serviceName,
    version: source.version,
    canStreamRecords: source.canStreamRecords,
    server: options.server ?? {},
    transports: options.transports ?? DEFAULT_TRANSPORTS,
    thread: options.thread ?? {},
    flags: flagsBuf,
    backlog: backlogBuf,
    rpc: rpc.port2,
    control: control.port2,
  };

  // The backlog's seqs in shared memory; "it grew" once per arming by the worker.
  const backlog = source.backlog;
  const mirror = (): void => {
    seqs[0] = backlog.firstSeq;
    seqs[1] = backlog.lastSeq;
  };
  mirror();
  const unsubscribe = backlog.onAppend(() => {
    mirror();
    if (Atomics.compareExchange(flags, FLAG_WANT_APPEND, 1, 0) === 1) control.port1.postMessage({ t: 'append' });
  });

  // What this thread answered, per question (diagnostics: a shared snapshot needs no 'next').
  const answered: Record<string, number> = {};
  // Snapshots the worker has open, by id.
  const cursors = new Map<number, SnapshotCursor>();
  let nextCursor = 1;
  const capture = (format: CapturedState['body']['format']): CapturedOverPort => {
    const c = source.capture(format);
    const base = { seq: c.seq, epoch: c.epoch, version: c.version, ...(c.aux === undefined ? {} : { aux: c.aux }) };
    if (c.body.format === 'blob') return { ...base, body: { format: 'blob', bytes: c.body.bytes } };
    const cursor = c.body.cursor;
    const id = nextCursor++;
    cursors.set(id, cursor);
    const shared = isShareableCursor(cursor) ? cursor.share() : undefined;
    return {
      ...base,
      body: {
        format: 'records',
        cursor: id,
        recordWidth: cursor.recordWidth ?? 1,
        ...(cursor.totalRecords === undefined ? {} : { totalRecords: cursor.totalRecords }),
        ...(shared ? { shared } : {}),
      },
    };
  };
  const cursorOf = (id: number): SnapshotCursor => {
    const c = cursors.get(id);
    if (!c) throw new TransferWorkerError(`no open snapshot ${id}`);
    return c;
  };
  // Backlog entries cross as one msgpack array, not a structured clone (cloning entry objects cost this
  // thread ~5 µs per entry, encoding them about a tenth of that); a ReplicationBacklog with 'encoded'
  // storage hands over its stored bytes without encoding anything, so it may answer many at once.
  const readPacked = (seq: number, max: number): Uint8Array =>
    backlog instanceof ReplicationBacklog ? backlog.readPacked(seq, max) : pack(backlog.read(seq, max));
  const encoded = backlog instanceof ReplicationBacklog && backlog.storage === 'encoded';
  const readMax = (max: number): number => (encoded ? max : Math.min(max, OBJECT_READ_MAX));
  const answer = (req: RpcRequest): unknown => {
    switch (req.op) {
      case 'capture':
        return capture(req.format);
      case 'head':
        return source.head();
      case 'headAfter': {
        // One instant: the entries after seq and the head they lead to.
        const head = source.head();
        const n = head.seq - req.seq;
        const max = readMax(req.max);
        if (n > max) return { entries: readPacked(req.seq + 1, max) };
        return { entries: n > 0 ? readPacked(req.seq + 1, n) : pack([]), head };
      }
      case 'read':
        return readPacked(req.seq, readMax(req.max));
      case 'skips': {
        const c = cursorOf(req.cursor);
        if (!isShareableCursor(c)) throw new TransferWorkerError(`snapshot ${req.cursor} is not shared`);
        return c.skipsOf(req.slab);
      }
      case 'next': {
        const recs = cursorOf(req.cursor).next(req.max);
        return recs ? recs.slice() : undefined; // a cursor may reuse its array
      }
      case 'close':
        cursors.get(req.cursor)?.close();
        cursors.delete(req.cursor);
        return undefined;
    }
  };
  rpc.port1.on('message', (req: RpcRequest) => {
    let reply: RpcReply;
    answered[req.op] = (answered[req.op] ?? 0) + 1;
    mirror(); // e.g. after a backlog reset, which tells no listener
    try {
      reply = { id: req.id, ok: true, value: answer(req) as never };
    } catch (err) {
      reply = { id: req.id, ok: false, error: (err as Error).message };
    }
    try {
      rpc.port1.postMessage(reply);
    } catch (err) {
      rpc.port1.postMessage({
        id: req.id,
        ok: false,
        error: `the answer to ${req.op} cannot be sent: ${(err as Error).message}`,
      } satisfies RpcReply);
    }
    Atomics.store(flags, FLAG_ANSWERED, 1);
    Atomics.notify(flags, FLAG_ANSWERED);
  });

  const start = workerEntry();
  const execArgv = options.execArgv ?? start.execArgv;
  const worker = new Worker(start.entry, {
    eval: start.eval,
    workerData: data,
    transferList: [rpc.port2, control.port2],
    ...(execArgv ? { execArgv } : {}),
  });
  const listeners = new Set<(e: StateTransferServerEvent) => void>();
  let thread: TransferWorker['thread'] = { tid: 0, applied: [], refused: [] };
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const cleanup = (): void => {
    exited = true;
    unsubscribe();
    rpc.port1.close();
    control.port1.close();
    for (const c of cursors.values()) c.close();
    cursors.clear();
  };
  void exit.then(cleanup);

  const address = await new Promise<string>((resolve, reject) => {
    const startMs = options.startTimeoutMs ?? 30_000;
    const timer = options.env.setTimer(startMs, () =>
      reject(new TransferWorkerError(`the transfer worker did not listen within ${startMs} ms`)),
    );
    const fail = (err: Error): void => {
      timer.cancel();
      reject(err);
    };
    worker.once('error', fail);
    void exit.then(() => fail(new TransferWorkerError('the transfer worker exited before listening')));
    control.port1.on('message', (m: WorkerReport) => {
      if (m.t === 'listening') {
        timer.cancel();
        resolve(m.address);
      } else if (m.t === 'failed') fail(new TransferWorkerError(`the transfer worker failed: ${m.error}`));
      else if (m.t === 'thread') thread = { tid: m.tid, applied: m.applied, refused: m.refused };
      else if (m.t === 'event') for (const l of [...listeners]) l(m.event as StateTransferServerEvent);
    });
  }).catch(async (err: Error) => {
    await worker.terminate();
    throw err;
  });
  // After start: an error ends the worker; `ended` tells it (the exit cleans up).
  let crash: Error | undefined;
  worker.on('error', (err) => {
    crash ??= err;
  });
  const ended = exit.then(() => crash);

  return {
    address,
    get thread() {
      return thread;
    },
    answered,
    ended,
    on(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async close() {
      if (exited) return;
      control.port1.postMessage({ t: 'close' });
      const timer = options.env.setTimer(5_000, () => void worker.terminate());
      await exit;
      timer.cancel();
    },
  };
}
