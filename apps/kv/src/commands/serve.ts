/**
 * `tandem-kv serve`: run one replica of the kv service. Prints the worst-case failover bound computed
 * from the configuration (one line on stderr at every log level but silent, and the `timing` event on
 * stdout), serves Prometheus metrics with --metrics-listen, then role changes and protocol events (human lines, or JSON lines with
 * --json). When started with an IPC channel (the demo, tests and benchmark harness), it also answers
 * {type:'status'} and {type:'read', keys} messages from its parent.
 */
import {
  computeTimingBounds,
  computeWitnessBounds,
  createReplica,
  isLoopbackAddress,
  nodeEnv,
  type ReplicaEvent,
  type ReplicaSecurity,
  type ReplicationConfig,
  type Replica,
  type StateSnapshot,
  type StateSync,
  type Witness,
} from '@tandem/core';
import { streamingStateSync, withImmediateYield, type StreamingStateSyncEvent, type TransferProgress } from '@tandem/state-transfer';
import { Registry, replicaMetrics, serveMetrics, stateTransferMetrics, type MetricsServer } from '@tandem/metrics-prometheus';
import { kvServiceVersion, type KvServiceVariant } from '../service.js';
import { createTransportRegistry } from '../transports.js';
import type { TransportSecurity } from '../security-options.js';

export interface ServeOptions {
  listen: string;
  peer: string;
  role: 'primary' | 'backup' | 'auto';
  nodeId?: string | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  replication: ReplicationConfig;
  json: boolean;
  /** State version of the kv service to run (default 1); an older state a joining replica receives is migrated. */
  serviceVersion?: number;
  /** Called with the replica before it starts, and the line printer (rejoin adds its phase lines). */
  onCreated?: (replica: Replica<unknown>, out: ServeOutput) => void;
  /** Called when a joining replica installs the primary's state (with the version it arrived in). */
  onStateInstalled?: (installed: { seq: number; fromVersion: number; toVersion: number; streamed: boolean }, out: ServeOutput) => void;
  /**
   * How this replica gets the primary's state when it joins: 'stream' = through @tandem/state-transfer
   * (snapshot at S while the primary serves, catch-up from its backlog, digest verified, then a delta
   * join); 'copy' (default) = the whole state in one message. Every replica serves streams as primary.
   */
  stateTransfer?: 'stream' | 'copy';
  /** Progress of a streamed join (bytes, records, entries, percent, rate). */
  onTransferProgress?: (progress: TransferProgress, out: ServeOutput) => void;
  /** Every state-transfer event, as joiner or as serving replica. */
  onTransferEvent?: (event: StreamingStateSyncEvent, out: ServeOutput) => void;
  /** Cluster key, client keys, insecure (security-options.ts). */
  security?: ReplicaSecurity;
  /** TLS / CURVE material for the transports. */
  transportSecurity?: TransportSecurity;
  /** One line describing the security settings, printed at startup. */
  securitySummary?: string;
  /** Asked before this replica serves alone (`--witness etcd://…`: @tandem/witness-etcd). */
  witness?: Witness;
  /** Where the witness is, for the startup line (no secrets). */
  witnessSummary?: string;
  /** `HOST:PORT` to serve Prometheus metrics on (GET /metrics); loopback unless `security.insecure`. */
  metricsListen?: string;
}

/** The startup line with the failover bounds in force (stderr, every log level but silent). */
export function failoverBoundLine(replication: ReplicationConfig, witness?: Witness): string {
  const b = computeTimingBounds(replication);
  const processCrash = replication.fastFailover
    ? `process crash ≤ ${b.processCrashFailoverMs} ms`
    : `process crash ≤ ${b.processCrashFailoverMs} ms (fast path off)`;
  let line = `tandem-kv: failover bound: ${processCrash}, host crash ≤ ${b.worstCaseFailoverMs} ms (takeover ${b.takeoverMs} ms + request retry ${replication.requestTimeoutMs} ms)`;
  if (witness !== undefined) {
    const wb = computeWitnessBounds(replication, witness.leaseMs ?? 0);
    line += `; with the witness: + one witness round trip, ≤ ${wb.worstCaseFailoverAfterSoloMs} ms when the failed replica served alone (lease ${wb.witnessLeaseMs} ms)`;
  }
  return line;
}

/** Prints one event: a JSON line with --json, else a human line. */
export type ServeOutput = (event: string, fields: Record<string, unknown>, human: string) => void;

/** Messages a parent process may send over IPC, and the answers. */
export type ServeIpcRequest = { type: 'status'; id: number } | { type: 'read'; id: number; keys: string[] };

