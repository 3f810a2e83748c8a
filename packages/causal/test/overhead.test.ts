// Metadata bytes per message for group sizes 2, 3, 8 and 32 under five workloads, measured on the
// simulator (delays 1–50 ms, every member sending about every 10 ms), compared with what a matrix clock
// (Raynal–Schiper–Toueg) would carry for the same run, encoded with the same varint scheme. The table is
// printed (docs/CAUSAL.md quotes it); the assertions guard against regressions.
import { describe, expect, it } from 'vitest';
import { encodeStamp } from '../src/index.js';
import { runSim, type ScheduledSend, type SimMessage } from './helpers/sim.js';
import { mulberry32 } from './helpers/virtual-clock.js';

const varint = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/** Size of a vector under the stamp codec's rule (shorter of sparse and dense). */
function vectorBytes(values: readonly number[]): number {
  let dense = 1;
  let sparse = 0;
  let count = 0;
  let prev = -1;
  values.forEach((v, k) => {
    dense += varint(v);
    if (v > 0) {
      sparse += varint(k - prev - 1) + varint(v - 1);
      prev = k;
      count++;
    }
  });
  return Math.min(dense, sparse + varint(count * 2));
}

type Workload = 'closed-loop rpc' | 'request/reply' | 'random direct' | 'broadcast' | 'mixed';

interface Row {
  n: number;
  workload: Workload;
  mean: number;
  p99: number;
  max: number;
  matrixMean: number | undefined;
}

function measure(n: number, workload: Workload): Row {
  const rng = mulberry32(n * 1000 + workload.length);
  const total = Math.min(1000, 60 * n);
  const clients = Math.max(1, Math.floor(n / 2));
  const sends: ScheduledSend[] = [];
  for (let i = 0; i < (workload === 'closed-loop rpc' ? clients : workload === 'request/reply' ? total / 2 : total); i++) {
    const at = Math.floor((i * 10) / n);
    if (workload === 'request/reply' || workload === 'closed-loop rpc') {
      sends.push({ at, proc: Math.floor(rng() * clients), to: clients + Math.floor(rng() * (n - clients)) });
    } else {
      const broadcast = workload === 'broadcast' || (workload === 'mixed' && rng() < 0.2);
      sends.push({ at, proc: Math.floor(rng() * n), to: broadcast ? 'all' : Math.floor(rng() * n) });
    }
  }
  // the matrix clock a message would carry instead: SENT[k][l] = direct messages from k to l in its causal past
  const matrices = Array.from({ length: n }, () => new Array<number>(n * n).fill(0));
  const matrixBytes = new Map<number, number>();
  const sizes = new Map<number, number>();
  runSim({
    n,
    seed: n,
    sends,
    delay: [1, 50],
    maxMessages: total,
    check: false,
    react: (p, m, random) => {
      if (workload !== 'request/reply' && workload !== 'closed-loop rpc') return undefined;
      if (p >= clients && m.sender < clients) return m.sender; // a server replies
      if (workload === 'closed-loop rpc' && p < clients) return clients + Math.floor(random() * (n - clients)); // the next call
      return undefined;
    },
    onSend: (m: SimMessage) => {
      sizes.set(m.id, m.wire.byteLength);
      const matrix = matrices[m.sender]!;
      for (const d of m.dests) matrix[m.sender * n + d]!++;
      matrixBytes.set(m.id, 1 + varint(m.sender) + varint(m.dests[0]!) + vectorBytes(matrix));
      (m as SimMessage & { matrix?: number[] }).matrix = [...matrix];
    },
    onDeliver: (p, m) => {
      const carried = (m as SimMessage & { matrix?: number[] }).matrix!;
      const mine = matrices[p]!;
      for (let i = 0; i < mine.length; i++) mine[i] = Math.max(mine[i]!, carried[i]!);
    },
  });
  const ids = [...sizes.keys()].filter((id) => id >= Math.floor(sizes.size / 5)); // steady state
  const bytes = ids.map((id) => sizes.get(id)!).sort((a, b) => a - b);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    n,
    workload,
    mean: mean(bytes),
    p99: bytes[Math.floor(bytes.length * 0.99)]!,
    max: bytes[bytes.length - 1]!,
    matrixMean: workload !== 'broadcast' && workload !== 'mixed' ? mean(ids.map((id) => matrixBytes.get(id)!)) : undefined,
  };
}

describe('metadata overhead', () => {
  it('bytes per message for groups of 2, 3, 8, 32', () => {
    const rows: Row[] = [];
    for (const workload of ['closed-loop rpc', 'request/reply', 'random direct', 'broadcast', 'mixed'] as const) {
      for (const n of [2, 3, 8, 32]) rows.push(measure(n, workload));
    }
    const lines = [
      '| workload | n | mean | p99 | max | matrix clock, mean |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.workload} | ${r.n} | ${r.mean.toFixed(1)} | ${r.p99} | ${r.max} | ${r.matrixMean === undefined ? '—' : r.matrixMean.toFixed(1)} |`,
      ),
    ];
    console.log(lines.join('\n'));
    const row = (w: Workload, n: number): Row => rows.find((r) => r.workload === w && r.n === n)!;
    // request/reply: the reply acknowledges the request, so stamps stay near the two vectors
    expect(row('request/reply', 2).max).toBeLessThanOrEqual(12);
    // broadcasts carry one vector (dense past a few members): about n bytes + 4 for small counts
    expect(row('broadcast', 32).max).toBeLessThanOrEqual(2 * 32 + 8);
    // calls that wait for their reply (a replicated server calling another): smaller than a matrix clock at every size
    for (const n of [2, 3, 8, 32]) expect(row('closed-loop rpc', n).mean).toBeLessThan(row('closed-loop rpc', n).matrixMean!);
    expect(row('closed-loop rpc', 2).max).toBeLessThanOrEqual(6);
    // pipelined traffic, small groups: a few bytes more than a matrix clock (SES names the latest message in transit besides counting);
    // from 8 members on: less, since only messages not known to be delivered are named
    for (const w of ['request/reply', 'random direct'] as const) {
      for (const n of [2, 3]) expect(row(w, n).mean).toBeLessThanOrEqual(row(w, n).matrixMean! + 5);
      for (const n of [8, 32]) expect(row(w, n).mean).toBeLessThan(row(w, n).matrixMean!);
    }
  });

  it('an example stamp', () => {
    const bytes = encodeStamp({
      kind: 'direct',
      from: 2,
      to: 0,
      direct: [3, 0, 5],
      broadcast: [0, 0, 0],
      inTransit: [{ to: 1, latest: [2, 0, 0] }],
    });
    // header 1, from 1, to 1, direct dense [3, 0, 5] 4, in-transit: n 1, to 1, {0: 3 − 2} sparse 3
    expect(bytes.byteLength).toBe(12);
  });
});
