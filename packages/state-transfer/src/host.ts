/**
 * ServiceHost: runs a deterministic service outside a @tandem/core replica — sequences requests,
 * applies them with a recorded context (@tandem/core's own: the same seed drawing, `ctx.random()` and
 * state digest as a replica), appends every entry to the catch-up backlog — and plays both
 * sides of a transfer: `TransferSource` when serving, `TransferSink` when joining. Used by the tests,
 * the benchmark, and anyone who wants streaming state transfer for their own state machine.
 */
import type { ApplyContext } from '@tandem/core';
import { applyContext, drawSeed, serviceDigest } from '@tandem/core/internal';
import { ReplicationBacklog, type BacklogOptions, type LogEntry } from './backlog.js';
import { pack } from './codec.js';
import type { TransferEnv } from './env.js';
import type { TransferFormat } from './migrations.js';
import type { CapturedState, InstalledState, StateHead, TransferSink, TransferSource } from './source.js';
import { serviceVersion, supportsChunks, type TransferableService } from './transferable.js';

/** A service the host can run: a transferable service with initialState/apply (a core ServiceDefinition fits). */
export interface HostedService<State, Req, Rep> extends TransferableService<State> {
  /** The state of a fresh replica. */
  initialState(): State;
  /** Apply one request deterministically and return the reply. */
  apply(state: State, request: Req, ctx: ApplyContext): Rep;
  /** A digest of the state, to compare replicas (optional; else a hash of the snapshot). */
  digest?(state: State): string;
}

/** One sequenced request, as the backlog keeps it and the joiner replays it. */
export interface HostEntry extends LogEntry {
  seq: number;
  epoch: number;
  clientId: string;
  requestId: number;
  body: unknown;
  time: number;
  seed: number;
}

/** Options of a ServiceHost: the service, its clock, backlog bounds, starting epoch and auxiliary replicated data. */
export interface ServiceHostOptions<State, Req, Rep> {
  service: HostedService<State, Req, Rep>;
  env: Pick<TransferEnv, 'now'> & {
    /** Wall-clock ms, recorded as each entry's time (default: `now()`). */
    wallClock?(): number;
    /** A number in [0, 1) each entry's seed is drawn from (default: a fixed 0.5). */
    random?(): number;
  };
  backlog?: BacklogOptions<LogEntry>;
  epoch?: number;
  /** Auxiliary replicated data to capture with each snapshot (e.g. an exactly-once window). */
  aux?: {
    /** The auxiliary data as of now, sent with the snapshot. */
    capture(): unknown;
    /** Install auxiliary data received with a snapshot. */
    install(aux: unknown): void;
  };
}

/**
 * Runs a service outside @tandem/core (sequencing, backlog, snapshots) as a TransferSource and TransferSink, for tools, benchmarks and
 * tests.
 */
export class ServiceHost<State, Req = unknown, Rep = unknown> implements TransferSource, TransferSink<State> {
  readonly service: HostedService<State, Req, Rep>;
  readonly backlog: ReplicationBacklog<LogEntry>;
  readonly #opts: ServiceHostOptions<State, Req, Rep>;
  state: State;
  seq = 0;
  epoch: number;
  #requestId = 0;

  constructor(options: ServiceHostOptions<State, Req, Rep>) {
    this.#opts = options;
    this.service = options.service;
    this.state = options.service.initialState();
    this.backlog = new ReplicationBacklog<LogEntry>(options.backlog);
    this.epoch = options.epoch ?? 1;
  }

  /** The hosted service's name. */
  get serviceName(): string {
    return this.service.name;
  }

  /** The hosted service's state format version (default 1). */
  get version(): number {
    return serviceVersion(this.service);
  }

  get canStreamRecords(): boolean {
    return supportsChunks(this.service);
  }

  /** Sequence and apply one request (the primary's job). Returns the reply; a thrown error is rethrown. */
  execute(request: Req, clientId = 'host'): Rep {
    const env = this.#opts.env;
    const entry: HostEntry = {
      seq: this.seq + 1,
      epoch: this.epoch,
      clientId,
      requestId: ++this.#requestId,
      body: request,
      time: env.wallClock ? env.wallClock() : env.now(),
      seed: drawSeed(env.random ? () => env.random!() : () => 0.5),
    };
    const out = this.#applyEntry(entry);
    if (out.error) throw out.error;
    return out.reply as Rep;
  }

  // -------------------------------------------------------------- TransferSource

  capture(format: TransferFormat): CapturedState {
    const aux = this.#opts.aux?.capture();
    const body: CapturedState['body'] =
      format === 'records' && this.service.snapshotChunks
        ? { format: 'records', cursor: this.service.snapshotChunks(this.state) }
        : { format: 'blob', bytes: pack(this.service.snapshot(this.state)) };
    return { seq: this.seq, epoch: this.epoch, version: this.version, body, ...(aux === undefined ? {} : { aux }) };
  }

  head(): StateHead {
    return { seq: this.seq, digest: this.digest() };
  }

  /** The service's digest, or a hash of its encoded snapshot (expensive for large states): the service
   * part of a @tandem/core replica's state digest. */
  digest(): string {
    return serviceDigest(this.service, this.state);
  }

  // -------------------------------------------------------------- TransferSink

  /** Replace the state with a transferred one at its seq and epoch; the backlog restarts there. */
  install(installed: InstalledState<State>): void {
    this.state = installed.state;
    this.seq = installed.seq;
    this.epoch = installed.epoch;
    this.backlog.reset(installed.seq);
    if (installed.aux !== undefined) this.#opts.aux?.install(installed.aux);
  }

  apply(entries: readonly LogEntry[]): void {
    for (const e of entries) this.#applyEntry(e as HostEntry);
  }

  #applyEntry(entry: HostEntry): { reply?: unknown; error?: Error } {
    if (entry.seq !== this.seq + 1) throw new RangeError(`ServiceHost: entry ${entry.seq} does not follow ${this.seq}`);
    const ctx: ApplyContext = applyContext(entry);
    let reply: unknown;
    let error: Error | undefined;
    try {
      reply = this.service.apply(this.state, entry.body as Req, ctx);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    this.seq = entry.seq;
    if (entry.epoch > this.epoch) this.epoch = entry.epoch;
    this.backlog.append(entry);
    return error ? { error } : { reply };
  }
}
