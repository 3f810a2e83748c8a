/**
 * `tandem-kv rejoin`: start a replica that joins the running primary as its backup THROUGH the streaming
 * state transfer (@tandem/state-transfer's `streamingStateSync`): the primary streams a snapshot fixed
 * at a seq S while it goes on serving, then the log after S from its catch-up backlog; this replica
 * verifies its state digest equal to the primary's at an agreed seq N, and the primary adds it as backup
 * from N (only the entries after N follow). An older service version's state is migrated on the way.
 *
 * Progress: a progress bar on stderr when it is a terminal, a line per transfer phase otherwise; phase
 * lines (joining → streaming → state installed → transfer verified → backup → VERIFIED) on stdout, JSON
 * lines with --json. "VERIFIED" = the transfer's digests were equal at N, the replica is backup, and for
 * a few flush intervals every entry's reply digest matched the primary's (no divergence). Then it keeps
 * serving as backup, like `serve`. Exit 1 when not verified in time.
 */
import type { Replica } from '@tandem/core';
import { lowerJoinerPriority, progressBar, type TransferPhase } from '@tandem/state-transfer';
import { serve, type ServeOptions, type ServeOutput } from './serve.js';

export interface RejoinOptions
  extends Omit<ServeOptions, 'role' | 'onCreated' | 'onStateInstalled' | 'stateTransfer' | 'onTransferProgress' | 'onTransferEvent'> {
  /** Give up (exit 1) when not verified within this many ms (default 60 000). */
  timeoutMs: number;
  /** Where the progress bar goes (default process.stderr). */
  progressOutput?: { write(text: string): unknown; isTTY?: boolean };
  /**
   * Nice levels added to this process until the streamed state is verified (default 0 = none; 10 =
   * JOINER_NICE_DELTA is the value measured in docs/STATE-TRANSFER.md): receiving a state is background
   * work, and the serving replica's request latency should win the CPU when both share a machine. The
   * previous priority is restored once verified (when the OS allows). Opt-in: on a loaded machine a
   * niced rejoin was dropped as a slow backup right after verifying (2 of 3 runs of
   * test/streaming-rejoin.test.ts beside a benchmark, 0 of 1 without nice) — not yet understood.
   */
  joinerNice?: number;
}

export interface RejoinResult {
  seq: number;
  digest: string;
  /** 'stream' when the state came through the streaming transfer (the normal case), 'copy' after a fallback. */
  via: 'stream' | 'copy';
  /** The seq at which the streamed state was verified equal to the primary's. */
  transferVerifiedSeq?: number;
}

/** Resolves when verified (the replica keeps serving); rejects when not verified in time. */
export async function rejoin(opts: RejoinOptions): Promise<RejoinResult> {
  let installedSeq: number | undefined;
  let via: 'stream' | 'copy' | undefined;
  let transferVerified: { seq: number; digest: string } | undefined;
  let replica: Replica<unknown> | undefined;
  let out: ServeOutput | undefined;
  const bar = progressBar(opts.progressOutput ?? process.stderr);
  let lastPhase: TransferPhase | undefined;
  const started = Date.now();
  const restorePriority = lowerJoinerPriority(opts.joinerNice ?? 0);
  const serving = serve({
    ...opts,
    role: 'backup',
    stateTransfer: 'stream',
    onTransferProgress: (p, o) => {
      bar.update(p);
      if (p.phase !== lastPhase) {
        lastPhase = p.phase;
        if (opts.json) o('rejoin-progress', { ...p }, '');
      }
      if (p.phase === 'verified') bar.done();
    },
    onStateInstalled: (i, o) => {
      installedSeq = i.seq;
      via = i.streamed ? 'stream' : 'copy';
      const migrated = i.fromVersion === i.toVersion ? `version ${i.toVersion}` : `migrated version ${i.fromVersion} → ${i.toVersion}`;
      bar.done();
      o(
        'rejoin-state',
        { phase: 'installed', seq: i.seq, fromVersion: i.fromVersion, toVersion: i.toVersion, via },
        i.streamed
          ? `rejoin: snapshot at seq ${i.seq} received and installed (${migrated}); catching up from the primary's backlog…`
          : `rejoin: whole-state copy at seq ${i.seq} installed (${migrated}) — the streaming transfer was not available`,
      );
    },
    onCreated: (r, o) => {
      replica = r;
      out = o;
      r.on((e) => {
        if (e.type === 'role' && e.role === 'backup') bar.done();
      });
      o(
        'rejoin-phase',
        { phase: 'joining', peer: opts.peer },
        `rejoin: joining the primary at ${opts.peer}; streaming its state while it serves…`,
      );
    },
    onTransferEvent: (e) => {
      if (e.side === 'joiner' && e.type === 'verified') {
        transferVerified = { seq: e.seq, digest: e.digest };
        restorePriority();
      }
    },
  });
  await serving.catch((err: unknown) => {
    restorePriority();
    throw err;
  });
  const r = replica!;
  const say = out!;
  const interval = Math.max(10, opts.replication.flushIntervalMs);
  // Watch events, not status(): status() computes the state digest (the whole state and dedup window),
  // and polling it under load would starve the backup's acks to the primary.
  let divergence: string | undefined;
  let roleNow = 'backup' as string;
  let roleChanged = (): void => undefined;
  const off = r.on((e) => {
    if (e.type === 'divergence') divergence = `divergence at seq ${e.seq} after joining; the states differ`;
    if (e.type === 'role') {
      roleNow = e.role;
      roleChanged();
    }
  });
  try {
    for (;;) {
      if (Date.now() - started > opts.timeoutMs)
        throw new Error(`rejoin: not a verified backup within ${opts.timeoutMs} ms (role ${roleNow})`);
      if (roleNow !== 'backup') {
        await new Promise<void>((res) => {
          roleChanged = res;
          setTimeout(res, interval * 5);
        });
        continue;
      }
      const from = transferVerified?.seq ?? installedSeq;
      say(
        'rejoin-phase',
        { phase: 'backup', seq: from, via: via ?? 'stream' },
        `rejoin: backup from seq ${from ?? '?'}; checking the primary's flushes…`,
      );
      await new Promise((res) => setTimeout(res, 3 * interval));
      if (divergence !== undefined) throw new Error(`rejoin: ${divergence}`);
      if (roleNow !== 'backup') continue; // dropped meanwhile: it joins again
      const s = r.status();
      if (s.divergences > 0) throw new Error(`rejoin: divergence after joining (seq ${s.appliedSeq}); the states differ`);
      const result: RejoinResult = { seq: s.appliedSeq, digest: s.stateDigest, via: via ?? 'stream' };
      if (transferVerified) result.transferVerifiedSeq = transferVerified.seq;
      say(
        'rejoin-verified',
        {
          phase: 'verified',
          seq: s.appliedSeq,
          installedSeq,
          digest: s.stateDigest,
          epoch: s.epoch,
          via: result.via,
          transferVerifiedSeq: result.transferVerifiedSeq,
        },
        `rejoin: VERIFIED — backup at seq ${s.appliedSeq} (state ${result.via === 'stream' ? `streamed at ${installedSeq}, digests equal at ${transferVerified?.seq}` : `copied at ${installedSeq}`}), every reply digest matched the primary's since; state digest ${s.stateDigest}. Serving as backup.`,
      );
      return result;
    }
  } finally {
    off();
    restorePriority();
  }
}
