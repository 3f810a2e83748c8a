/**
 * Target `x11`: the X11 parsers and the conference session of @tandem/xconference, on in-process sockets
 * (lib/fake-socket.ts) and the package's own fake X server (test/helpers/fake-x-server.ts). Each input is one of:
 * - `app`: an application connects to an ApplicationSession of two participants (master + one) and sends
 *   a client setup (valid in either byte order, mutated, or random) and requests built to the protocol —
 *   InternAtom, QueryExtension, GetGeometry, CreateWindow with value lists, ChangeProperty, PolyLine…,
 *   BIG-REQUESTS enabled the way Xlib does it and then used with 32-bit lengths — plus requests of any
 *   opcode with random bodies, the byte stream then (maybe) mutated (bit flips, insertions, deletions,
 *   rewritten lengths) and cut at random points. An application that sent only valid requests is an honest
 *   party: its session must stay open and answer every request that has a reply exactly once, with its
 *   sequence number, in order (honest failure otherwise).
 * - `server`: the application is honest; one participant's server (the master or the other) is hostile:
 *   its setup reply is valid, mutated or random, then it sends replies with any sequence number and
 *   length, events of every code (with GenericEvent lengths), errors and garbage, between the
 *   application's requests. With a hostile non-master participant the honest application must be served
 *   as above.
 * - `parse`: the parsers alone on random and mutated bytes — parseClientSetup, serverSetupSize +
 *   parseServerSetup, RequestFramer (with and without BIG-REQUESTS), ServerMessageFramer: a result or an
 *   XProtocolError, nothing else; each framed message of the size its header announces (violation).
 * In every mode: an exception escaping a socket listener or a timer, or an unhandled rejection, is a
 * crash; a session that does not settle, or that outlives its application (or keeps a server connection
 * open after it closed), is a hang / violation.
 */
import fc from 'fast-check';
import { parseClientSetup, parseFocusTrigger, parseServerSetup, serverSetupSize, type Upstream } from '@tandem/xconference';
import { ApplicationSession, RequestFramer, ServerMessageFramer } from '@tandem/xconference/internal';
import { FakeXServer } from '../../../packages/xconference/test/helpers/fake-x-server.js';
import { encodeServerSetup, screen } from '../../../packages/xconference/test/helpers/setup-builder.js';
import { crashFinding, normalise } from '../lib/async-errors.js';
import { type FakeSocket, FakeSocketNet } from '../lib/fake-socket.js';
import type { Finding, FuzzTarget, InputOutcome } from '../lib/types.js';

const MASTER = { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 };
const PARTICIPANT = { base: 0x200000, root: 0x42, atomBase: 500, bigReqOpcode: 134 };

// ---------------------------------------------------------------- inputs

type AppReq =
  | { r: 'intern'; name: string; onlyIfExists: boolean }
  | { r: 'queryExt'; name: string }
  | { r: 'geometry'; target: number }
  | { r: 'focus' }
  | { r: 'pointer' }
  | { r: 'kbmap'; count: number }
  | { r: 'listFonts'; pattern: string }
  | { r: 'createWindow'; k: number; mask: number }
  | { r: 'map'; k: number }
  | { r: 'createPixmap'; k: number; w: number; h: number }
  | { r: 'freePixmap'; k: number }
  | { r: 'createGC'; k: number }
  | { r: 'changeProperty'; k: number; format: 8 | 16 | 32; items: number }
  | { r: 'polyLine'; k: number; points: number; big: boolean }
  | { r: 'noop'; units: number }
  | { r: 'any'; opcode: number; data: number; body: Uint8Array };

type ByteMut =
  | { op: 'flip'; at: number; xor: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'truncate'; at: number }
  | { op: 'length'; at: number; units: number };

type ServerMsg =
  | { m: 'event'; code: number; detail: number; body: Uint8Array }
  | { m: 'reply'; seq: number | 'last'; detail: number; extra: number; body: Uint8Array }
  | { m: 'error'; code: number; seq: number | 'last' }
  | { m: 'generic'; units: number }
  | { m: 'raw'; bytes: Uint8Array };

type SetupKind = { kind: 'valid' } | { kind: 'mutated'; muts: ByteMut[] } | { kind: 'random'; bytes: Uint8Array };

export type X11Input =
  | {
      mode: 'app';
      le: boolean;
      trigger: 'none' | 'button' | 'ctrl+alt+f';
      setup: SetupKind;
      phases: AppReq[][];
      big: boolean;
      muts: ByteMut[];
      cuts: number[];
    }
  | {
      mode: 'server';
      le: boolean;
      trigger: 'none' | 'button';
      phases: AppReq[][];
      big: boolean;
      hostile: 0 | 1;
      setup: SetupKind;
      script: ServerMsg[][];
    }
  | { mode: 'join'; le: boolean; before: AppReq[][]; after: AppReq[]; hostile: boolean; setup: SetupKind; script: ServerMsg[] }
  | {
      mode: 'parse';
      which: 'client-setup' | 'server-setup' | 'requests' | 'server-messages';
      le: boolean;
      big: boolean;
      bytes: Uint8Array;
      muts: ByteMut[];
      cuts: number[];
    };