export async function serve(opts: ServeOptions): Promise<Replica<unknown>> {
  const nodeId = opts.nodeId ?? opts.listen;
  const variant = kvServiceVersion(opts.serviceVersion ?? 1);
  const out: ServeOutput = (event, fields, human) => {
    if (opts.json) process.stdout.write(JSON.stringify({ event, node: nodeId, ...fields }) + '\n');
    else process.stdout.write(`[${nodeId}] ${human}\n`);
  };
  // yieldNow (setImmediate): a primary streaming its state yields to pending requests between slices.
  const env = withImmediateYield(
    nodeEnv({ network: createTransportRegistry(opts.transportSecurity), logLevel: opts.logLevel, logFields: { node: nodeId } }),
  );
  const sec = opts.security ?? {};
  out(
    'security',
    {
      clusterKey: (sec.clusterKeys?.length ?? 0) > 0,
      insecure: sec.insecure === true,
      requireClientAuth: sec.requireClientAuth === true,
      tls: opts.transportSecurity?.tls !== undefined,
      curve: opts.transportSecurity?.curve !== undefined,
    },
    `security: ${opts.securitySummary ?? ((sec.clusterKeys?.length ?? 0) > 0 ? 'cluster key' : 'NO cluster key: peers not authenticated')}${(sec.clusterKeys?.length ?? 0) === 0 ? (sec.insecure ? ' — WARNING: --insecure: any host that reaches this address can act as the peer and take the pair down' : ' (loopback only)') : ''}`,
  );
  const bounds = computeTimingBounds(opts.replication);
  if (opts.logLevel !== 'silent') process.stderr.write(`${failoverBoundLine(opts.replication, opts.witness)}\n`);
  out(
    'timing',
    { bounds, config: opts.replication },
    `worst-case failover ${bounds.worstCaseFailoverMs} ms (host crash: silence) = heartbeat timeout ${opts.replication.heartbeatTimeoutMs} + forward window ${bounds.forwardWindowMs} + takeover probe ${bounds.takeoverProbeMs} + request retry ${opts.replication.requestTimeoutMs}; ${bounds.processCrashGraceMs > 0 ? `process crash (reset + refused dial): ${bounds.processCrashFailoverMs} ms = grace ${bounds.processCrashGraceMs} (forward delay + transit allowance) + transit allowance` : 'process-crash fast path off'} (piggyback ${opts.replication.piggyback}, reply ${opts.replication.replyMode})`,
  );
  if (opts.witness !== undefined) {
    const wb = computeWitnessBounds(opts.replication, opts.witness.leaseMs ?? 0);
    out(
      'witness',
      { witness: opts.witnessSummary ?? 'custom', bounds: wb },
      `witness: ${opts.witnessSummary ?? 'custom'} — asked before serving alone; lease ${wb.witnessLeaseMs} ms; worst-case failover ${wb.worstCaseFailoverMs} ms + one witness round trip (pair was healthy), ${wb.worstCaseFailoverAfterSoloMs} ms when the failed replica served alone and held the grant`,
    );
  } else {
    out(
      'witness',
      { witness: 'none' },
      'witness: none — a primary/backup partition with both alive can split the pair (docs/PARTITIONS.md)',
    );
  }
  const registry = opts.metricsListen !== undefined ? new Registry() : undefined;
  const transferMetrics = registry !== undefined ? stateTransferMetrics({ registry }) : undefined;
  const streaming = streamingStateSync({
    service: variant.service,
    onProgress: (p) => opts.onTransferProgress?.(p, out),
    onEvent: (e) => {
      transferMetrics?.onEvent(e);
      if (e.side === 'joiner' && e.type === 'installed') {
        opts.onStateInstalled?.({ seq: e.seq, fromVersion: e.sourceVersion, toVersion: e.version, streamed: true }, out);
      }
      reportTransferEvent(e, out);
      opts.onTransferEvent?.(e, out);
    },
  });
  const stateSync: StateSync = {
    capture: (snap: StateSnapshot) => streaming.capture(snap),
    install(snap: StateSnapshot): StateSnapshot {
      const installed = streaming.install(snap); // migrates an older version; throws on a newer one
      opts.onStateInstalled?.({ seq: snap.seq, fromVersion: snap.version, toVersion: installed.version, streamed: false }, out);
      return installed;
    },
    attachPrimary: (view) => streaming.attachPrimary!(view),
    ...(opts.stateTransfer === 'stream' ? { fetch: (ctx: Parameters<NonNullable<StateSync['fetch']>>[0]) => streaming.fetch!(ctx) } : {}),
  };
  const replica: Replica<unknown> = createReplica({
    service: variant.service,
    stateSync,
    env,
    listen: opts.listen,
    peer: opts.peer,
    roleHint: opts.role,
    nodeId,
    config: opts.replication,
    ...(opts.security ? { security: opts.security } : {}),
    ...(opts.witness ? { witness: opts.witness } : {}),
  });
  let metricsServer: MetricsServer | undefined;
  if (registry !== undefined && opts.metricsListen !== undefined) {
    replicaMetrics(replica, { registry });
    metricsServer = await serveMetrics(registry, opts.metricsListen, { allowRemote: sec.insecure === true });
    out(
      'metrics',
      { address: metricsServer.address, url: metricsServer.url },
      `metrics: ${metricsServer.url}${sec.insecure === true && !isLoopbackAddress(metricsServer.url) ? ' — WARNING: --insecure: the metrics endpoint is reachable beyond loopback, unauthenticated' : ''}`,
    );
  }
  // Refusals and forged forwards can come by the thousand from an attacker: print a few, count the rest.
  let window = { start: Date.now(), shown: 0, hidden: 0 };
  replica.on((e) => {
    if (e.type === 'auth-refused' || e.type === 'forged-forward') {
      const now = Date.now();
      if (now - window.start >= 10_000) {
        if (window.hidden > 0)
          out(
            'suppressed',
            { events: window.hidden },
            `(${window.hidden} more refused connections / forged forwards in the last ${Math.round((now - window.start) / 1000)} s)`,
          );
        window = { start: now, shown: 0, hidden: 0 };
      }
      if (window.shown >= 5) {
        window.hidden++;
        return;
      }
      window.shown++;
    }
    reportEvent(e, out);
  });
  attachIpc(replica, variant);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    out('stopping', { signal }, `stopping (${signal})`);
    void metricsServer?.close();
    replica.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  opts.onCreated?.(replica, out);
  await replica.start();
  const s = replica.status();
  out(
    'serving',
    { address: replica.address, role: s.role, epoch: s.epoch, appliedSeq: s.appliedSeq, serviceVersion: variant.version, pid: process.pid },
    `listening on ${replica.address} as ${s.role} (epoch ${s.epoch}), peer ${opts.peer}, service version ${variant.version}, pid ${process.pid}`,
  );
  return replica;
}

