/**
 * Target `state-transfer`: @tandem/state-transfer's messages, on virtual time and the in-memory
 * transport. Each input is one of:
 * - `server`: attackers connect to a serving replica's StateTransferServer (a ServiceHost with a few dozen
 *   keys, taking writes) and send structure-aware transfer messages of every type (generated from the
 *   package's zod schemas: opens with odd formats, versions and windows, resumes, acks and nacks of chunks
 *   never sent, verifications, log batches, failures), mutated shapes and random bytes — reading what the
 *   server sends and reusing its transfer ids. Meanwhile an honest joiner transfers from the same server:
 *   it must verify at the server's digest (honest failure otherwise); the source's state must be only
 *   what its own writes made it (state changed otherwise); and once the joiners are gone every session
 *   must expire (violation otherwise).
 * - `joiner`: an honest StateTransferClient (into a SnapshotMap or a SlabMap service) dials a hostile
 *   server that answers its `open` with a scripted sequence: meta (any format, version, totalRecords),
 *   chunks whose data are record slices (text, packed, msgpack, legacy; well-framed or broken) or blob
 *   pieces, with correct or wrong CRCs, snapEnd with a correct or wrong whole-state checksum, log
 *   entries, caughtUp with the joiner's real digest or another, failures, garbage. `run()` must settle
 *   (hang otherwise) and reject only with the package's typed errors (violation otherwise), and allocate
 *   no more than a bound (violation otherwise).
 * - `codec`: decodeMessage on random and mutated bytes: a message or TransferProtocolError, nothing else;
 *   the record codec (decodeRecordSlices, sliceItems) on framed and broken slices: slices or an Error.
 * Exceptions escaping timers and deliveries, and unhandled rejections, are crashes.
 */
import { Buffer } from 'node:buffer';
import { getHeapStatistics } from 'node:v8';
import fc from 'fast-check';
import { z } from 'zod';
import { Packr } from 'msgpackr';
import {
  chunkChecksum,
  decodeMessage,
  encodeMessage,
  isStateTransferError,
  mapSnapshotSupport,
  ServiceHost,
  slabMapSupport,
  SnapshotMap,
  SlabMap,
  StateTransferClient,
  StateTransferServer,
  transferMessageSchema,
  WholeStateChecksum,
  type HostedService,
  type TransferMessage,
} from '@tandem/state-transfer';
import type { Connection, Listener } from '@tandem/transport';
// (not exported by the package: the record codec is internal, but it reads bytes from the wire)
import { decodeRecordSlices, sliceItems } from '../../../packages/state-transfer/src/maps/record-codec.js';
import { crashFinding, normalise } from '../lib/async-errors.js';
import type { Finding, FuzzTarget, InputOutcome, TargetOptions } from '../lib/types.js';
import { VirtualWorld } from '../lib/vtime.js';
import { anyValue, mutateValue, valueMutation, zodArbitrary, type Hints, type ValueMutation } from '../lib/zod-arb.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const KEYS = 40;

const kvRequest = z.union([
  z.object({ op: z.literal('set'), key: z.string(), value: z.string() }),
  z.object({ op: z.literal('del'), key: z.string() }),
]);
type KvRequest = z.infer<typeof kvRequest>;

function applyKv(state: { set(k: string, v: string): unknown; delete(k: string): boolean }, req: KvRequest): string {
  if (req.op === 'set') state.set(req.key, req.value);
  else state.delete(req.key);
  return 'OK';
}

// Small maps (few buckets, small slabs): one input builds several, and the defaults are sized for millions of keys.
const MAP_OPTIONS = { buckets: 16 };
const SLAB_OPTIONS = { slabBytes: 64 * 1024 };
function mapService(): HostedService<SnapshotMap<string>, KvRequest, string> {
  return {
    name: 'kv',
    version: 1,
    initialState: () => new SnapshotMap<string>(MAP_OPTIONS),
    apply: (s, r) => applyKv(s, kvRequest.parse(r)),
    ...mapSnapshotSupport<string>(MAP_OPTIONS),
  };
}
function slabService(): HostedService<SlabMap, KvRequest, string> {
  return {
    name: 'kv',
    version: 1,
    initialState: () => new SlabMap(SLAB_OPTIONS),
    apply: (s, r) => applyKv(s, kvRequest.parse(r)),
    ...slabMapSupport(SLAB_OPTIONS),
  };
}

