#!/usr/bin/env node
/**
 * Per-record CPU cost of the two record-chunk encodings, side by side in one process:
 *
 *   node --conditions=@tandem/source --import tsx tools/bench-state-transfer/codec.ts [--keys N] [--value-size B] [--reps R]
 *
 * For a SnapshotMap of N string keys and values, each repetition runs both pipelines in turn (the
 * order alternates), as the serving replica and the joiner run them, without a network (the serving
 * side is timed alone, then the joiner while chunks are produced untimed; CPU time, not wall time):
 *   legacy: cursor → msgpack array per slice → concatenated chunk → unpackAll → builder.add
 *   text:   cursor → text slice written into the chunk buffer → decodeRecordSlices → builder.addText
 * plus the per-chunk CRC-32 on both sides. Prints the median µs per record of each side and the
 * ratios legacy / text. Both builders must end with the source map's digest.
 */
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { SnapshotMap } from '@tandem/state-transfer';
import { pack, unpackAll } from '../../packages/state-transfer/src/codec.js';
import { decodeRecordSlices, encodeRecordSliceInto, isTextSlice, sliceItems } from '../../packages/state-transfer/src/maps/record-codec.js';
import { numberArg } from './args.js';
import { valueFor } from './kv.js';

const keys = numberArg('--keys', 300_000);
const valueSize = numberArg('--value-size', 100);
const reps = numberArg('--reps', 5);
const chunkBytes = 512 * 1024;
const sliceRecords = 300;

const source = new SnapshotMap<string>();
// Flat strings, as a replica holds values decoded from requests.
for (let i = 0; i < keys; i++) source.set(`key:${i}`, Buffer.from(valueFor(i, valueSize)).toString('latin1'));

interface Side {
  serveUs: number;
  joinUs: number;
}

/** CPU time of f in µs (user + system). */
function cpuUs(f: () => void): number {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

/**
 * Two passes over a fresh snapshot each: the serving side alone (timed), then the serving side
 * (untimed) handing each chunk to the joiner (timed) — so the joiner's allocations and GC are not
 * charged to the serving side, as in the two processes of a real transfer.
 */
function run(
  name: string,
  produce: (cur: ReturnType<SnapshotMap<string>['snapshot']>) => Uint8Array | undefined,
  take: (chunk: Uint8Array) => void,
  built: () => SnapshotMap<string>,
): Side {
  let serve = 0;
  const c1 = source.snapshot();
  for (;;) {
    let chunk: Uint8Array | undefined;
    serve += cpuUs(() => {
      chunk = produce(c1);
    });
    if (!chunk) break;
  }
  let join = 0;
  const c2 = source.snapshot();
  for (let chunk = produce(c2); chunk; chunk = produce(c2)) join += cpuUs(() => take(chunk));
  join += cpuUs(() => void built());
  if (built().digest() !== source.digest()) throw new Error(`${name}: digests differ`);
  return { serveUs: serve / keys, joinUs: join / keys };
}

function legacy(): Side {
  const b = SnapshotMap.builder<string>();
  let map: SnapshotMap<string> | undefined;
  return run(
    'legacy',
    (cur) => {
      const parts: Uint8Array[] = [];
      let size = 0;
      let crc = 0;
      while (size < chunkBytes) {
        const recs = cur.next(sliceRecords);
        if (!recs) break;
        const p = pack(recs);
        crc = crc32(p, crc);
        parts.push(p);
        size += p.length;
      }
      return size === 0 ? undefined : Buffer.concat(parts, size);
    },
    (chunk) => {
      crc32(chunk);
      for (const s of unpackAll(chunk)) b.add(s as unknown[]);
    },
    () => (map ??= b.finish()),
  );
}

function text(): Side {
  const b = SnapshotMap.builder<string>();
  let map: SnapshotMap<string> | undefined;
  const buf = Buffer.allocUnsafeSlow(chunkBytes + 128 * 1024); // one buffer, reused (the producer's pool)
  return run(
    'text',
    (cur) => {
      let size = 0;
      let crc = 0;
      while (size < chunkBytes) {
        const recs = cur.next(sliceRecords);
        if (!recs) break;
        const end = encodeRecordSliceInto(recs, buf, size);
        if (end < 0) throw new Error('slice does not fit');
        crc = crc32(buf.subarray(size, end), crc);
        size = end;
      }
      return size === 0 ? undefined : buf.subarray(0, size);
    },
    (chunk) => {
      crc32(chunk);
      for (const s of decodeRecordSlices(chunk)) {
        if (isTextSlice(s)) b.addText!(s);
        else b.add(sliceItems(s));
      }
    },
    () => (map ??= b.finish()),
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const L: Side[] = [];
const T: Side[] = [];
for (let r = 0; r < reps; r++) {
  if (r % 2 === 0) {
    L.push(legacy());
    T.push(text());
  } else {
    T.push(text());
    L.push(legacy());
  }
}
const out = {
  keys,
  valueSize,
  reps,
  legacyServeUsPerRecord: Number(median(L.map((s) => s.serveUs)).toFixed(3)),
  textServeUsPerRecord: Number(median(T.map((s) => s.serveUs)).toFixed(3)),
  legacyJoinUsPerRecord: Number(median(L.map((s) => s.joinUs)).toFixed(3)),
  textJoinUsPerRecord: Number(median(T.map((s) => s.joinUs)).toFixed(3)),
};
console.log(
  JSON.stringify({
    ...out,
    serveRatio: Number((out.legacyServeUsPerRecord / out.textServeUsPerRecord).toFixed(2)),
    joinRatio: Number((out.legacyJoinUsPerRecord / out.textJoinUsPerRecord).toFixed(2)),
  }),
);
