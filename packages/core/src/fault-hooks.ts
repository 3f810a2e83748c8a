/**
 * TEST ONLY — deliberately broken behaviours a simulator switches on to prove it detects them. Production
 * code asks a hook object at the few decision points a broken variant changes; every replica starts with
 * `NO_FAULT_HOOKS` (the protocol as designed). A variant is installed from outside, through the internal
 * entry point only (`installFaultHooks` from `@tandem/core/internal`, used by @tandem/testkit's
 * simulator) — it is not a replica option.
 */
import type { ServiceRunner } from './service.js';
import type { Divergence } from './backup-log.js';
import type { Entry } from './messages.js';

/**
 * 'no-forward-wait': the backup takes over at heartbeat timeout without the forward window;
 * 'unordered-apply': the backup applies entries as they arrive, skipping gaps;
 * 'skip-dedup': the primary applies a retransmitted request again;
 * 'no-follower-takeover': a dropped backup neither follows nor reports blocked — it waits as `joining`
 * for good when the primary that dropped it dies (the stall of 78d7e4e);
 * 'fast-takeover-unconfirmed': the backup takes a reset of its primary's connection for a process crash
 * and takes over at once, without the refused dial (a reset from the network, the primary alive, makes a
 * second primary);
 * 'fast-takeover-no-grace': after the refused dial the backup takes over at once, without waiting for the
 * clients' forwards of the replies the dead primary sent last.
 */
export type BrokenVariant =
  | 'no-forward-wait'
  | 'unordered-apply'
  | 'skip-dedup'
  | 'no-follower-takeover'
  | 'fast-takeover-unconfirmed'
  | 'fast-takeover-no-grace';

export const BROKEN_VARIANTS: readonly BrokenVariant[] = [
  'no-forward-wait',
  'unordered-apply',
  'skip-dedup',
  'no-follower-takeover',
  'fast-takeover-unconfirmed',
  'fast-takeover-no-grace',
];

export interface FaultHooks {
  /** The broken variant, or undefined for the protocol as designed. */
  readonly variant: BrokenVariant | undefined;
  /** The backup applies strictly in seq order (its invariants are asserted only then). */
  readonly appliesInOrder: boolean;
  /** Primary: a retransmission is answered from its dedup record (not applied again). */
  answersFromDedup(): boolean;
  /** Backup: the watchdog waits the forward window before the takeover probe. */
  waitsForForwards(): boolean;
  /** A dropped backup follows its solo primary. */
  follows(): boolean;
  /** A replica that cannot prove nothing acknowledged is lost reports `blocked`. */
  reportsBlocked(): boolean;
  /** Backup, process-crash fast path: a reset is confirmed by a dial that finds nothing listening. */
  confirmsProcessCrash(): boolean;
  /** Backup, process-crash fast path: the grace after the refused dial (given the designed one). */
  processCrashGraceMs(designed: number): number;
  /**
   * Backup: take entries some other way than through the BackupLog; true when it did (the designed
   * protocol never does).
   */
  acceptEntries(
    entries: readonly Entry[],
    runner: ServiceRunner<unknown, unknown, unknown>,
    onDivergence: (d: Divergence) => void,
  ): boolean;
}

/** The protocol as designed. */
export const NO_FAULT_HOOKS: FaultHooks = Object.freeze({
  variant: undefined,
  appliesInOrder: true,
  answersFromDedup: () => true,
  waitsForForwards: () => true,
  follows: () => true,
  reportsBlocked: () => true,
  confirmsProcessCrash: () => true,
  processCrashGraceMs: (designed: number) => designed,
  acceptEntries: () => false,
});

/** The hooks of one broken variant. */
export function faultHooksFor(variant: BrokenVariant): FaultHooks {
  switch (variant) {
    case 'skip-dedup':
      return { ...NO_FAULT_HOOKS, variant, answersFromDedup: () => false };
    case 'no-forward-wait':
      return { ...NO_FAULT_HOOKS, variant, waitsForForwards: () => false };
    case 'fast-takeover-unconfirmed':
      return { ...NO_FAULT_HOOKS, variant, confirmsProcessCrash: () => false };
    case 'fast-takeover-no-grace':
      return { ...NO_FAULT_HOOKS, variant, processCrashGraceMs: () => 0 };
    case 'no-follower-takeover':
      return { ...NO_FAULT_HOOKS, variant, follows: () => false, reportsBlocked: () => false };
    case 'unordered-apply':
      return {
        ...NO_FAULT_HOOKS,
        variant,
        appliesInOrder: false,
        acceptEntries(entries, runner, onDivergence) {
          for (const e of entries) {
            if (e.seq <= runner.appliedSeq) continue;
            const outcome = runner.apply(e);
            if (outcome.digest !== e.digest) onDivergence({ seq: e.seq, expectedDigest: e.digest, actualDigest: outcome.digest, entry: e });
          }
          return true;
        },
      };
    default:
      throw new RangeError(`unknown broken variant "${String(variant)}" (known: ${BROKEN_VARIANTS.join(', ')})`);
  }
}

/** How to install hooks into each replica made by createReplica (registered by the replica itself). */
const targets = new WeakMap<object, (hooks: FaultHooks) => void>();

/** Called by createReplica: `install` swaps the replica's hooks. */
export function registerFaultTarget(replica: object, install: (hooks: FaultHooks) => void): void {
  targets.set(replica, install);
}

/**
 * TEST ONLY (exported from `@tandem/core/internal`): make `replica` — made by createReplica, before or
 * after start — behave as the deliberately broken `variant`, so a simulator can prove it detects it.
 * Never use in production.
 */
export function installFaultHooks(replica: object, variant: BrokenVariant): void {
  const install = targets.get(replica);
  if (install === undefined) throw new TypeError('installFaultHooks: not a replica made by createReplica');
  install(faultHooksFor(variant));
}