// ---------------------------------------------------------------- inputs

/** Values resolved when sent: the attacker's last transfer id, the source's seq (+d), the joiner's digest… */
type Sym = { $sym: 'tid' | 'seq' | 'digest' | 'nextSeq' | 'lastSeq' | 'chunkIndex' | 'chunks'; d?: number };
type Crc = { $crc: true };
type Whole = { $whole: true };

type Slice =
  | { kind: 'text'; items: string[]; lie: number }
  | { kind: 'packed'; records: [Uint8Array, Uint8Array][]; lie: number }
  | { kind: 'msgpack'; items: unknown[] }
  | { kind: 'legacy'; items: unknown[] }
  | { kind: 'raw'; bytes: Uint8Array };

type Payload = { m: unknown; mut: ValueMutation[] } | { raw: Uint8Array };

export type StInput =
  | { mode: 'server'; attackers: { conn: number; msgs: Payload[] }[]; writes: number; honestWindow: number; slab: boolean }
  | { mode: 'joiner'; script: Payload[]; slab: boolean; follow: boolean }
  | { mode: 'codec'; bytes: Uint8Array | null; m: unknown; mut: ValueMutation[]; slices: Slice[] | null };

function sliceArb(): fc.Arbitrary<Slice> {
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 });
  return fc.oneof(
    fc.record({ kind: fc.constant('text' as const), items: fc.array(ascii, { maxLength: 8 }), lie: fc.constantFrom(0, 0, 0, 1, -1, 4) }),
    fc.record({
      kind: fc.constant('packed' as const),
      records: fc.array(fc.tuple(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 })), { maxLength: 4 }),
      lie: fc.constantFrom(0, 0, 0, 1, -1, 8),
    }),
    fc.record({ kind: fc.constant('msgpack' as const), items: fc.array(fc.oneof(ascii, anyValue), { maxLength: 6 }) }),
    fc.record({ kind: fc.constant('legacy' as const), items: fc.array(fc.oneof(ascii, anyValue), { maxLength: 6 }) }),
    fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  );
}

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** The record-slice framing of record-codec.ts, written independently (with deliberate lies in lengths). */
function encodeSlices(slices: Slice[]): Uint8Array {
  const out: number[] = [];
  for (const s of slices) {
    switch (s.kind) {
      case 'text': {
        const payload = Buffer.from(s.items.join(''), 'latin1');
        const body = [...u32(s.items.length), ...s.items.flatMap((i) => u32(i.length)), ...payload];
        out.push(0xc1, 1, ...u32(Math.max(0, body.length + s.lie)), ...body);
        break;
      }
      case 'packed': {
        const body = [...u32(s.records.length), ...s.records.flatMap(([k, v]) => [...u32(k.length), ...u32(v.length), ...k, ...v])];
        out.push(0xc1, 2, ...u32(Math.max(0, body.length + s.lie)), ...body);
        break;
      }
      case 'msgpack': {
        const body = packr.pack(s.items);
        out.push(0xc1, 0, ...u32(body.length), ...body);
        break;
      }
      case 'legacy':
        out.push(...packr.pack(s.items));
        break;
      case 'raw':
        out.push(...s.bytes);
        break;
    }
  }
  return Uint8Array.from(out);
}

const sym = (kind: Sym['$sym'], ds: number[] = [0]): fc.Arbitrary<Sym> => fc.constantFrom(...ds).map((d) => ({ $sym: kind, d }));

