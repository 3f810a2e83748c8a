// Keeps one etcd lease alive over a LeaseKeepAlive stream and reports, for each renewal etcd confirms, the
// local time at which that keepalive was SENT: etcd renews a lease to (the time it receives the keepalive +
// TTL), never earlier than that send time + TTL, and never renews a lease that already expired. So a holder
// that counts from the send time is conservative whatever the network delay.
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export interface KeepaliveEvents {
  /** etcd renewed the lease: the keepalive was sent at `sentAt` (local clock); the lease's TTL is `ttlS`. */
  renewed(sentAt: number, ttlS: number): void;
  /** etcd says the lease no longer exists (expired or revoked). The loop has stopped. */
  lost(): void;
  /** A stream failed or a response is overdue (etcd unreachable?); the loop goes on with a new stream. */
  trouble(message: string): void;
}

/** Drops a stream: ends it and cancels the call (its late answers are ignored). */
function drop(stream: Stream): void {
  try {
    stream.end();
    (stream as unknown as { cancel?: () => void }).cancel?.();
  } catch {
    /* already closed */
  }
}

function isLost(res: ILeaseKeepAliveResponse): boolean {
  return !(Number(res.TTL) > 0);
}

/** Sends a keepalive for `leaseId` every `intervalMs` on one stream, replacing the stream when a response is overdue. */
export class KeepaliveLoop {
  readonly leaseId: string;
  #stream: Stream | undefined;
  #opening = false;
  /** Send times of the keepalives written on the current stream and not answered yet (answers come in order). */
  #pending: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    private readonly client: Etcd3,
    leaseId: string,
    private readonly intervalMs: number,
    private readonly responseTimeoutMs: number,
    private readonly clock: () => number,
    private readonly events: KeepaliveEvents,
  ) {
    this.leaseId = leaseId;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stream) drop(this.#stream);
    this.#stream = undefined;
    this.#pending = [];
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#tick(), this.intervalMs);
    this.#timer.unref?.();
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#schedule();
    const oldest = this.#pending[0];
    if (this.#stream && oldest !== undefined && this.clock() - oldest > this.responseTimeoutMs) {
      this.events.trouble(`keepalive unanswered for ${Math.round(this.clock() - oldest)} ms`);
      this.#replaceStream();
    }
    if (this.#stream) this.#send(this.#stream);
    else this.#open();
  }

  #replaceStream(): void {
    if (this.#stream) drop(this.#stream);
    this.#stream = undefined;
    this.#pending = [];
  }

  #send(stream: Stream): void {
    this.#pending.push(this.clock());
    try {
      stream.write({ ID: this.leaseId });
    } catch (err) {
      this.events.trouble(`keepalive write failed: ${(err as Error).message}`);
      this.#replaceStream();
    }
  }

  #open(): void {
    if (this.#opening) return;
    this.#opening = true;
    this.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.#opening = false;
        if (this.#stopped) return drop(stream);
        this.#stream = stream;
        this.#pending = [];
        stream.on('data', (res: ILeaseKeepAliveResponse) => this.#onData(stream, res));
        stream.on('error', (err: Error) => this.#onEnd(stream, `keepalive stream failed: ${err.message}`));
        stream.on('end', () => this.#onEnd(stream, 'keepalive stream ended'));
        this.#send(stream);
      },
      (err: Error) => {
        this.#opening = false;
        if (!this.#stopped) this.events.trouble(`cannot open a keepalive stream: ${err.message}`);
      },
    );
  }

  #onData(stream: Stream, res: ILeaseKeepAliveResponse): void {
    if (this.#stopped || stream !== this.#stream) return;
    const sentAt = this.#pending.shift();
    if (isLost(res)) {
      this.stop();
      this.events.lost();
      return;
    }
    if (sentAt !== undefined) this.events.renewed(sentAt, Number(res.TTL));
  }

  #onEnd(stream: Stream, message: string): void {
    if (this.#stopped || stream !== this.#stream) return;
    this.events.trouble(message);
    this.#replaceStream();
  }
}

/**
 * One keepalive on a stream of its own: resolves with the send time and the TTL when etcd renewed the lease,
 * `undefined` when the lease no longer exists; rejects when etcd does not answer within `timeoutMs`.
 */
export async function keepaliveOnce(
  client: Etcd3,
  leaseId: string,
  timeoutMs: number,
  clock: () => number,
): Promise<{ sentAt: number; ttlS: number } | undefined> {
  const stream = await client.leaseClient.leaseKeepAlive();
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`keepalive unanswered after ${timeoutMs} ms`)), timeoutMs);
      const sentAt = clock();
      stream.on('data', (res: ILeaseKeepAliveResponse) => {
        clearTimeout(timer);
        resolve(isLost(res) ? undefined : { sentAt, ttlS: Number(res.TTL) });
      });
      stream.on('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.write({ ID: leaseId });
    });
  } finally {
    drop(stream);
  }
}
