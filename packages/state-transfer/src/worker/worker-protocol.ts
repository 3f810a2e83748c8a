/**
 * What the owning thread and a transfer worker say to each other (see worker-server.ts).
 *
 * Two channels. The RPC port carries the worker's synchronous questions about the source (capture,
 * head, backlog reads, a snapshot's skip lists): the worker posts one, waits on `Atomics.wait` until
 * the owner has answered, and takes the answer with `receiveMessageOnPort`. The control port carries
 * everything asynchronous: the listening address, events, "the backlog grew", close.
 * The backlog's first and last seq are mirrored in shared memory, so the send loop reads them without
 * asking.
 */
import type { TransferFormat } from '../migrations.js';
import type { StateTransferServerOptions } from '../protocol/server.js';
import type { SharedSnapshotPlan } from '../maps/slab-cursor.js';
import type { StateHead } from '../source.js';

/** A transport the worker builds its network from: `(await import(module))[factory](options)`. */
export interface WorkerTransportSpec {
  module: string;
  factory: string;
  options?: unknown;
}

/** Scheduling of the worker thread (Linux; what the OS refuses is reported, not fatal). */
export interface WorkerThreadSettings {
  /** Nice value of the worker thread (0–19; default: the owner's). */
  nice?: number;
  /** SCHED_IDLE: the thread runs only when a core has nothing else to run (util-linux `chrt`). */
  idle?: boolean;
  /** CPU list the worker thread may run on, as taskset reads it (e.g. "1" or "2-3"). */
  cpus?: string;
}

/** Server options that cross to the worker (all numbers and booleans; the env is the worker's own). */
export type WorkerServerSettings = Omit<StateTransferServerOptions, 'env' | 'source'>;

export interface WorkerData {
  listen: string;
  serviceName: string;
  version: number;
  canStreamRecords: boolean;
  server: WorkerServerSettings;
  transports: WorkerTransportSpec[];
  thread: WorkerThreadSettings;
  /** Int32 [answered, wantAppend]. */
  flags: SharedArrayBuffer;
  /** Float64 [firstSeq, lastSeq] of the source's backlog. */
  backlog: SharedArrayBuffer;
}

export const FLAG_ANSWERED = 0;
export const FLAG_WANT_APPEND = 1;

/** Every question carries an id and its answer the same id (an answer that came too late is dropped). */
export type RpcRequest = { id: number } & RpcQuestion;
export type RpcQuestion =
  | { op: 'capture'; format: TransferFormat }
  | { op: 'head' }
  | { op: 'headAfter'; seq: number; max: number }
  | { op: 'read'; seq: number; max: number }
  | { op: 'skips'; cursor: number; slab: number }
  | { op: 'next'; cursor: number; max: number }
  | { op: 'close'; cursor: number };

/** A captured state as it crosses: records (shared slabs, or fetched by `next`) or a blob. */
export type CapturedOverPort = {
  seq: number;
  epoch: number;
  version: number;
  aux?: unknown;
  body:
    | { format: 'records'; cursor: number; recordWidth: number; totalRecords?: number; shared?: SharedSnapshotPlan }
    | { format: 'blob'; bytes: Uint8Array };
};

export type RpcReply = { id: number } & (
  | {
      ok: true;
      value: CapturedOverPort | StateHead | { entries: Uint8Array; head?: StateHead } | Uint8Array | number[] | unknown[] | undefined;
    }
  | { ok: false; error: string }
);

/** Worker → owner on the control port. */
export type WorkerReport =
  | { t: 'listening'; address: string }
  | { t: 'event'; event: unknown }
  | { t: 'thread'; tid: number; applied: string[]; refused: string[] }
  | { t: 'failed'; error: string };

/** Owner → worker on the control port. */
export type OwnerCommand = { t: 'append' } | { t: 'close' };