function hints(): Hints {
  const small = fc.oneof(
    { weight: 5, arbitrary: fc.nat(6) },
    { weight: 1, arbitrary: fc.constantFrom(1024, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER) },
  );
  const id = fc.oneof({ weight: 3, arbitrary: sym('tid') }, { weight: 1, arbitrary: fc.constantFrom('0011223344556677', 'x', 'joiner') });
  const entry = fc.record({
    seq: fc.oneof({ weight: 4, arbitrary: sym('nextSeq', [0, 0, 0, 1, -1]) }, { weight: 1, arbitrary: small }),
    epoch: fc.constantFrom(1, 2),
    clientId: fc.constant('evil'),
    requestId: fc.nat(9),
    body: fc.oneof(
      fc.record({ op: fc.constant('set'), key: fc.constantFrom('k1', 'k2', 'evil'), value: fc.string({ maxLength: 6 }) }),
      anyValue,
    ),
    time: fc.nat(),
    seed: fc.nat(),
  });
  return {
    transferId: id,
    nodeId: fc.constantFrom('evil', 'joiner', 'x'),
    service: fc.oneof({ weight: 6, arbitrary: fc.constant('kv') }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }),
    version: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 2 ** 31) }),
    seq: fc.oneof({ weight: 3, arbitrary: sym('seq', [0, 0, -1, 1]) }, { weight: 1, arbitrary: small }),
    appliedSeq: fc.oneof({ weight: 3, arbitrary: sym('seq', [0, -1, 1, 5]) }, { weight: 1, arbitrary: small }),
    index: small,
    nextChunk: small,
    startChunk: small,
    chunks: small,
    records: small,
    bytes: small,
    epoch: fc.constantFrom(1, 2, 0),
    totalRecords: fc.oneof(
      { weight: 4, arbitrary: fc.nat(50) },
      { weight: 1, arbitrary: fc.constantFrom(2 ** 20, 2 ** 24, 2 ** 28, 2 ** 31, Number.MAX_SAFE_INTEGER) },
    ),
    window: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(0, 1024, 1025)),
    data: fc.oneof(
      { weight: 4, arbitrary: fc.array(sliceArb(), { maxLength: 3 }).map(encodeSlices) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    ),
    crc: fc.oneof({ weight: 4, arbitrary: fc.constant<Crc>({ $crc: true }) }, { weight: 1, arbitrary: fc.nat() }),
    checksum: fc.oneof(
      { weight: 3, arbitrary: fc.constant<Whole>({ $whole: true }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 32 }) },
    ),
    digest: fc.oneof({ weight: 3, arbitrary: sym('digest') }, { weight: 1, arbitrary: fc.string({ maxLength: 32 }) }),
    entries: fc.array(entry, { maxLength: 4 }),
  };
}

function payloadArb(message: fc.Arbitrary<unknown>): fc.Arbitrary<Payload> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.record({ m: message, mut: fc.constant([] as ValueMutation[]) }) },
    { weight: 3, arbitrary: fc.record({ m: message, mut: fc.array(valueMutation, { minLength: 1, maxLength: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ raw: fc.uint8Array({ maxLength: 48 }) }) },
  );
}

