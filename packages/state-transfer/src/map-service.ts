/**
 * Ready-made incremental snapshot support for services whose state is (or contains) a SnapshotMap:
 * spread `mapSnapshotSupport()` into a service definition to stream it as [key, value] records.
 */
import { SnapshotMap, type MapRecord, type SnapshotMapOptions } from './snapshot-map.js';
import type { SnapshotCursor, StateBuilder } from './transferable.js';

export interface MapSnapshotSupport<V> {
  snapshot(state: SnapshotMap<V>): unknown;
  restore(snapshot: unknown): SnapshotMap<V>;
  snapshotChunks(state: SnapshotMap<V>): SnapshotCursor;
  restoreChunks(): StateBuilder<SnapshotMap<V>>;
  digest(state: SnapshotMap<V>): string;
}

/** snapshot/restore (whole state, as an array of [key, value] records), snapshotChunks/restoreChunks and digest for a SnapshotMap state. */
export function mapSnapshotSupport<V>(options?: SnapshotMapOptions): MapSnapshotSupport<V> {
  return {
    snapshot: (state) => Array.from(state.entries()),
    restore: (snapshot) => {
      if (!Array.isArray(snapshot)) throw new TypeError('map snapshot must be an array of [key, value] records');
      const m = new SnapshotMap<V>(options);
      for (const r of snapshot as unknown[]) {
        if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string') throw new TypeError('map snapshot record must be [string, value]');
        m.set(r[0], r[1] as V);
      }
      return m;
    },
    snapshotChunks: (state) => state.snapshot(),
    restoreChunks: () => SnapshotMap.builder<V>(options),
    digest: (state) => state.digest(),
  };
}
