/**
 * `tandem-kv demo`: a primary and a backup as child processes on loopback, concurrent clients with
 * checkable writes, SIGKILL of the primary mid-load, the backup takes over, the old primary restarts
 * with `tandem-kv rejoin` — it streams the new primary's state while that one serves (snapshot at S,
 * catch-up from the backlog, digests verified) and joins as backup — then verification: no acknowledged
 * write lost, none applied twice, both replicas' state digests equal.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keygen } from '../security-options.js';
import type { ReplicationConfig } from '@tandem/core';
import { ReplicaPair } from '../harness/cluster.js';
import type { ReplicaProcess } from '../harness/replica-process.js';
import { percentile, Workload } from '../harness/workload.js';
import { createTransportRegistry } from '../transports.js';

export interface DemoOptions {
  json: boolean;
  clients: number;
  durationS: number;
  transport: string;
  history?: string | undefined;
  /** Append the replicas' protocol log (JSON lines, level info) to this file. */
  replicaLog?: string | undefined;
  replication: Partial<ReplicationConfig>;
}

export interface DemoResult {
  ok: boolean;
  transport: string;
  clients: number;
  durationS: number;
  operations: number;
  acknowledged: number;
  unknownOutcome: number;
  lost: number;
  duplicated: number;
  unexpected: number;
  staleReads: number;
  failoverMs: { p50: number; max: number; clients: number };
  rejoinMs: number;
  /** How the restarted replica got the state: streamed (snapshot seq, verified seq, bytes, entries caught
   * up) and how the primary admitted it ('delta': only entries after the verified seq; 'copy': whole state). */
  rejoin: RejoinSummary;
  epoch: number;
  appliedSeq: number;
  digests: { a: string; b: string; equal: boolean };
  details: string[];
  history?: string;
}