function arbitrary(): fc.Arbitrary<StInput> {
  const h = hints();
  const message = zodArbitrary(transferMessageSchema, h);
  const payload = payloadArb(message);
  // A hostile server's script, mostly coherent (so that joiners get deep: building, installing, catching
  // up, verifying): meta, sequential chunks with correct CRCs, snapEnd with the right count and checksum,
  // consecutive log entries, caughtUp at the last seq — with wrong values, perturbed shapes and extra
  // messages mixed in.
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 10 });
  const entry = (h['entries'] as fc.Arbitrary<unknown[]>).map((es) => es);
  const coherent = fc
    .record({
      format: fc.constantFrom('records' as const, 'blob' as const),
      seq: fc.nat(5),
      version: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2) }),
      totalRecords: fc.option(
        fc.oneof(
          { weight: 8, arbitrary: fc.nat(20) },
          { weight: 1, arbitrary: fc.constantFrom(2 ** 20, 2 ** 28, Number.MAX_SAFE_INTEGER) },
        ),
        { freq: 2 },
      ),
      slices: fc.array(fc.array(sliceArb(), { minLength: 1, maxLength: 3 }), { maxLength: 3 }),
      blob: fc.oneof({ weight: 4, arbitrary: fc.array(fc.tuple(ascii, ascii), { maxLength: 6 }) }, { weight: 1, arbitrary: anyValue }),
      blobCuts: fc.array(fc.nat(), { maxLength: 2 }),
      aux: fc.option(fc.oneof(anyValue, fc.uint8Array({ maxLength: 8 })), { freq: 4 }),
      end: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      logs: fc.array(entry, { maxLength: 2 }),
      caught: fc.oneof(
        { weight: 4, arbitrary: fc.constant('real' as const) },
        { weight: 1, arbitrary: fc.constantFrom('other' as const, 'none' as const) },
      ),
      perturb: fc.array(fc.record({ at: fc.nat(), mut: valueMutation }), { maxLength: 1 }),
      extra: fc.array(payload, { maxLength: 1 }),
    })
    .map((c) => {
      const tid: Sym = { $sym: 'tid' };
      const ms: unknown[] = [
        {
          t: 'meta',
          transferId: tid,
          resumed: false,
          seq: c.seq,
          epoch: 1,
          version: c.version,
          format: c.format,
          ...(c.totalRecords === null ? {} : { totalRecords: c.totalRecords }),
          startChunk: 0,
        },
      ];
      const chunk = (data: Uint8Array, section: 'state' | 'aux'): unknown => ({
        t: 'chunk',
        transferId: tid,
        index: { $sym: 'chunkIndex' },
        section,
        records: 1,
        crc: { $crc: true },
        data,
      });
      if (c.format === 'records') for (const sl of c.slices) ms.push(chunk(encodeSlices(sl), 'state'));
      else {
        const blob = packr.pack(c.blob);
        const bounds = [...new Set([0, blob.length, ...c.blobCuts.map((x) => x % (blob.length + 1))])].sort((a, b) => a - b);
        for (let i = 0; i + 1 < bounds.length; i++) ms.push(chunk(blob.subarray(bounds[i], bounds[i + 1]), 'state'));
      }
      if (c.aux !== null) ms.push(chunk(c.aux instanceof Uint8Array ? c.aux : packr.pack(c.aux), 'aux'));
      if (c.end) ms.push({ t: 'snapEnd', transferId: tid, chunks: { $sym: 'chunks' }, records: 1, bytes: 1, checksum: { $whole: true } });
      for (const entries of c.logs) ms.push({ t: 'log', transferId: tid, entries });
      if (c.caught !== 'none')
        ms.push({
          t: 'caughtUp',
          transferId: tid,
          seq: { $sym: 'lastSeq' },
          digest: c.caught === 'real' ? { $sym: 'digest' } : 'not-the-digest',
        });
      const out = ms.map((m): Payload => ({ m, mut: [] }));
      for (const p of c.perturb) {
        const target = out[p.at % out.length]! as { m: unknown; mut: ValueMutation[] };
        target.mut = [p.mut];
      }
      return [...out, ...c.extra];
    });
  const scripted = coherent;
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        mode: fc.constant('server' as const),
        attackers: fc.array(fc.record({ conn: fc.nat(1), msgs: fc.array(payload, { minLength: 1, maxLength: 5 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
        writes: fc.nat(6),
        honestWindow: fc.integer({ min: 1, max: 8 }),
        slab: fc.boolean(),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        mode: fc.constant('joiner' as const),
        script: fc.oneof({ weight: 4, arbitrary: scripted }, { weight: 1, arbitrary: fc.array(payload, { maxLength: 6 }) }),
        slab: fc.boolean(),
        follow: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        mode: fc.constant('codec' as const),
        bytes: fc.option(fc.uint8Array({ maxLength: 80 }), { freq: 2 }),
        m: message,
        mut: fc.array(valueMutation, { maxLength: 2 }),
        slices: fc.option(fc.array(sliceArb(), { maxLength: 4 }), { freq: 3 }),
      }),
    },
  );
}

export interface Resolve {
  tid: string;
  seq: number;
  digest: string;
  /** Next log seq the script hands out (consecutive entries; a meta resets it to its seq + 1). */
  nextSeq: number;
  /** Chunks sent so far on this connection (the next chunk's index). */
  chunks: number;
  /** Chunks of this connection so far, for a correct whole-state checksum. */
  whole: WholeStateChecksum;
}

