/** The benchmark's key-value service (a SlabMap or SnapshotMap state, streamed as records) and its wire requests. */
import {
  mapSnapshotSupport,
  SlabMap,
  slabMapSupport,
  SnapshotMap,
  type HostedService,
  type MapSnapshotSupport,
} from '@tandem/state-transfer';

export type BenchRequest = { op: 'set'; key: string; value: string } | { op: 'get'; key: string };

/** The state a benchmark replica holds: 'slab' (SlabMap, entries outside the heap; default) or 'map' (SnapshotMap). */
export type BenchStateKind = 'slab' | 'map';

export function benchStateKind(): BenchStateKind {
  return process.env.BENCH_STATE === 'map' ? 'map' : 'slab';
}

type BenchState = SnapshotMap<string> | SlabMap;

export function benchKv(kind: BenchStateKind = benchStateKind()): HostedService<BenchState, BenchRequest, string | null> {
  // The same service over either map: both have set/get of strings and the same snapshot methods.
  const support = (kind === 'slab' ? slabMapSupport() : mapSnapshotSupport<string>()) as MapSnapshotSupport<string, BenchState>;
  return {
    name: 'bench-kv',
    version: 1,
    // A serving replica that streams from a worker thread keeps its slabs in shared memory.
    initialState: () => (kind === 'slab' ? new SlabMap({ shared: process.env.BENCH_SERVE === 'worker' }) : new SnapshotMap<string>()),
    apply(state, req) {
      if (req.op === 'set') {
        state.set(req.key, req.value);
        return 'OK';
      }
      return state.get(req.key) ?? null;
    },
    ...support,
  };
}

export function valueFor(i: number, size: number): string {
  const s = String(i);
  return 'v'.repeat(Math.max(0, size - s.length)) + s;
}

/** Messages between the orchestrator and its child processes (IPC). */
export type ChildReport =
  | { t: 'ready'; kvAddress: string; transferAddress: string; keys: number; fillMs: number }
  | {
      t: 'joined';
      bytes: number;
      records: number;
      entries: number;
      transferMs: number;
      snapshotMs: number;
      snapshotCpuMs: number;
      pageFaults: number;
      seq: number;
      digest: string;
      resumes: number;
    }
  | { t: 'digest'; seq: number; digest: string }
  | { t: 'cpu'; cpuMs: number }
  | { t: 'error'; message: string };
