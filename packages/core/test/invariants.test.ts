/**
 * The core's own contract checks: typed errors by one convention, invariants that throw InvariantError
 * at the cause (FlushTracker, BackupLog, ServiceRunner), and fault injection installed from outside —
 * not a replica option.
 */
import { describe, expect, it } from 'vitest';
import * as core from '../src/index.js';
import * as internal from '../src/internal.js';
import { BackupLog } from '../src/backup-log.js';
import { resolveConfig } from '../src/config.js';
import { CORE_ERROR_NAMES, type InvariantError, isCoreError, StoppedError } from '../src/errors.js';
import { FlushTracker } from '../src/flush-tracker.js';
import type { Entry } from '../src/messages.js';
import { ServiceRunner } from '../src/service.js';
import { FAST, kv, startPair } from './helpers/setup.js';

const entry = (seq: number, epoch = 1): Entry => ({
  seq,
  epoch,
  clientId: 'c',
  requestId: seq,
  body: { op: 'incr', key: 'n' },
  time: 0,
  seed: 0,
  digest: '',
});

/** The InvariantError `fn` throws (fails the test when it throws anything else, or nothing). */
function invariantOf(fn: () => unknown): InvariantError {
  try {
    fn();
  } catch (err) {
    expect(isCoreError(err, 'InvariantError')).toBe(true);
    return err as InvariantError;
  }
  throw new Error('no InvariantError thrown');
}

describe('core errors: one convention', () => {
  it("every error class named in CORE_ERROR_NAMES is exported (public or internal entry) with a static name equal to its instances' name", () => {
    for (const name of CORE_ERROR_NAMES) {
      const cls = ((core as Record<string, unknown>)[name] ?? (internal as Record<string, unknown>)[name]) as
        | { name: string; prototype: Error }
        | undefined;
      expect(cls, name).toBeTypeOf('function');
      expect(cls!.name).toBe(name);
      expect(Object.getPrototypeOf(cls!.prototype)).toBe(Error.prototype); // flat: extends Error directly
    }
  });

  it('isCoreError recognises core errors by name (also from another copy of the package), and nothing else', () => {
    expect(isCoreError(new StoppedError())).toBe(true);
    expect(isCoreError(new StoppedError(), 'StoppedError')).toBe(true);
    expect(isCoreError(new StoppedError(), 'ConfigError')).toBe(false);
    const copy = Object.assign(new Error('from another copy'), { name: 'StoppedError' });
    expect(isCoreError(copy, 'StoppedError')).toBe(true);
    expect(isCoreError(new TypeError('x'))).toBe(false);
    expect(isCoreError(Object.assign(new Error('x'), { name: 'FencingError' }))).toBe(false);
    expect(isCoreError(undefined)).toBe(false);
    expect(isCoreError('StoppedError')).toBe(false);
  });
});

describe('invariants throw InvariantError at the cause', () => {
  it('FlushTracker: the unacknowledged log stays consecutive', () => {
    const t = new FlushTracker(resolveConfig(FAST), 100);
    t.reset(10, 0);
    t.append(entry(11));
    const e = invariantOf(() => t.append(entry(13)));
    expect(e.code).toBe('log-consecutive');
    expect(e.message).toMatch(/appending seq 13 after 11/);
  });

  it('ServiceRunner: appliedSeq never goes backwards', () => {
    const r = new ServiceRunner(kv, 100);
    r.apply(entry(1));
    r.apply(entry(2));
    expect(invariantOf(() => r.apply(entry(2))).code).toBe('applied-seq-forward');
    expect(r.appliedSeq).toBe(2);
  });

  it("BackupLog: a backup's pending entries are all after its applied seq", () => {
    const log = new BackupLog(100);
    const r = new ServiceRunner(kv, 100);
    expect(log.offer(entry(2), r.appliedSeq, 1, true)).toBe('stored');
    log.assertAhead(r.appliedSeq);
    // The state moved past a pending entry without applying it through the log (e.g. replaced by a copy).
    r.installState(new Map(), 5, []);
    expect(invariantOf(() => log.assertAhead(r.appliedSeq)).code).toBe('pending-ahead');
    log.retainAfter(5, 1);
    log.assertAhead(r.appliedSeq);
  });
});

describe('fault injection is a hook installed from outside', () => {
  it('is not in the public entry point, and installs only into a replica made by createReplica', () => {
    expect('installFaultHooks' in core).toBe(false);
    expect(internal.installFaultHooks).toBeTypeOf('function');
    expect(() => internal.installFaultHooks({}, 'skip-dedup')).toThrow(TypeError);
    expect(() => internal.faultHooksFor('nope' as never)).toThrow(RangeError);
    expect(internal.NO_FAULT_HOOKS.answersFromDedup()).toBe(true);
  });

  it('a hook installed into a running replica takes effect from then on (before it: the designed protocol)', async () => {
    const pair = await startPair();
    try {
      const c = pair.client('C');
      let drop = 1;
      pair.cluster.dropRule = ({ from, msg }) => from === 'A' && msg.t === 'rep' && drop-- > 0;
      expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('1'); // retransmission answered from the record
      internal.installFaultHooks(pair.a, 'skip-dedup');
      drop = 1;
      expect((await c.call({ op: 'incr', key: 'n' })).value).toBe('3'); // broken: the retransmission applied again
    } finally {
      await pair.stop();
    }
  });
});
