/** The benchmark's key-value service (SnapshotMap state, streamed as records) and its wire requests. */
import { mapSnapshotSupport, SlabMap, slabMapSupport, SnapshotMap, type HostedService } from '@tandem/state-transfer';

export type BenchRequest = { op: 'set'; key: string; value: string } | { op: 'get'; key: string };

/** The state a benchmark replica holds: 'slab' (SlabMap, entries outside the heap; default) or 'map' (SnapshotMap). */
export type BenchStateKind = 'slab' | 'map';

export function benchStateKind(): BenchStateKind {
  return process.env.BENCH_STATE === 'map' ? 'map' : 'slab';
}

export function benchKv(kind: BenchStateKind = benchStateKind()): HostedService<SnapshotMap<string> | SlabMap, BenchRequest, string | null> {
  if (kind === 'slab') {
    return {
      name: 'bench-kv',
      version: 1,
      initialState: () => new SlabMap(),
      apply(state, req) {
        if (req.op === 'set') {
          state.set(req.key, req.value);
          return 'OK';
        }
        return state.get(req.key) ?? null;
      },
      ...slabMapSupport(),
    } as HostedService<SlabMap, BenchRequest, string | null> as HostedService<SnapshotMap<string> | SlabMap, BenchRequest, string | null>;
  }
  return {
    name: 'bench-kv',
    version: 1,
    initialState: () => new SnapshotMap<string>(),
    apply(state, req) {
      if (req.op === 'set') {
        state.set(req.key, req.value);
        return 'OK';
      }
      return state.get(req.key) ?? null;
    },
    ...mapSnapshotSupport<string>(),
  } as HostedService<SnapshotMap<string>, BenchRequest, string | null> as HostedService<SnapshotMap<string> | SlabMap, BenchRequest, string | null>;
}

export function valueFor(i: number, size: number): string {
  const s = String(i);
  return 'v'.repeat(Math.max(0, size - s.length)) + s;
}

/** Messages between the orchestrator and its child processes (IPC). */
export type ChildReport =
  | { t: 'ready'; kvAddress: string; transferAddress: string; keys: number; fillMs: number }
  | { t: 'joined'; bytes: number; records: number; entries: number; transferMs: number; snapshotMs: number; snapshotCpuMs: number; seq: number; digest: string; resumes: number }
  | { t: 'digest'; seq: number; digest: string }
  | { t: 'cpu'; cpuMs: number }
  | { t: 'error'; message: string };
