/**
 * Metric hooks: plain interfaces a replica and a client report to, so an embedding application can feed
 * any metrics system (`@tandem/metrics-prometheus` maps them to prom-client) while the core itself
 * depends on none. Every method is optional; without a sink nothing is reported and nothing allocated.
 * Durations are in ms from the injected Env's clock (`env.now()`), so they are simulated time under the
 * simulator. A sink must not throw and must not call back into the replica or client synchronously.
 */
import type { ReplicaEvent } from './api.js';

/** How a serving replica answered a request. `not-primary`: it does not serve (or stopped serving while the
 * request waited); `duplicate`: answered from the dedup window; `invalid`: failed the request schema;
 * `app-error`: the service threw (recorded like any reply); `held`: the admission hook held it (reported again with its outcome when served). */
export type ReplicaRequestOutcome = 'ok' | 'app-error' | 'duplicate' | 'invalid' | 'not-primary' | 'held';

/** What a client's forward (one `fwd` message) met at a replica: every one is `received`; `applied` when it
 * brought a backup at least one entry it did not hold yet (most forwards arrive after the primary's flush and
 * bring nothing new); `rejected` when any of its entries failed the primary's MAC (never applied). */
export type ForwardResult = 'received' | 'applied' | 'rejected';

/** The kind of an accepted or dialled connection (from its hello). */
export type ConnectionKind = 'client' | 'peer' | 'transfer' | 'admin';

/** Where a replica reports what it does (ReplicaOptions.metrics, or `replica.metrics = sink`). */
export interface ReplicaMetricsSink {
  /** A request answered (or refused) by this replica; `durationMs` from its arrival (a held request's wait included) to the answer. */
  request?(outcome: ReplicaRequestOutcome, durationMs: number): void;
  /** The primary's flush round trip: from sending a flush to the backup's acknowledgement of it. */
  flushRtt?(durationMs: number): void;
  /** A client's forward met `result` at this replica (a forward may count as received and applied or rejected). */
  forward?(result: ForwardResult): void;
  /** A connection of `kind` was admitted (`opened`) or ended (`closed`). */
  connection?(kind: ConnectionKind, change: 'opened' | 'closed'): void;
  /** Protocol bytes read (`in`) or handed to the transport (`out`) on the replica's connections (framing excluded). */
  bytes?(direction: 'in' | 'out', count: number): void;
  /** Every ReplicaEvent the replica emits (role, takeover, step-down, divergence, …), as `replica.on` sees it. */
  event?(event: ReplicaEvent): void;
}

/** How a client call ended. `unavailable`: callDeadlineMs passed; `refused`: the replicas refused this client
 * (authentication); `invalid`: failed the request schema; `app-error`: the service threw; `stopped`: the
 * client was closed first; `protocol-error`: the reply did not match the reply schema. */
export type ClientCallOutcome = 'ok' | 'app-error' | 'invalid' | 'unavailable' | 'refused' | 'stopped' | 'protocol-error';

/** Where a client reports what it does (ClientOptions.metrics, or `client.metrics = sink`). */
export interface ClientMetricsSink {
  /** A call ended with `outcome`, `durationMs` after it started (waiting for forward-queue space excluded). */
  call?(outcome: ClientCallOutcome, durationMs: number): void;
  /** A call without a reply in requestTimeoutMs was re-sent to both replicas. */
  retry?(): void;
  /** A reply came at a newer epoch than any seen before: a takeover (or a re-promotion) happened. */
  failover?(epoch: number): void;
}