/**
 * Replace the script's symbols with this run's values. A mutation can make a value contain itself (a
 * replace that inserts an ancestor); bytes on the wire cannot be cyclic, so a cycle is cut to null here
 * rather than recursing without end (seen as a stack overflow in the harness at input 25,948 of the 1M run).
 */
export function resolveSyms(v: unknown, r: Resolve, ancestors: Set<object> = new Set()): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (ancestors.has(v)) return null;
  ancestors.add(v);
  try {
    return resolveObject(v, r, ancestors);
  } finally {
    ancestors.delete(v);
  }
}

function resolveObject(v: object, r: Resolve, ancestors: Set<object>): unknown {
  if (Array.isArray(v)) return v.map((x) => resolveSyms(x, r, ancestors));
  const o = v as Record<string, unknown>;
  if (typeof o['$sym'] === 'string') {
    const d = typeof o['d'] === 'number' ? o['d'] : 0;
    switch (o['$sym']) {
      case 'tid':
        return r.tid;
      case 'digest':
        return r.digest;
      case 'nextSeq':
        return Math.max(1, r.nextSeq++ + d);
      case 'lastSeq':
        return Math.max(0, r.nextSeq - 1 + d);
      case 'chunkIndex':
        return Math.max(0, r.chunks++ + d);
      case 'chunks':
        return Math.max(0, r.chunks + d);
      default:
        return Math.max(0, r.seq + d);
    }
  }
  if (o['$crc'] === true || o['$whole'] === true) return o; // filled in by the caller
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k] = resolveSyms(o[k], r, ancestors);
  if (out['t'] === 'meta' && typeof out['seq'] === 'number') r.nextSeq = out['seq'] + 1;
  // A chunk: its CRC over its (resolved) data, and the running whole-state checksum.
  if (out['t'] === 'chunk' && out['data'] instanceof Uint8Array) {
    const crc = chunkChecksum(out['data']);
    if ((out['crc'] as Crc | undefined)?.$crc === true) out['crc'] = crc;
    if (out['crc'] === crc) r.whole.add(crc, out['data'].byteLength);
  }
  if ((out['checksum'] as Whole | undefined)?.$whole === true) out['checksum'] = r.whole.digest();
  for (const k of Object.keys(out)) if ((out[k] as Crc | undefined)?.$crc === true) out[k] = 0;
  return out;
}