export interface RejoinSummary {
  via: 'stream' | 'copy' | 'unknown';
  snapshotSeq?: number;
  verifiedSeq?: number;
  bytes?: number;
  entries?: number;
  joinMode?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the rejoined replica (and the primary that admitted it) reported about the transfer. */
function rejoinSummary(joiner: ReplicaProcess, primary: ReplicaProcess): RejoinSummary {
  const find = (p: ReplicaProcess, event: string): Record<string, unknown> | undefined =>
    [...p.events].reverse().find((e) => e.event === event);
  const state = find(joiner, 'rejoin-state');
  const start = find(joiner, 'transfer-start');
  const verified = find(joiner, 'transfer-verified');
  const progress = [...joiner.events].reverse().find((e) => e.event === 'rejoin-progress' && e.phase === 'verified');
  const joined = find(primary, 'peer-joined');
  const s: RejoinSummary = { via: state?.via === 'stream' || state?.via === 'copy' ? state.via : 'unknown' };
  if (typeof start?.seq === 'number') s.snapshotSeq = start.seq;
  if (typeof verified?.seq === 'number') s.verifiedSeq = verified.seq;
  if (typeof progress?.bytes === 'number') s.bytes = progress.bytes;
  if (typeof progress?.entries === 'number') s.entries = progress.entries;
  if (typeof joined?.mode === 'string') s.joinMode = joined.mode;
  return s;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const say = (s: string): void => {
    clearProgress();
    process.stderr.write(s + '\n');
  };
  let phase = 'starting';
  say(`tandem-kv demo: primary + backup as child processes on ${opts.transport}, ${opts.clients} clients, ~${opts.durationS} s`);
  const replicaLog = opts.replicaLog;
  // The replicas authenticate each other with a cluster key made for this run (docs/SECURITY.md).
  const keyDir = mkdtempSync(join(tmpdir(), 'tandem-demo-'));
  const keyFile = join(keyDir, 'cluster.key');
  await keygen(keyFile, {}, false);
  say(`  cluster key for this run: ${keyFile} (mode 0600; peers prove it to each other, forwards carry the primary's MAC)`);
  const pair = await ReplicaPair.start({
    transport: opts.transport,
    replication: opts.replication,
    extraArgs: ['--cluster-key-file', keyFile],
    ...(replicaLog
      ? { logLevel: 'info' as const, onStderr: (node: string, line: string) => appendFileSync(replicaLog, `${node} ${line}\n`) }
      : {}),
  });
  const workload = new Workload({
    servers: pair.addresses,
    clients: opts.clients,
    network: createTransportRegistry(),
    config: opts.replication,
  });
  say(`  a (pid ${pair.a.pid}) primary at ${pair.addresses[0]}; b (pid ${pair.b.pid}) backup at ${pair.addresses[1]}`);
  let lastCount = 0;
  let lastAt = workload.now();
  let rate = 0;
  const progress = setInterval(() => {
    const now = workload.now();
    rate = ((workload.completed - lastCount) * 1000) / Math.max(1, now - lastAt);
    lastCount = workload.completed;
    lastAt = now;
    writeProgress(
      `[${(now / 1000).toFixed(1)} s] ${phase.padEnd(9)} ${Math.round(rate).toString().padStart(6)} ops/s  ${workload.completed} replies  ${workload.failed} failed calls`,
    );
  }, 250);
  try {
    const d = opts.durationS * 1000;
    phase = 'load';
    workload.start();
    await sleep(d * 0.35);

    phase = 'failover';
    const killedAt = workload.now();
    await pair.a.kill();
    say(`  ${(killedAt / 1000).toFixed(1)} s: SIGKILL primary a (pid ${pair.a.pid})`);
    await pair.b.waitForRole(['solo-primary', 'primary'], 15_000);
    const recoverDeadline = Date.now() + 15_000;
    while (workload.recoveredClients(killedAt, 1) < opts.clients && Date.now() < recoverDeadline) await sleep(10);
    const failovers = workload.failoverTimes(killedAt, 1);
    say(
      `  b took over; first successful reply per client after ${Math.round(percentile(failovers, 50))} ms (p50), ${Math.round(Math.max(...failovers))} ms (max)`,
    );

    phase = 'rejoin';
    await sleep(d * 0.15);
    const restartAt = workload.now();
    const primaryEventsBefore = pair.b.events.length;
    pair.spawn('a', 'backup', { command: 'rejoin' });
    say(`  restarted a (pid ${pair.a.pid}) with "tandem-kv rejoin": it finds b serving and streams b's state while b serves`);
    await pair.a.waitForRole(['backup'], 45_000); // process start + stream + catch-up on a loaded host
    const rejoinMs = workload.now() - restartAt;
    // The two processes report on separate pipes: a's "backup" can arrive before b's "peer-joined" (how it
    // admitted a). Wait briefly for the latter so the summary can say how a joined.
    await pair.b
      .waitForEvent((e) => e.event === 'peer-joined' && pair.b.events.indexOf(e) >= primaryEventsBefore, 2000, 'peer-joined')
      .catch(() => undefined);
    const rejoined = rejoinSummary(pair.a, pair.b);
    say(
      rejoined.via === 'stream'
        ? `  a streamed b's snapshot at seq ${rejoined.snapshotSeq ?? '?'} (${rejoined.bytes ?? '?'} bytes), caught up ${rejoined.entries ?? '?'} entries from b's backlog, verified equal digests at seq ${rejoined.verifiedSeq ?? '?'}, and joined as backup (${rejoined.joinMode ?? '?'}) after ${Math.round(rejoinMs)} ms`
        : `  a rejoined as backup after ${Math.round(rejoinMs)} ms (${rejoined.via === 'copy' ? 'whole-state copy: the stream was not available' : 'transfer details not reported'})`,
    );

    phase = 'load';
    await sleep(d * 0.35);
    phase = 'verify';
    await workload.stop();
    const converged = await pair.convergedDigests(5000);
    const serving = (await pair.serving()) ?? pair.b;
    const { values, status } = await serving.read(workload.keysToRead());
    const v = workload.verify(values);
    clearInterval(progress);
    clearProgress();
    if (opts.history) writeFileSync(opts.history, JSON.stringify(workload.history));
    const result: DemoResult = {
      ok: v.lost === 0 && v.duplicated === 0 && v.unexpected === 0 && converged.equal,
      transport: opts.transport,
      clients: opts.clients,
      durationS: opts.durationS,
      operations: workload.completed + workload.failed,
      acknowledged: v.acknowledged,
      unknownOutcome: v.unknown,
      lost: v.lost,
      duplicated: v.duplicated,
      unexpected: v.unexpected,
      staleReads: v.staleReads,
      failoverMs: { p50: round(percentile(failovers, 50)), max: round(Math.max(...failovers)), clients: failovers.length },
      rejoinMs: round(rejoinMs),
      rejoin: rejoined,
      epoch: status.epoch,
      appliedSeq: status.appliedSeq,
      digests: { a: converged.a?.stateDigest ?? '?', b: converged.b?.stateDigest ?? '?', equal: converged.equal },
      details: v.details,
      ...(opts.history ? { history: opts.history } : {}),
    };
    return result;
  } finally {
    clearInterval(progress);
    clearProgress();
    await pair.stop();
    rmSync(keyDir, { recursive: true, force: true });
  }
}

export function describeDemo(r: DemoResult): string {
  const lines = [
    '',
    `tandem-kv demo ${r.ok ? 'PASSED' : 'FAILED'}`,
    `  operations          ${r.operations} (${r.acknowledged} acknowledged writes, ${r.unknownOutcome} with unknown outcome)`,
    `  lost                ${r.lost}   (acknowledged writes missing from the serving replica)`,
    `  duplicated          ${r.duplicated}   (writes applied more than once)`,
    `  failover            p50 ${r.failoverMs.p50} ms, max ${r.failoverMs.max} ms (SIGKILL → first reply from the new primary, ${r.failoverMs.clients} clients)`,
    `  rejoin              ${r.rejoinMs} ms (restart → backup; ${r.rejoin.via === 'stream' ? `state streamed: snapshot at seq ${r.rejoin.snapshotSeq}, verified at ${r.rejoin.verifiedSeq}, joined by ${r.rejoin.joinMode ?? '?'}` : `state via ${r.rejoin.via}`})`,
    `  final epoch / seq   ${r.epoch} / ${r.appliedSeq}`,
    `  state digests       a ${r.digests.a}  b ${r.digests.b}  ${r.digests.equal ? 'equal' : 'DIFFERENT'}`,
  ];
  if (r.staleReads > 0)
    lines.push(`  stale reads         ${r.staleReads} (a client read its own log without a write it had seen acknowledged)`);
  if (r.history) lines.push(`  history             ${r.history}`);
  for (const d of r.details) lines.push(`  ! ${d}`);
  return lines.join('\n');
}

function round(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 10) / 10 : -1;
}

let progressShown = false;
let lastPlainAt = 0;
function writeProgress(line: string): void {
  if (process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[2K${line}`);
    progressShown = true;
  } else if (Date.now() - lastPlainAt >= 1000) {
    lastPlainAt = Date.now();
    process.stderr.write(line + '\n');
  }
}
function clearProgress(): void {
  if (progressShown && process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
  progressShown = false;
}