function byteMut(): fc.Arbitrary<ByteMut> {
  return fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({
      op: fc.constant('length' as const),
      at: fc.nat(),
      units: fc.oneof(fc.nat(8), fc.constantFrom(0, 0xffff, 0x10000, 0x3fffffff, 0xffffffff)),
    }),
  );
}

function appReq(): fc.Arbitrary<AppReq> {
  const k = fc.nat(7);
  const name = fc.oneof(
    fc.constantFrom('WM_PROTOCOLS', 'WM_DELETE_WINDOW', '_NET_WM_NAME', 'UTF8_STRING', 'ATOM', ''),
    fc.string({ maxLength: 20 }),
  );
  return fc.oneof(
    fc.record({ r: fc.constant('intern' as const), name, onlyIfExists: fc.boolean() }),
    fc.record({ r: fc.constant('queryExt' as const), name: fc.constantFrom('BIG-REQUESTS', 'RENDER', 'XInputExtension', 'MIT-SHM', 'x') }),
    fc.record({ r: fc.constant('geometry' as const), target: fc.nat(8) }),
    fc.record({ r: fc.constant('focus' as const) }),
    fc.record({ r: fc.constant('pointer' as const) }),
    fc.record({ r: fc.constant('kbmap' as const), count: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ r: fc.constant('listFonts' as const), pattern: fc.constantFrom('*', 'fixed', '-misc-*') }),
    fc.record({ r: fc.constant('createWindow' as const), k, mask: fc.nat(0x7fff) }),
    fc.record({ r: fc.constant('map' as const), k }),
    fc.record({ r: fc.constant('createPixmap' as const), k, w: fc.integer({ min: 1, max: 64 }), h: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ r: fc.constant('freePixmap' as const), k }),
    fc.record({ r: fc.constant('createGC' as const), k }),
    fc.record({
      r: fc.constant('changeProperty' as const),
      k,
      format: fc.constantFrom(8 as const, 16 as const, 32 as const),
      items: fc.nat(12),
    }),
    fc.record({ r: fc.constant('polyLine' as const), k, points: fc.nat(40), big: fc.boolean() }),
    fc.record({ r: fc.constant('noop' as const), units: fc.integer({ min: 1, max: 4 }) }),
  );
}

function anyReq(): fc.Arbitrary<AppReq> {
  return fc.record({
    r: fc.constant('any' as const),
    opcode: fc.integer({ min: 0, max: 255 }),
    data: fc.nat(255),
    body: fc.uint8Array({ maxLength: 40 }),
  });
}

function serverMsg(): fc.Arbitrary<ServerMsg> {
  const seq = fc.oneof(fc.constant('last' as const), fc.nat(0xffff));
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        m: fc.constant('event' as const),
        code: fc.oneof(fc.integer({ min: 2, max: 35 }), fc.integer({ min: 2, max: 255 })),
        detail: fc.nat(255),
        body: fc.uint8Array({ minLength: 28, maxLength: 28 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        m: fc.constant('reply' as const),
        seq,
        detail: fc.nat(255),
        extra: fc.oneof(fc.nat(4), fc.constantFrom(0x10000, 0x3ffffff8)),
        body: fc.uint8Array({ maxLength: 40 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ m: fc.constant('error' as const), code: fc.nat(255), seq }) },
    {
      weight: 1,
      arbitrary: fc.record({ m: fc.constant('generic' as const), units: fc.oneof(fc.nat(4), fc.constantFrom(0xffffffff, 0x4000000)) }),
    },
    { weight: 1, arbitrary: fc.record({ m: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 40 }) }) },
  );
}

function setupKind(): fc.Arbitrary<SetupKind> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: 'valid' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('mutated' as const), muts: fc.array(byteMut(), { minLength: 1, maxLength: 3 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
  );
}