function encodePayload(p: Payload, r: Resolve): Uint8Array | undefined {
  if ('raw' in p) return p.raw;
  const value = resolveSyms(p.mut.length > 0 ? mutateValue(p.m, p.mut) : p.m, r);
  try {
    return packr.pack(value);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- the world

export interface StWorld {
  vw: VirtualWorld;
  source: ServiceHost<SnapshotMap<string>, KvRequest, string>;
  server: StateTransferServer;
  /** What the source holds if only its own writes changed it. */
  model: Map<string, string>;
  evil: Listener;
  /** The hostile server's current script (joiner mode). */
  script: { payloads: Payload[] } | undefined;
  writes: number;
}

let worldNo = 0;

async function setup(options: TargetOptions): Promise<StWorld> {
  const vw = new VirtualWorld((options.seed ^ Math.imul(++worldNo, 0x85ebca6b)) >>> 0);
  const env = vw.env('source');
  const source = new ServiceHost({
    service: mapService(),
    env: { now: env.now, wallClock: env.wallClock, random: env.random },
    backlog: { maxEntries: 10_000 },
  });
  const model = new Map<string, string>();
  for (let i = 0; i < KEYS; i++) {
    const req = { op: 'set' as const, key: `key:${i}`, value: `v${i}`.padEnd(i % 7, '.') };
    source.execute(req);
    model.set(req.key, req.value);
  }
  const server = new StateTransferServer({
    env,
    source,
    chunkBytes: 256,
    sliceBytes: 128,
    maxWindow: 4,
    logBatch: 8,
    resumeTimeoutMs: 1000,
    idleTimeoutMs: 800,
    maxRestarts: 2,
  });
  const listening = server.listen('mem://st');
  await vw.run(1);
  await listening;
  const evil = await vw.net.listen('mem://evil-st');
  const world: StWorld = { vw, source, server, model, evil, script: undefined, writes: 0 };
  void serveHostile(world);
  return world;
}

/** The hostile server: answers every joiner connection with the current script. */
async function serveHostile(w: StWorld): Promise<void> {
  for await (const conn of w.evil) {
    void (async () => {
      const script = w.script;
      const it = conn[Symbol.asyncIterator]();
      const first = await it.next().catch(() => ({ done: true as const, value: undefined }));
      if (first.done || script === undefined) return conn.abort();
      const r: Resolve = { tid: 'feedfacefeedface', seq: 3, digest: '', nextSeq: 4, chunks: 0, whole: new WholeStateChecksum() };
      try {
        const open = decodeMessage(first.value);
        if (open.t === 'open' && open.resume) r.tid = open.resume.transferId;
      } catch {
        // the joiner's open is the joiner's business
      }
      const evilEnv = w.vw.env('evil');
      for (const p of script.payloads) {
        // A moment between messages, so that the joiner has handled the previous ones (and a caughtUp
        // can carry the digest it really has).
        await new Promise<void>((resolve) => evilEnv.setTimer(1, resolve));
        if (conn.isClosed) break;
        r.digest = currentJoinerDigest ?? '';
        const bytes = encodePayload(p, r);
        if (bytes !== undefined) await conn.send(bytes).catch(() => undefined);
      }
      // keep reading (acks) until the joiner goes
      for (;;) {
        const n = await it.next().catch(() => ({ done: true as const, value: undefined }));
        if (n.done) break;
      }
    })();
  }
}

/** The joiner under attack reports its digest here, so a script can answer caughtUp with it. */
let currentJoinerDigest: string | undefined;

async function teardown(w: StWorld): Promise<void> {
  void w.server.close();
  void w.evil.close();
  await w.vw.run(10, undefined, 50_000).catch(() => undefined);
}

const MEMORY_BOUND = 256 * 1024 * 1024;

function typedOrFinding(where: string, err: unknown): Finding | undefined {
  if (isStateTransferError(err)) return undefined;
  const e = err as Error;
  return {
    kind: 'violation',
    signature: `${where} rejected with an untyped ${e?.name ?? typeof err}: ${normalise(e?.message ?? String(err))}`,
    message: `${where} rejected with ${e?.name ?? typeof err}: ${e?.message ?? String(err)} (the package's errors are typed: StateTransferError)`,
    ...(e?.stack ? { stack: e.stack } : {}),
  };
}

async function runServer(w: StWorld, input: Extract<StInput, { mode: 'server' }>, findings: Finding[]): Promise<boolean> {
  const { vw } = w;
  let hung = false;
  const advance = async (ms: number, stop?: () => boolean): Promise<void> => {
    if ((await vw.run(ms, stop, 50_000)) === 'budget') hung = true;
  };
  // The honest joiner.
  const joiner = new ServiceHost({ service: input.slab ? (slabService() as never) : mapService(), env: vw.env('joiner') });
  const client = new StateTransferClient({
    env: vw.env('joiner'),
    service: joiner.service,
    sink: joiner,
    nodeId: 'joiner',
    address: 'mem://st',
    window: input.honestWindow,
    idleTimeoutMs: 1000,
    maxReconnects: 3,
    reconnectDelayMs: 20,
    maxRestarts: 2,
  });
  let outcome: { ok: true; digest: string; seq: number } | { ok: false; err: unknown } | undefined;
  client.run().then(
    (r) => (outcome = { ok: true, digest: r.digest, seq: r.seq }),
    (err: unknown) => (outcome = { ok: false, err }),
  );
  // The attackers, on their own connections, reading what the server answers.
  const conns: (Connection | undefined)[] = [];
  const r: Resolve = {
    tid: 'feedfacefeedface',
    seq: w.source.seq,
    digest: w.source.head().digest,
    nextSeq: w.source.seq + 1,
    chunks: 0,
    whole: new WholeStateChecksum(),
  };
  const net = vw.net.host('evil');
  for (const a of input.attackers) {
    let conn = conns[a.conn];
    if (conn === undefined || conn.isClosed) {
      let dialled: Connection | undefined;
      net.dial('mem://st', { timeoutMs: 100 }).then(
        (c) => (dialled = c),
        () => undefined,
      );
      await advance(1);
      if (!dialled) continue;
      conn = dialled;
      conns[a.conn] = conn;
      const c = conn;
      void (async () => {
        try {
          for await (const bytes of c) {
            try {
              const m = decodeMessage(bytes);
              if (m.t === 'meta') r.tid = m.transferId;
            } catch {
              // whatever the server sends
            }
          }
        } catch {
          // closed
        }
      })();
    }
    for (const p of a.msgs) {
      r.seq = w.source.seq;
      r.digest = w.source.head().digest;
      const bytes = encodePayload(p, r);
      if (bytes !== undefined) void conn.send(bytes).catch(() => undefined);
      await advance(1);
    }
    // The source keeps serving: honest writes between attacks.
    for (let i = 0; i < input.writes; i++) {
      const req = { op: 'set' as const, key: `key:${(w.writes * 7 + i) % KEYS}`, value: `w${w.writes++}` };
      w.source.execute(req);
      w.model.set(req.key, req.value);
    }
  }
  await advance(4000, () => outcome !== undefined);
  for (const c of conns) c?.abort();
  if (outcome === undefined && !hung)
    findings.push({
      kind: 'hang',
      signature: 'honest joiner never finished',
      message: 'the honest transfer neither verified nor failed within 4 s (virtual)',
    });
  else if (outcome !== undefined && !outcome.ok) {
    const e = outcome.err as Error;
    findings.push({
      kind: 'honest-failure',
      signature: `honest transfer failed: ${e?.name}: ${normalise(e?.message ?? '')}`,
      message: `the honest joiner failed: ${e?.name}: ${e?.message}`,
      ...(e?.stack ? { stack: e.stack } : {}),
    });
  } else if (outcome?.ok && joiner.head().digest !== outcome.digest) {
    findings.push({
      kind: 'honest-failure',
      signature: 'honest joiner verified a digest it does not have',
      message: `verified ${outcome.digest}, holds ${joiner.head().digest}`,
    });
  }
  await client.close().catch(() => undefined);
  // The source's state is what its own writes made it.
  const expected = new SnapshotMap<string>(MAP_OPTIONS);
  for (const [k, v] of w.model) expected.set(k, v);
  if (expected.digest() !== w.source.digest())
    findings.push({
      kind: 'state-changed',
      signature: 'source state changed',
      message: 'the serving replica holds a state its own writes did not make',
    });
  // Every session of a gone joiner expires.
  await advance(3000, () => w.server.sessions === 0);
  if (!hung && w.server.sessions > 0)
    findings.push({
      kind: 'violation',
      signature: 'sessions outlive their joiners',
      message: `${w.server.sessions} sessions left 3 s (virtual) after every joiner left (resumeTimeoutMs 1 s)`,
    });
  if (hung)
    findings.push({
      kind: 'hang',
      signature: 'event budget exceeded (livelock)',
      message: 'more than 50 000 scheduler events in one step',
    });
  return hung || findings.length > 0;
}

async function runJoiner(w: StWorld, input: Extract<StInput, { mode: 'joiner' }>, findings: Finding[]): Promise<boolean> {
  const { vw } = w;
  const joiner = new ServiceHost({ service: input.slab ? (slabService() as never) : mapService(), env: vw.env('joiner') });
  w.script = { payloads: input.script };
  currentJoinerDigest = joiner.head().digest;
  const client = new StateTransferClient({
    env: vw.env('joiner'),
    service: joiner.service,
    sink: joiner,
    nodeId: 'joiner',
    address: 'mem://evil-st',
    follow: input.follow,
    idleTimeoutMs: 300,
    maxReconnects: 2,
    reconnectDelayMs: 10,
    maxRestarts: 2,
  });
  client.on((e) => {
    if (e.type === 'installed' || e.type === 'progress') currentJoinerDigest = joiner.head().digest;
  });
  let outcome: { ok: true } | { ok: false; err: unknown } | undefined;
  const before = getHeapStatistics().external_memory; // (process.memoryUsage() reads /proc: 20x dearer)
  client.run().then(
    () => (outcome = { ok: true }),
    (err: unknown) => (outcome = { ok: false, err }),
  );
  let hung = false;
  const r = await vw.run(
    10_000,
    () => {
      if (outcome === undefined) currentJoinerDigest = joiner.head().digest;
      return outcome !== undefined;
    },
    50_000,
  );
  if (r === 'budget') hung = true;
  const grew = getHeapStatistics().external_memory - before;
  if (grew > MEMORY_BOUND)
    findings.push({
      kind: 'violation',
      signature: 'joiner allocated far more than it received',
      message: `external (ArrayBuffer) memory grew by ${Math.round(grew / 1048576)} MiB during one transfer of a few hundred bytes`,
    });
  if (hung)
    findings.push({
      kind: 'hang',
      signature: 'event budget exceeded (livelock)',
      message: 'more than 50 000 scheduler events while the joiner ran',
    });
  else if (outcome === undefined) {
    if (!input.follow)
      findings.push({
        kind: 'hang',
        signature: 'joiner never settled',
        message: 'StateTransferClient.run() neither resolved nor rejected within 10 s (virtual) against a hostile server',
      });
  } else if (!outcome.ok) {
    const f = typedOrFinding('StateTransferClient.run()', outcome.err);
    if (f) findings.push(f);
  }
  let closed = false;
  void client.close().then(
    () => (closed = true),
    () => (closed = true),
  );
  await vw.run(2000, () => closed);
  if (!closed)
    findings.push({
      kind: 'hang',
      signature: 'client.close() never settled',
      message: 'StateTransferClient.close() did not settle within 2 s (virtual)',
    });
  w.script = undefined;
  return false;
}

/** The record codec (record-codec.ts) on a chunk's data: slices, or an Error the joiner turns into a protocol error. */
function runRecordCodec(data: Uint8Array, findings: Finding[]): void {
  let slices: ReturnType<typeof decodeRecordSlices>;
  try {
    slices = decodeRecordSlices(data);
  } catch (err) {
    if (!(err instanceof Error)) findings.push(crashFinding('decodeRecordSlices', err));
    return;
  }
  for (const slice of slices) {
    try {
      const items = sliceItems(slice);
      if (!Array.isArray(items)) findings.push({ kind: 'violation', signature: 'sliceItems returned no array', message: typeof items });
    } catch (err) {
      if ((err as Error)?.name !== 'RangeError') findings.push(crashFinding('sliceItems', err));
    }
  }
}

function runCodec(input: Extract<StInput, { mode: 'codec' }>, findings: Finding[]): void {
  if (input.slices !== null) runRecordCodec(encodeSlices(input.slices), findings);
  let bytes = input.bytes;
  if (bytes === null) {
    try {
      bytes = packr.pack(mutateValue(input.m, input.mut));
    } catch {
      return;
    }
  }
  let decoded: TransferMessage | undefined;
  try {
    decoded = decodeMessage(bytes);
  } catch (err) {
    if ((err as Error)?.name !== 'TransferProtocolError') findings.push(crashFinding('decodeMessage', err));
    return;
  }
  try {
    decodeMessage(encodeMessage(decoded));
  } catch (err) {
    findings.push({ kind: 'violation', signature: 'a decoded message does not survive re-encoding', message: (err as Error).message });
  }
}

async function run(w: StWorld, input: StInput): Promise<InputOutcome> {
  const findings: Finding[] = [];
  let broken = false;
  if (input.mode === 'server') broken = await runServer(w, input, findings);
  else if (input.mode === 'joiner') broken = await runJoiner(w, input, findings);
  else runCodec(input, findings);
  for (const err of w.vw.takeCallbackErrors()) findings.push(crashFinding('exception in a timer or delivery callback', err));
  return { findings, broken };
}

export function stateTransferTarget(): FuzzTarget<StInput, StWorld> {
  return {
    name: 'state-transfer',
    description: 'state-transfer messages into a serving replica, a joiner, and the codec (@tandem/state-transfer)',
    honest: true,
    state: true,
    stateful: true,
    arbitrary: () => arbitrary(),
    setup,
    run,
    teardown,
  };
}
