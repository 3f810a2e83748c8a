/**
 * Ready-made snapshot support for services whose state is (or contains) a SnapshotMap or a SlabMap:
 * spread `mapSnapshotSupport()` / `slabMapSupport()` into a service definition to stream it as
 * [key, value] records.
 */
import { SlabMap, type SlabMapOptions } from './slab-map.js';
import { SnapshotMap, type SnapshotMapOptions } from './snapshot-map.js';
import type { SnapshotCursor, StateBuilder } from '../transferable.js';

/** The service methods for a map state M (a SnapshotMap<V> unless said otherwise). */
export interface MapSnapshotSupport<V, M = SnapshotMap<V>> {
  /** The whole map as one serialisable value. */
  snapshot(state: M): unknown;
  /** A map from a `snapshot` result. */
  restore(snapshot: unknown): M;
  /** An O(1) snapshot cursor over the map as it is now, streamed as records. */
  snapshotChunks(state: M): SnapshotCursor;
  /** A builder that rebuilds a map from streamed records. */
  restoreChunks(): StateBuilder<M>;
  /** The map's order-independent content digest. */
  digest(state: M): string;
}

/** The records of a whole-state snapshot (an array of 2-item arrays), each checked by `check`. */
function* snapshotRecords(snapshot: unknown, check: (r: unknown[]) => boolean, recordShape: string): Generator<unknown[]> {
  if (!Array.isArray(snapshot)) throw new TypeError('map snapshot must be an array of [key, value] records');
  for (const r of snapshot as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2 || !check(r)) throw new TypeError(`map snapshot record must be ${recordShape}`);
    yield r;
  }
}

/** snapshot/restore (whole state, as an array of [key, value] records), snapshotChunks/restoreChunks and digest for a SnapshotMap state. */
export function mapSnapshotSupport<V>(options?: SnapshotMapOptions): MapSnapshotSupport<V> {
  return {
    snapshot: (state) => Array.from(state.entries()),
    restore: (snapshot) => {
      const m = new SnapshotMap<V>(options);
      for (const [k, v] of snapshotRecords(snapshot, (r) => typeof r[0] === 'string', '[string, value]')) m.set(k as string, v as V);
      return m;
    },
    snapshotChunks: (state) => state.snapshot(),
    restoreChunks: () => SnapshotMap.builder<V>(options),
    digest: (state) => state.digest(),
  };
}

/** The same for a SlabMap state (strings only; records are checked by the builder). */
export function slabMapSupport(options?: SlabMapOptions): MapSnapshotSupport<string, SlabMap> {
  return {
    snapshot: (state) => Array.from(state.entries()),
    restore: (snapshot) => {
      const b = SlabMap.builder(options);
      for (const r of snapshotRecords(snapshot, () => true, '[string, string]')) b.add(r);
      return b.finish();
    },
    snapshotChunks: (state) => state.snapshot(),
    restoreChunks: () => SlabMap.builder(options),
    digest: (state) => state.digest(),
  };
}