function arbitrary(): fc.Arbitrary<X11Input> {
  const phases = (hostile: boolean) =>
    fc.array(
      fc.array(hostile ? fc.oneof({ weight: 6, arbitrary: appReq() }, { weight: 1, arbitrary: anyReq() }) : appReq(), {
        minLength: 1,
        maxLength: 6,
      }),
      { minLength: 1, maxLength: 3 },
    );
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        mode: fc.constant('app' as const),
        le: fc.boolean(),
        trigger: fc.constantFrom('none' as const, 'button' as const, 'ctrl+alt+f' as const),
        setup: fc.oneof({ weight: 8, arbitrary: fc.constant({ kind: 'valid' as const }) }, { weight: 2, arbitrary: setupKind() }),
        phases: phases(true),
        big: fc.boolean(),
        muts: fc.oneof(
          { weight: 2, arbitrary: fc.constant([] as ByteMut[]) },
          { weight: 2, arbitrary: fc.array(byteMut(), { minLength: 1, maxLength: 3 }) },
        ),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        mode: fc.constant('server' as const),
        le: fc.boolean(),
        trigger: fc.constantFrom('none' as const, 'button' as const),
        phases: phases(false),
        big: fc.boolean(),
        hostile: fc.constantFrom(0 as const, 1 as const),
        setup: setupKind(),
        script: fc.array(fc.array(serverMsg(), { maxLength: 5 }), { minLength: 1, maxLength: 4 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        mode: fc.constant('join' as const),
        le: fc.boolean(),
        before: phases(false),
        after: fc.array(appReq(), { minLength: 1, maxLength: 5 }),
        hostile: fc.boolean(),
        setup: setupKind(),
        script: fc.array(serverMsg(), { maxLength: 6 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        mode: fc.constant('parse' as const),
        which: fc.constantFrom('client-setup' as const, 'server-setup' as const, 'requests' as const, 'server-messages' as const),
        le: fc.boolean(),
        big: fc.boolean(),
        bytes: fc.uint8Array({ maxLength: 120 }),
        muts: fc.array(byteMut(), { maxLength: 3 }),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
      }),
    },
  );
}

// ---------------------------------------------------------------- encoding

