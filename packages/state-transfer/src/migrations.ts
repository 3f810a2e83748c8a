/**
 * Version migrations: the chain of steps that turns a state of version `from` into version `to`.
 */
import { MigrationError, VersionMismatchError } from './errors.js';
import type { StateMigration, TransferableService } from './transferable.js';
import { serviceVersion, supportsChunks } from './transferable.js';

/** How a snapshot is carried: streamed records, or one encoded blob. */
export type TransferFormat = 'records' | 'blob';

/** The steps from → to (exclusive of from), or a MigrationError naming the missing step. */
export function migrationPath(service: TransferableService<unknown>, from: number, format: TransferFormat): StateMigration[] {
  const to = serviceVersion(service);
  if (from > to)
    throw new VersionMismatchError(`state version ${from} is newer than this replica's version ${to}; upgrade this replica first`);
  const steps: StateMigration[] = [];
  for (let v = from; v < to; v++) {
    const step = service.migrations?.find((m) => m.from === v);
    if (!step) throw new MigrationError(`service "${service.name}" has no migration from version ${v} to ${v + 1}`);
    if (format === 'records' && !step.record)
      throw new MigrationError(`migration ${v}→${v + 1} of "${service.name}" has no record() step for a chunked transfer`);
    if (format === 'blob' && !step.snapshot)
      throw new MigrationError(`migration ${v}→${v + 1} of "${service.name}" has no snapshot() step`);
    steps.push(step);
  }
  return steps;
}

/** Which formats a replica of this service can receive from a server at `serverVersion`. */
export function acceptableFormats(service: TransferableService<unknown>, serverVersion: number): TransferFormat[] {
  const out: TransferFormat[] = [];
  for (const f of ['records', 'blob'] as const) {
    try {
      migrationPath(service, serverVersion, f);
      out.push(f);
    } catch {
      // not this format
    }
  }
  return out;
}

/** The formats this service can receive, each with the oldest version it can migrate from. */
export function joinerFormats(svc: TransferableService<unknown>): { format: TransferFormat; minVersion: number }[] {
  const v = serviceVersion(svc);
  const out: { format: TransferFormat; minVersion: number }[] = [];
  const oldest = (has: (m: StateMigration) => boolean): number => {
    let min = v;
    while (min > 0) {
      const step = svc.migrations?.find((m) => m.from === min - 1);
      if (!step || !has(step)) break;
      min--;
    }
    return min;
  };
  if (supportsChunks(svc)) out.push({ format: 'records', minVersion: oldest((m) => typeof m.record === 'function') });
  out.push({ format: 'blob', minVersion: oldest((m) => typeof m.snapshot === 'function') });
  return out;
}

/** Run record-level migration steps over a flat list of records of `width` items each. */
export function migrateRecords(records: unknown[], steps: readonly StateMigration[], width = 1): unknown[] {
  if (steps.length === 0) return records;
  const out: unknown[] = [];
  for (let i = 0; i < records.length; i += width) {
    let r: unknown = width === 1 ? records[i] : records.slice(i, i + width);
    let keep = true;
    for (const s of steps) {
      try {
        r = s.record!(r);
      } catch (err) {
        throw new MigrationError(`record migration from version ${s.from} failed: ${(err as Error).message}`, { cause: err });
      }
      if (r === undefined) {
        keep = false;
        break;
      }
    }
    if (!keep) continue;
    if (width === 1) out.push(r);
    else if (Array.isArray(r) && r.length === width) out.push(...(r as unknown[]));
    else throw new MigrationError(`record migration must return an array of ${width} items`);
  }
  return out;
}

/** Run whole-snapshot migration steps in order; a failing step throws MigrationError. */
export function migrateSnapshot(snapshot: unknown, steps: readonly StateMigration[]): unknown {
  let s = snapshot;
  for (const step of steps) {
    try {
      s = step.snapshot!(s);
    } catch (err) {
      throw new MigrationError(`snapshot migration from version ${step.from} failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return s;
}
