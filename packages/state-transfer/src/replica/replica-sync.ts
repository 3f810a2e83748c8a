/**
 * Versioned state for @tandem/core replicas: a `StateSync` whose `install` migrates an older-version
 * whole-state copy to this replica's version with the service's migrations (and refuses a newer one).
 * Pass it as `createReplica({ …, stateSync: versionedStateSync(service) })` on every replica of a
 * service that declares a version; it is what makes a rolling upgrade possible (docs/STATE-TRANSFER.md).
 */
import type { StateSnapshot, StateSync } from '@tandem/core';
import { migrateSnapshot, migrationPath } from '../migrations.js';
import { serviceVersion, type TransferableService } from '../transferable.js';

/** A core StateSync that transfers whole snapshots and runs the service's migrations on a version mismatch. */
export function versionedStateSync(service: TransferableService<unknown>): StateSync {
  const target = serviceVersion(service);
  return {
    capture: (snapshot: StateSnapshot) => snapshot,
    install(snapshot: StateSnapshot): StateSnapshot {
      if (snapshot.version === target) return snapshot;
      // Throws VersionMismatchError (newer state) or MigrationError (no path): the replica logs it and
      // does not become backup.
      const steps = migrationPath(service, snapshot.version, 'blob');
      return { ...snapshot, version: target, snapshot: migrateSnapshot(snapshot.snapshot, steps) };
    },
  };
}