class Enc {
  readonly parts: Buffer[] = [];
  constructor(readonly le: boolean) {}
  u8(n: number): this {
    this.parts.push(Buffer.of(n & 0xff));
    return this;
  }
  u16(n: number): this {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(n & 0xffff);
    else b.writeUInt16BE(n & 0xffff);
    this.parts.push(b);
    return this;
  }
  u32(n: number): this {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(n >>> 0);
    else b.writeUInt32BE(n >>> 0);
    this.parts.push(b);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  pad(): this {
    const n = Buffer.concat(this.parts).length;
    if (n % 4) this.parts.push(Buffer.alloc(4 - (n % 4)));
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A request: opcode, data byte, length in 4-byte units (or 0 + a 32-bit length with `big`), body. */
function request(le: boolean, opcode: number, data: number, body: Buffer, big = false): Buffer {
  const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  const e = new Enc(le).u8(opcode).u8(data);
  if (big) e.u16(0).u32(2 + padded.length / 4);
  else e.u16(1 + padded.length / 4);
  return e.bytes(padded).done();
}

function clientSetup(le: boolean): Buffer {
  return new Enc(le)
    .u8(le ? 0x6c : 0x42)
    .u8(0)
    .u16(11)
    .u16(0)
    .u16(0)
    .u16(0)
    .u16(0)
    .done();
}

/** Bytes of one request (and whether it expects a reply). `bigOn`: BIG-REQUESTS is enabled. */
function encodeReq(le: boolean, r: AppReq, bigOn: boolean): { bytes: Buffer; reply: boolean } {
  const id = (k: number): number => MASTER.base + 0x100 + k;
  const e = (): Enc => new Enc(le);
  switch (r.r) {
    case 'intern': {
      const name = Buffer.from(r.name, 'latin1');
      return { bytes: request(le, 16, r.onlyIfExists ? 1 : 0, e().u16(name.length).u16(0).bytes(name).done()), reply: true };
    }
    case 'queryExt': {
      const name = Buffer.from(r.name, 'latin1');
      return { bytes: request(le, 98, 0, e().u16(name.length).u16(0).bytes(name).done()), reply: true };
    }
    case 'geometry':
      return {
        bytes: request(
          le,
          14,
          0,
          e()
            .u32(r.target === 0 ? MASTER.root : id(r.target))
            .done(),
        ),
        reply: true,
      };
    case 'focus':
      return { bytes: request(le, 43, 0, Buffer.alloc(0)), reply: true };
    case 'pointer':
      return { bytes: request(le, 38, 0, e().u32(MASTER.root).done()), reply: true };
    case 'kbmap':
      return { bytes: request(le, 101, 0, e().u8(8).u8(r.count).u16(0).done()), reply: true };
    case 'listFonts': {
      const p = Buffer.from(r.pattern, 'latin1');
      return { bytes: request(le, 49, 0, e().u16(10).u16(p.length).bytes(p).done()), reply: true };
    }
    case 'createWindow': {
      // value-mask bits 0..14, one 32-bit value each (pixmaps and colormaps 0 = None, cursor 0 = None)
      const mask = r.mask & 0x7fff;
      const values: number[] = [];
      for (let b = 0; b < 15; b++) if (mask & (1 << b)) values.push(b === 11 ? 0 : b);
      const body = e().u32(id(r.k)).u32(MASTER.root).u16(0).u16(0).u16(10).u16(10).u16(0).u16(1).u32(0).u32(mask);
      for (const v of values) body.u32(v);
      return { bytes: request(le, 1, 0, body.done()), reply: false };
    }
    case 'map':
      return { bytes: request(le, 8, 0, e().u32(id(r.k)).done()), reply: false };
    case 'createPixmap':
      return {
        bytes: request(
          le,
          53,
          24,
          e()
            .u32(id(r.k + 8))
            .u32(MASTER.root)
            .u16(r.w)
            .u16(r.h)
            .done(),
        ),
        reply: false,
      };
    case 'freePixmap':
      return {
        bytes: request(
          le,
          54,
          0,
          e()
            .u32(id(r.k + 8))
            .done(),
        ),
        reply: false,
      };
    case 'createGC':
      return {
        bytes: request(
          le,
          55,
          0,
          e()
            .u32(id(r.k + 16))
            .u32(MASTER.root)
            .u32(0)
            .done(),
        ),
        reply: false,
      };
    case 'changeProperty': {
      const unit = r.format / 8;
      const data = Buffer.alloc(r.items * unit, 0x41);
      return {
        bytes: request(le, 18, 0, e().u32(id(r.k)).u32(39).u32(31).u8(r.format).u8(0).u16(0).u32(r.items).bytes(data).done()),
        reply: false,
      };
    }
    case 'polyLine': {
      const body = e()
        .u32(id(r.k))
        .u32(id(r.k + 16));
      for (let i = 0; i < r.points; i++) body.u16(i).u16(i * 2);
      return { bytes: request(le, 65, 0, body.done(), r.big && bigOn), reply: false };
    }
    case 'noop':
      return { bytes: request(le, 127, 0, Buffer.alloc(4 * (r.units - 1))), reply: false };
    case 'any':
      return { bytes: request(le, r.opcode, r.data, Buffer.from(r.body)), reply: false };
  }
}

function mutate(bytes: Buffer, muts: readonly ByteMut[], le: boolean): Buffer {
  let b = Buffer.from(bytes);
  for (const m of muts) {
    const len = b.length;
    switch (m.op) {
      case 'flip':
        if (len > 0) b[m.at % len] = b[m.at % len]! ^ m.xor;
        break;
      case 'insert': {
        const at = m.at % (len + 1);
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = m.at % (len + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
        break;
      }
      case 'truncate':
        b = b.subarray(0, m.at % (len + 1));
        break;
      case 'length': {
        if (len < 4) break;
        const at = ((m.at % Math.floor(len / 4)) * 4 + 2) % (len - 1);
        if (at + 2 <= len) {
          if (le) b.writeUInt16LE(m.units & 0xffff, at);
          else b.writeUInt16BE(m.units & 0xffff, at);
        }
        if ((m.units & 0xffff) === 0 && at + 6 <= len) {
          if (le) b.writeUInt32LE(m.units >>> 0, at + 2);
          else b.writeUInt32BE(m.units >>> 0, at + 2);
        }
        break;
      }
    }
  }
  return b;
}

function cutsOf(length: number, cuts: readonly number[]): number[] {
  const s = new Set([0, length]);
  for (const c of cuts) s.add(c % (length + 1));
  return [...s].sort((a, b) => a - b);
}

function serverBytes(le: boolean, msg: ServerMsg, lastSeq: number): Buffer {
  const e = new Enc(le);
  switch (msg.m) {
    case 'event': {
      const b = Buffer.alloc(32);
      b[0] = msg.code;
      b[1] = msg.detail;
      Buffer.from(msg.body).copy(b, 4);
      if (le) b.writeUInt16LE(lastSeq & 0xffff, 2);
      else b.writeUInt16BE(lastSeq & 0xffff, 2);
      return b;
    }
    case 'reply': {
      const seq = msg.seq === 'last' ? lastSeq : msg.seq;
      const extraBytes = Math.min(msg.extra, 16) * 4;
      const b = Buffer.alloc(32 + extraBytes);
      Buffer.from(msg.body).copy(b, 8, 0, Math.min(msg.body.length, b.length - 8));
      b[0] = 1;
      b[1] = msg.detail;
      if (le) {
        b.writeUInt16LE(seq & 0xffff, 2);
        b.writeUInt32LE(msg.extra >>> 0, 4);
      } else {
        b.writeUInt16BE(seq & 0xffff, 2);
        b.writeUInt32BE(msg.extra >>> 0, 4);
      }
      return b;
    }
    case 'error':
      return e
        .u8(0)
        .u8(msg.code)
        .u16(msg.seq === 'last' ? lastSeq : msg.seq)
        .u32(0)
        .u16(0)
        .u8(1)
        .bytes(Buffer.alloc(21))
        .done();
    case 'generic':
      return e.u8(35).u8(0).u16(lastSeq).u32(msg.units).bytes(Buffer.alloc(24)).done();
    case 'raw':
      return Buffer.from(msg.bytes);
  }
}

// ---------------------------------------------------------------- running a session

const settleTurns = async (net: FakeSocketNet, max = 5000): Promise<boolean> => {
  let quiet = 0;
  for (let i = 0; i < max; i++) {
    await new Promise((r) => setImmediate(r));
    if (net.pending === 0) {
      if (++quiet >= 3) return true;
    } else quiet = 0;
  }
  return false;
};

/** What the application received: the setup reply, then replies (seq), errors (seq) and events. */
function readApp(received: Buffer[], le: boolean): { setupOk: boolean; replies: number[]; errors: number[]; malformed: boolean } {
  const all = Buffer.concat(received);
  const out = { setupOk: false, replies: [] as number[], errors: [] as number[], malformed: false };
  const size = serverSetupSize(all, le);
  if (size === null || all.length < size) return out;
  out.setupOk = all[0] === 1;
  let off = size;
  while (off + 32 <= all.length) {
    const type = all[off]!;
    const seq = le ? all.readUInt16LE(off + 2) : all.readUInt16BE(off + 2);
    let len = 32;
    if (type === 1 || (type & 0x7f) === 35) len += 4 * (le ? all.readUInt32LE(off + 4) : all.readUInt32BE(off + 4));
    if (type === 1) out.replies.push(seq);
    else if (type === 0) out.errors.push(seq);
    off += len;
  }
  if (off !== all.length) out.malformed = true;
  return out;
}

interface Plan {
  /** Request bytes per phase. */
  phases: Buffer[];
  /** App sequence numbers (1-based) of requests that expect a reply. */
  replySeqs: number[];
}

/** The honest application's requests, phase by phase; BIG-REQUESTS the way Xlib enables it. */
function plan(le: boolean, phases: AppReq[][], big: boolean): Plan {
  const out: Plan = { phases: [], replySeqs: [] };
  let seq = 0;
  const all: AppReq[][] = big
    ? [[{ r: 'queryExt', name: 'BIG-REQUESTS' }], [{ r: 'any', opcode: MASTER.bigReqOpcode, data: 0, body: new Uint8Array(0) }], ...phases]
    : phases;
  let bigOn = false;
  for (let p = 0; p < all.length; p++) {
    const bufs: Buffer[] = [];
    for (const r of all[p]!) {
      const isEnable = big && p === 1;
      const { bytes, reply } = encodeReq(le, r, bigOn);
      seq++;
      if (reply || isEnable) out.replySeqs.push(seq);
      bufs.push(bytes);
    }
    if (big && p === 1) bigOn = true;
    out.phases.push(Buffer.concat(bufs));
  }
  return out;
}

function validServerSetup(le: boolean, s: typeof MASTER): Buffer {
  return encodeServerSetup({ le, base: s.base, mask: 0x1fffff, screen: screen(s.root) });
}

/** A participant's server under the input's control: answers the setup, then sends its script. */
class HostileServer {
  readonly end: FakeSocket;
  lastSeq = 0;
  #setupDone = false;
  constructor(
    net: FakeSocketNet,
    readonly le: boolean,
    readonly setup: SetupKind,
    readonly params: typeof MASTER,
    /** Always send as many bytes as the setup reply's header announces (no wait for a setup timeout). */
    complete = false,
  ) {
    const [client, server] = net.pair();
    server.harness = true;
    this.end = server;
    this.client = client;
    server.on('data', (chunk: Buffer) => {
      if (!this.#setupDone) {
        this.#setupDone = true;
        const valid = validServerSetup(this.le, this.params);
        let bytes =
          setup.kind === 'valid' ? valid : setup.kind === 'mutated' ? mutate(valid, setup.muts, this.le) : Buffer.from(setup.bytes);
        if (complete) {
          if (bytes.length < 8) bytes = Buffer.concat([bytes, Buffer.alloc(8 - bytes.length)]);
          const size = serverSetupSize(bytes, this.le)!;
          if (bytes.length < size) bytes = Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]);
        }
        server.write(bytes);
        return;
      }
      // count requests roughly (4-byte units) to keep 'last' near the real sequence
      this.lastSeq = (this.lastSeq + Math.max(1, Math.floor(chunk.length / 16))) & 0xffff;
    });
  }
  readonly client: FakeSocket;
  send(msgs: ServerMsg[]): void {
    for (const m of msgs) this.end.write(serverBytes(this.le, m, this.lastSeq));
  }
}

interface Rig {
  net: FakeSocketNet;
  session: ApplicationSession;
  app: FakeSocket;
  upstreamSockets: FakeSocket[];
  closedReason: string | undefined;
  hostile: HostileServer | undefined;
  /** A participant that joins later: the package's fake server, or a hostile one. */
  newcomer(hostile: { setup: SetupKind } | undefined): { up: Upstream; hostile: HostileServer | undefined };
}

/**
 * A session of master + p1 on fake sockets. Timeouts are real time: generous where an honest server must
 * answer (a loaded machine can stall for a moment), short where a hostile one may stay silent.
 */
function makeRig(
  le: boolean,
  trigger: string,
  hostile: { who: 0 | 1; setup: SetupKind } | undefined,
  joinTimeoutMs = 40,
  setupTimeoutMs = 2000,
): Rig {
  const net = new FakeSocketNet();
  const upstreamSockets: FakeSocket[] = [];
  const rig = {} as Rig;
  let hostileServer: HostileServer | undefined;
  const upstream = (name: string, params: typeof MASTER, index: 0 | 1 | 2): Upstream => ({
    name,
    connect: () => {
      if (hostile && hostile.who === index) {
        hostileServer = new HostileServer(net, le, hostile.setup, params);
        upstreamSockets.push(hostileServer.client);
        return hostileServer.client.socket;
      }
      const server = new FakeXServer(name, params);
      const [client, serverEnd] = net.pair();
      serverEnd.harness = true; // the fake X server is a test helper: what it chokes on is not the session's bug
      (server as unknown as { accept(s: unknown): void }).accept(serverEnd);
      upstreamSockets.push(client);
      return client.socket;
    },
  });
  rig.newcomer = (hostileSpec) => {
    const params = { base: 0x600000, root: 0x77, atomBase: 700, bigReqOpcode: 135 };
    if (hostileSpec) {
      const h = new HostileServer(net, le, hostileSpec.setup, params, true);
      upstreamSockets.push(h.client);
      return { up: { name: 'p2', connect: () => h.client.socket }, hostile: h };
    }
    return { up: upstream('p2', params, 2 as never), hostile: undefined };
  };
  const [appClient, appServer] = net.pair();
  appClient.received = [];
  appClient.harness = true;
  const session = new ApplicationSession({
    id: 1,
    app: appServer.socket,
    upstreams: [upstream('master', MASTER, 0), upstream('p1', PARTICIPANT, 1)],
    trigger: parseFocusTrigger(trigger),
    setupTimeoutMs,
    joinTimeoutMs,
    onClose: (_s, reason) => (rig.closedReason = reason),
  });
  Object.assign(rig, { net, session, app: appClient, upstreamSockets, closedReason: undefined });
  Object.defineProperty(rig, 'hostile', { get: () => hostileServer });
  return rig;
}

async function runSession(input: Extract<X11Input, { mode: 'app' | 'server' }>): Promise<Finding[]> {
  const findings: Finding[] = [];
  const le = input.le;
  const rig = makeRig(le, input.trigger, input.mode === 'server' ? { who: input.hostile, setup: input.setup } : undefined);
  const p = plan(le, input.phases, input.big);
  let setupBytes = clientSetup(le);
  if (input.mode === 'app' && input.setup.kind === 'mutated') setupBytes = mutate(setupBytes, input.setup.muts, le);
  if (input.mode === 'app' && input.setup.kind === 'random') setupBytes = Buffer.from(input.setup.bytes);
  let settledAll = true;
  const settle = async (): Promise<void> => {
    if (!(await settleTurns(rig.net))) settledAll = false;
  };
  if (input.mode === 'app' && input.muts.length > 0) {
    // A hostile application: the whole stream at once, mutated, cut anywhere.
    const stream = mutate(Buffer.concat([setupBytes, ...p.phases]), input.muts, le);
    const bounds = cutsOf(stream.length, input.cuts);
    for (let i = 0; i + 1 < bounds.length; i++) {
      rig.app.write(stream.subarray(bounds[i], bounds[i + 1]));
      if (i % 2 === 1) await settle();
    }
    await settle();
  } else {
    rig.app.write(setupBytes);
    await settle();
    for (let i = 0; i < p.phases.length; i++) {
      rig.app.write(p.phases[i]!);
      if (input.mode === 'server') rig.hostile?.send(input.script[i % input.script.length] ?? []);
      await settle();
    }
  }
  const honest =
    input.setup.kind === 'valid' &&
    ((input.mode === 'app' && input.muts.length === 0 && !input.phases.some((ph) => ph.some((r) => r.r === 'any'))) ||
      (input.mode === 'server' && input.hostile === 1 && input.trigger === 'none'));
  if (!settledAll)
    findings.push({
      kind: 'hang',
      signature: 'session never quiet',
      message: 'the fake sockets still had deliveries in flight after 5000 event-loop turns',
    });
  if (honest && settledAll) {
    const seen = readApp(rig.app.received!, le);
    const closed = rig.session.isClosed;
    if (closed) {
      findings.push({
        kind: 'honest-failure',
        signature: `honest application's session closed: ${normalise(rig.closedReason ?? '')}`,
        message: `the session of an application that sent only valid requests closed: ${rig.closedReason}`,
      });
    } else if (!seen.setupOk) {
      findings.push({
        kind: 'honest-failure',
        signature: 'honest application got no setup reply',
        message: 'no successful setup reply reached the application',
      });
    } else {
      const want = p.replySeqs.map((s) => s & 0xffff);
      if (seen.malformed)
        findings.push({
          kind: 'honest-failure',
          signature: 'application received a malformed stream',
          message: 'what the application received does not frame as X11 messages',
        });
      if (seen.replies.join(',') !== want.join(',')) {
        findings.push({
          kind: 'honest-failure',
          signature: 'replies missing, duplicated or out of order',
          message: `replies for sequence numbers [${seen.replies.join(',')}], expected [${want.join(',')}]`,
        });
      }
      if (seen.errors.length > 0)
        findings.push({
          kind: 'honest-failure',
          signature: 'errors for valid requests',
          message: `errors for sequence numbers [${seen.errors.join(',')}]`,
        });
    }
  }
  // The application leaves: the session must close, and with it every server connection.
  rig.app.destroy();
  await settle();
  // (While the servers' setup replies are awaited, their connections close when setupTimeoutMs passes.)
  const setupForwarded = readApp(rig.app.received!, le).setupOk;
  if (!rig.session.isClosed)
    findings.push({
      kind: 'violation',
      signature: 'session outlives its application',
      message: 'the application disconnected but its session is still open',
    });
  else if (setupForwarded && rig.upstreamSockets.some((s) => !s.destroyed)) {
    findings.push({
      kind: 'violation',
      signature: 'server connection left open after the session closed',
      message: `${rig.upstreamSockets.filter((s) => !s.destroyed).length} upstream sockets still open`,
    });
  }
  const err = rig.session.lastError;
  if (err && err.name !== 'XProtocolError') findings.push(crashFinding('session error', err));
  for (const e of rig.net.listenerErrors) findings.push(crashFinding('exception in a socket listener', e));
  return findings;
}

async function runJoin(input: Extract<X11Input, { mode: 'join' }>): Promise<Finding[]> {
  const findings: Finding[] = [];
  const le = input.le;
  // A hostile newcomer may never answer the join's requests: its join times out after 10 ms; an honest one
  // has 2 s (a loaded machine). Its setup reply is always complete (a silent setup costs a setup timeout:
  // that path is the `server` mode's), so the setup timeout stays long for the honest servers.
  const joinTimeoutMs = input.hostile ? 10 : 2000;
  const setupTimeoutMs = 2000;
  const rig = makeRig(le, 'none', undefined, joinTimeoutMs, setupTimeoutMs);
  const p = plan(le, [...input.before, input.after], false);
  let settledAll = true;
  const settle = async (): Promise<void> => {
    if (!(await settleTurns(rig.net))) settledAll = false;
  };
  rig.app.write(clientSetup(le));
  await settle();
  for (let i = 0; i < p.phases.length - 1; i++) {
    rig.app.write(p.phases[i]!);
    await settle();
  }
  // A participant joins the running application (the package's fake server, or a hostile one).
  const { up, hostile } = rig.newcomer(input.hostile ? { setup: input.setup } : undefined);
  let joined: { ok: boolean; err?: Error } | undefined;
  rig.session.addParticipant(up).then(
    () => (joined = { ok: true }),
    (err: Error) => (joined = { ok: false, err }),
  );
  await settle();
  hostile?.send(input.script);
  // The application goes on while the newcomer joins.
  rig.app.write(p.phases[p.phases.length - 1]!);
  await settle();
  for (const deadline = Date.now() + Math.max(joinTimeoutMs, setupTimeoutMs) + 200; joined === undefined && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 2)); // the join's own timeout is in real time
    await settle();
  }
  if (!settledAll)
    findings.push({ kind: 'hang', signature: 'session never quiet', message: 'deliveries still in flight after 5000 event-loop turns' });
  if (joined === undefined)
    findings.push({
      kind: 'hang',
      signature: 'late join never settled',
      message: `addParticipant neither resolved nor rejected within its ${Math.max(joinTimeoutMs, setupTimeoutMs)} ms timeouts (+200 ms)`,
    });
  else if (!joined.ok && !input.hostile)
    findings.push({
      kind: 'honest-failure',
      signature: `late join of an honest server failed: ${normalise(joined.err?.message ?? '')}`,
      message: `addParticipant failed: ${joined.err?.message}`,
    });
  if (settledAll) {
    const seen = readApp(rig.app.received!, le);
    if (rig.session.isClosed) {
      findings.push({
        kind: 'honest-failure',
        signature: `session closed by a late join: ${normalise(rig.closedReason ?? '')}`,
        message: `the honest application's session closed while ${input.hostile ? 'a hostile' : 'an honest'} participant joined: ${rig.closedReason}`,
      });
    } else {
      const want = p.replySeqs.map((s) => s & 0xffff);
      if (seen.replies.join(',') !== want.join(','))
        findings.push({
          kind: 'honest-failure',
          signature: 'replies missing, duplicated or out of order around a late join',
          message: `replies [${seen.replies.join(',')}], expected [${want.join(',')}]`,
        });
      if (seen.errors.length > 0)
        findings.push({
          kind: 'honest-failure',
          signature: 'errors for valid requests around a late join',
          message: `errors for [${seen.errors.join(',')}]`,
        });
    }
  }
  rig.app.destroy();
  await settle();
  if (!rig.session.isClosed)
    findings.push({
      kind: 'violation',
      signature: 'session outlives its application',
      message: 'the application disconnected but its session is still open',
    });
  for (const e of rig.net.listenerErrors) findings.push(crashFinding('exception in a socket listener', e));
  return findings;
}

