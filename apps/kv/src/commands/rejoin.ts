/**
 * `tandem-kv rejoin`: start a replica that joins the running primary as its backup. The state it
 * receives goes through `versionedStateSync`, so a state of an older service version is migrated.
 * Prints phase lines (joining → state installed → backup → verified) and then keeps serving as backup,
 * like `serve`. "Verified" means: it is backup, it has applied the primary's flushes for a few flush
 * intervals past the installed seq, and every entry's reply digest matched the primary's (no divergence).
 */
import type { Replica } from '@tandem/core';
import { serve, type ServeOptions, type ServeOutput } from './serve.js';

export interface RejoinOptions extends Omit<ServeOptions, 'role' | 'onCreated' | 'onStateInstalled'> {
  /** Give up (exit 1) when not verified within this many ms (default 60 000). */
  timeoutMs: number;
}

/** Resolves when verified (the replica keeps serving); rejects when not verified in time. */
export async function rejoin(opts: RejoinOptions): Promise<{ seq: number; digest: string }> {
  let installedSeq: number | undefined;
  let replica: Replica<unknown> | undefined;
  let out: ServeOutput | undefined;
  const started = Date.now();
  await serve({
    ...opts,
    role: 'backup',
    onStateInstalled: (i, o) => {
      installedSeq = i.seq;
      const migrated = i.fromVersion === i.toVersion ? `version ${i.toVersion}` : `migrated version ${i.fromVersion} → ${i.toVersion}`;
      o('rejoin-state', { phase: 'installed', seq: i.seq, fromVersion: i.fromVersion, toVersion: i.toVersion }, `rejoin: state received at seq ${i.seq} (${migrated})`);
    },
    onCreated: (r, o) => {
      replica = r;
      out = o;
      o('rejoin-phase', { phase: 'joining', peer: opts.peer }, `rejoin: joining the primary at ${opts.peer}…`);
    },
  });
  const r = replica!;
  const say = out!;
  const interval = Math.max(10, opts.replication.flushIntervalMs);
  let backupSince: number | undefined;
  let backupSeq = 0;
  for (;;) {
    const s = r.status();
    if (s.divergences > 0) throw new Error(`rejoin: divergence after joining (seq ${s.appliedSeq}); the states differ`);
    if (s.role === 'backup') {
      if (backupSince === undefined) {
        backupSince = Date.now();
        backupSeq = s.appliedSeq;
        say('rejoin-phase', { phase: 'backup', seq: s.appliedSeq, epoch: s.epoch }, `rejoin: backup at seq ${s.appliedSeq} (epoch ${s.epoch}); checking the primary's flushes…`);
      } else if (Date.now() - backupSince >= 3 * interval) {
        say(
          'rejoin-verified',
          { phase: 'verified', seq: s.appliedSeq, installedSeq, digest: s.stateDigest, epoch: s.epoch },
          `rejoin: VERIFIED — backup at seq ${s.appliedSeq} (joined at ${installedSeq ?? backupSeq}), every reply digest matched the primary's; state digest ${s.stateDigest}. Serving as backup.`,
        );
        return { seq: s.appliedSeq, digest: s.stateDigest };
      }
    } else {
      backupSince = undefined;
    }
    if (Date.now() - started > opts.timeoutMs) throw new Error(`rejoin: not a verified backup within ${opts.timeoutMs} ms (role ${s.role})`);
    await new Promise((res) => setTimeout(res, interval));
  }
}