function reportEvent(e: ReplicaEvent, out: ServeOutput): void {
  switch (e.type) {
    case 'role':
      return out('role', { role: e.role, epoch: e.epoch }, `role → ${e.role} (epoch ${e.epoch})`);
    case 'takeover':
      return out(
        'takeover',
        { epoch: e.epoch, appliedSeq: e.appliedSeq, silenceMs: e.silenceMs, ...(e.follower ? { follower: true } : {}) },
        e.follower
          ? `TAKEOVER: the solo primary that dropped us is gone; we followed it through the clients' forwards: serving at epoch ${e.epoch} from seq ${e.appliedSeq}`
          : `TAKEOVER: primary silent ${Math.round(e.silenceMs)} ms; serving at epoch ${e.epoch} from seq ${e.appliedSeq}`,
      );
    case 'blocked':
      return out(
        'blocked',
        {
          reason: e.reason,
          haveSeq: e.haveSeq,
          mayLoseFrom: e.mayLoseFrom,
          ...(e.mayLoseTo !== undefined ? { mayLoseTo: e.mayLoseTo } : {}),
        },
        `BLOCKED: ${e.reason}. Waiting for the peer. Writes from seq ${e.mayLoseFrom}${e.mayLoseTo !== undefined ? ` to ${e.mayLoseTo}` : ''} may be lost if you promote this replica: tandem-kv promote --server ADDR --accept-loss`,
      );
    case 'promoted':
      return out(
        'promoted',
        { epoch: e.epoch, appliedSeq: e.appliedSeq, lostFrom: e.lostFrom, ...(e.lostTo !== undefined ? { lostTo: e.lostTo } : {}) },
        `PROMOTED by an operator: serving at epoch ${e.epoch} from seq ${e.appliedSeq}; acknowledged writes from seq ${e.lostFrom}${e.lostTo !== undefined ? ` to ${e.lostTo}` : ''} may be lost`,
      );
    case 'step-down':
      return out(
        'step-down',
        { epoch: e.epoch, newerEpoch: e.newerEpoch },
        `stepping down: epoch ${e.newerEpoch} is newer than ours (${e.epoch})`,
      );
    case 'divergence':
      return out(
        'divergence',
        { seq: e.seq, expected: e.expectedDigest, actual: e.actualDigest },
        `DIVERGENCE at seq ${e.seq}: primary digest ${e.expectedDigest}, ours ${e.actualDigest}`,
      );
    case 'peer-faulty':
      return out('peer-faulty', { reason: e.reason }, `backup declared faulty (${e.reason}); serving alone`);
    case 'peer-joined':
      return out(
        'peer-joined',
        { seq: e.seq, mode: e.mode ?? 'copy' },
        e.mode === 'delta'
          ? `backup joined at seq ${e.seq} with the state it streamed and verified (only the entries after it follow)`
          : e.mode === 'resume'
            ? `the dropped backup resumed at seq ${e.seq} from its own state (the entries after it follow)`
            : `backup joined at seq ${e.seq} (whole-state copy)`,
      );
    case 'protocol-error':
      return out(
        'protocol-error',
        { remote: e.remote, error: e.error.message },
        `protocol error from ${e.remote}: ${e.error.message} (connection closed)`,
      );
    case 'lost-entries':
      return out('lost-entries', { epoch: e.epoch, seqs: e.seqs }, `LOST ENTRIES beyond a gap at takeover: seqs ${e.seqs.join(', ')}`);
    case 'auth-refused':
      return out(
        'auth-refused',
        { side: e.side, remote: e.remote, code: e.code, reason: e.reason },
        `${e.side === 'accepted' ? 'refused a connection from' : 'handshake with the peer failed:'} ${e.remote} (${e.code}: ${e.reason})`,
      );
    case 'forged-forward':
      return out(
        'forged-forward',
        { remote: e.remote, seqs: e.seqs, reason: e.reason },
        `FORGED FORWARD from ${e.remote} (seqs ${e.seqs.join(', ')}): ${e.reason}; not applied`,
      );
  }
}