function runParse(input: Extract<X11Input, { mode: 'parse' }>): Finding[] {
  const findings: Finding[] = [];
  const le = input.le;
  const base =
    input.which === 'client-setup'
      ? Buffer.concat([clientSetup(le), Buffer.from(input.bytes)])
      : input.which === 'server-setup'
        ? validServerSetup(le, MASTER)
        : Buffer.from(input.bytes);
  const bytes = input.muts.length > 0 || input.which !== 'server-setup' ? mutate(base, input.muts, le) : base;
  const allowed = (where: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if ((err as Error)?.name !== 'XProtocolError') findings.push(crashFinding(where, err));
    }
  };
  switch (input.which) {
    case 'client-setup':
      allowed('parseClientSetup', () => {
        const s = parseClientSetup(bytes);
        if (s && s.size > bytes.length)
          findings.push({
            kind: 'violation',
            signature: 'client setup larger than its bytes',
            message: `size ${s.size} > ${bytes.length}`,
          });
      });
      break;
    case 'server-setup':
      allowed('parseServerSetup', () => {
        const size = serverSetupSize(bytes, le);
        if (size !== null && size <= bytes.length) parseServerSetup(bytes, le);
      });
      break;
    case 'requests':
    case 'server-messages': {
      const framer = input.which === 'requests' ? new RequestFramer(le, 4096) : new ServerMessageFramer(le, 4096);
      if (framer instanceof RequestFramer) framer.bigRequests = input.big;
      const bounds = cutsOf(bytes.length, input.cuts);
      let total = 0;
      allowed(input.which === 'requests' ? 'RequestFramer' : 'ServerMessageFramer', () => {
        for (let i = 0; i + 1 < bounds.length; i++) {
          framer.push(bytes.subarray(bounds[i], bounds[i + 1]), (m) => {
            total += m.length;
            let want: number;
            if (input.which === 'requests') {
              const units = le ? m.readUInt16LE(2) : m.readUInt16BE(2);
              want = units !== 0 ? units * 4 : (le ? m.readUInt32LE(4) : m.readUInt32BE(4)) * 4;
            } else {
              want = m[0] === 1 || (m[0]! & 0x7f) === 35 ? 32 + 4 * (le ? m.readUInt32LE(4) : m.readUInt32BE(4)) : 32;
            }
            if (m.length !== want)
              findings.push({
                kind: 'violation',
                signature: `${input.which}: message of the wrong size`,
                message: `framed ${m.length} bytes, its header says ${want}`,
              });
          });
        }
      });
      if (total + framer.pending > bytes.length)
        findings.push({
          kind: 'violation',
          signature: `${input.which}: more bytes out than in`,
          message: `${total} framed + ${framer.pending} pending > ${bytes.length}`,
        });
      break;
    }
  }
  return findings;
}

export function x11Target(): FuzzTarget<X11Input, null> {
  return {
    name: 'x11',
    description: 'X11 parsers and the conference session (@tandem/xconference)',
    honest: true,
    state: false,
    stateful: false,
    arbitrary: () => arbitrary(),
    setup: async () => null,
    async run(_w, input): Promise<InputOutcome> {
      const findings = input.mode === 'parse' ? runParse(input) : input.mode === 'join' ? await runJoin(input) : await runSession(input);
      return { findings };
    },
    async teardown() {},
  };
}