/** The state-transfer events worth a line: sessions served, and a joiner's transfer milestones. */
function reportTransferEvent(e: StreamingStateSyncEvent, out: ServeOutput): void {
  if (e.side === 'server') {
    switch (e.type) {
      case 'session-open':
        return out(
          'transfer-serving',
          { joiner: e.nodeId, seq: e.seq, format: e.format, version: e.version },
          `streaming the state at seq ${e.seq} to ${e.nodeId} (${e.format}, version ${e.version}) while serving`,
        );
      case 'verified':
        return out(
          'transfer-served',
          { joiner: e.nodeId, seq: e.seq, digest: e.digest },
          `${e.nodeId} verified the streamed state at seq ${e.seq} (digest ${e.digest})`,
        );
      case 'restart':
        return out('transfer-restart', { joiner: e.nodeId, reason: e.reason }, `state transfer to ${e.nodeId} restarts: ${e.reason}`);
      case 'digest-mismatch':
        return out(
          'transfer-digest-mismatch',
          { joiner: e.nodeId, seq: e.seq, expected: e.expected, actual: e.actual },
          `DIGEST MISMATCH: ${e.nodeId} at seq ${e.seq} has ${e.actual}, ours ${e.expected}`,
        );
      case 'protocol-error':
        return out(
          'transfer-protocol-error',
          { remote: e.remote, error: e.error.message },
          `state transfer protocol error from ${e.remote}: ${e.error.message}`,
        );
      default:
        return;
    }
  }
  switch (e.type) {
    case 'meta':
      if (e.resumed)
        return out(
          'transfer-resumed',
          { transferId: e.transferId, startChunk: e.startChunk },
          `state transfer resumed at chunk ${e.startChunk}`,
        );
      return out(
        'transfer-start',
        { transferId: e.transferId, seq: e.seq, version: e.version, format: e.format },
        `streaming the primary's state at seq ${e.seq} (${e.format}, version ${e.version})`,
      );
    case 'verified':
      return out(
        'transfer-verified',
        { seq: e.seq, digest: e.digest },
        `state verified equal to the primary's at seq ${e.seq} (digest ${e.digest})`,
      );
    case 'restart':
      return out('transfer-restart', { reason: e.reason }, `state transfer restarts: ${e.reason}`);
    case 'connection-lost':
      return out(
        'transfer-connection-lost',
        { nextChunk: e.nextChunk, appliedSeq: e.appliedSeq, reason: e.reason },
        `state transfer connection lost (${e.reason}); resuming at chunk ${e.nextChunk}`,
      );
    case 'error':
      return out('transfer-error', { error: e.error.message }, `state transfer: ${e.error.name}: ${e.error.message}`);
    default:
      return;
  }
}

function attachIpc(replica: Replica<unknown>, variant: KvServiceVariant): void {
  if (typeof process.send !== 'function') return;
  process.on('message', (raw: unknown) => {
    const m = raw as ServeIpcRequest;
    if (typeof m !== 'object' || m === null || typeof m.id !== 'number') return;
    if (m.type === 'status') {
      process.send?.({ type: 'status', id: m.id, status: replica.status(), serviceVersion: variant.version });
    } else if (m.type === 'read' && Array.isArray(m.keys)) {
      const state = replica.state;
      process.send?.({
        type: 'read',
        id: m.id,
        status: replica.status(),
        serviceVersion: variant.version,
        values: m.keys.map((k) => variant.readValue(state, String(k)) ?? null),
      });
    }
  });
  // Do not let the IPC channel keep the process alive on its own, and exit if the parent goes away.
  process.channel?.unref();
  process.on('disconnect', () => process.exit(0));
}
