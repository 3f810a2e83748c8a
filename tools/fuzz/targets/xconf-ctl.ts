/**
 * Target `xconf-ctl`: the `tandem-xconf ctl` protocol (apps/xconf/src/ctl-protocol.ts) served by its real
 * ctl server (ctl-server.ts) on a unix socket in a private temporary directory. Behind the server stands a
 * model daemon that records every request handed to it and answers (results, CtlErrors, plain errors,
 * after a delay or at once) — the real daemon would start X servers and launch programs.
 *
 * An input opens one or two connections and writes lines: requests of every command (generated from the
 * zod schema, with hostile values: tokens, huge ids, maximal strings), the same with fields deleted,
 * retyped or added, JSON that is not a request, garbage, UTF-8 cut in the middle of a character, blank
 * lines, CRLF, lines just under and over MAX_LINE_BYTES, floods of more requests than one connection may
 * have waiting — in chunks split anywhere, the connection then left open, ended or destroyed. Checks:
 * - every reply line is valid per ctlReplySchema; one reply per request line, in order, with its id
 *   (violation otherwise);
 * - the daemon is handed exactly the lines that are valid requests, parsed (state changed otherwise: the
 *   daemon acted on something it should not have), and nothing after the server said it closes the
 *   connection;
 * - a line longer than MAX_LINE_BYTES is refused with `bad-request` and the connection closed (violation);
 * - the connection settles (all replies, or closed) within a bound (hang); the server survives (crash).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  CtlError,
  ctlReplySchema,
  ctlRequestSchema,
  MAX_LINE_BYTES,
  parseCtlRequest,
  type CtlRequest,
} from '../../../apps/xconf/src/ctl-protocol.js';
import { startCtlServer, type CtlServer } from '../../../apps/xconf/src/ctl-server.js';
import { crashFinding } from '../lib/async-errors.js';
import type { Finding, FuzzTarget, InputOutcome } from '../lib/types.js';
import { anyValue, mutateValue, valueMutation, zodArbitrary, type ValueMutation } from '../lib/zod-arb.js';

/** Requests one connection may have waiting (ctl-server.ts). */
const MAX_PENDING = 64;

type Line =
  | { l: 'req'; m: unknown; mut: ValueMutation[] }
  | { l: 'json'; v: unknown }
  | { l: 'text'; s: string }
  | { l: 'bytes'; b: Uint8Array }
  | { l: 'long'; over: number }
  | { l: 'blank'; s: string };

export interface CtlInput {
  conns: {
    lines: Line[];
    crlf: boolean;
    /** Extra copies of the first line (a flood), written in one chunk. */
    flood: number;
    cuts: number[];
    /** After writing: leave open and read everything, end (half-close), or destroy at once. */
    ending: 'read' | 'end' | 'destroy';
    /** No newline after the last line. */
    unterminated: boolean;
  }[];
}

function arbitrary(): fc.Arbitrary<CtlInput> {
  const hints = {
    token: fc.constantFrom('alice-secret', '', 'x'.repeat(1024), 'x'.repeat(1025)),
    conference: fc.constantFrom('main', 'boom', 'denied', 'slow', '', 'x'.repeat(64), 'x'.repeat(65)),
    participant: fc.constantFrom('alice', 'bob', ''),
    id: fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 53, 1e300, 0.5)),
  };
  const request = zodArbitrary(ctlRequestSchema, hints);
  const line: fc.Arbitrary<Line> = fc.oneof(
    { weight: 30, arbitrary: fc.record({ l: fc.constant('req' as const), m: request, mut: fc.constant([] as ValueMutation[]) }) },
    {
      weight: 12,
      arbitrary: fc.record({ l: fc.constant('req' as const), m: request, mut: fc.array(valueMutation, { minLength: 1, maxLength: 2 }) }),
    },
    { weight: 6, arbitrary: fc.record({ l: fc.constant('json' as const), v: anyValue }) },
    { weight: 6, arbitrary: fc.record({ l: fc.constant('text' as const), s: fc.string({ maxLength: 30 }) }) },
    { weight: 3, arbitrary: fc.record({ l: fc.constant('bytes' as const), b: fc.uint8Array({ maxLength: 30 }) }) },
    // (64 KiB each: rarer, so that one input stays cheap)
    { weight: 1, arbitrary: fc.record({ l: fc.constant('long' as const), over: fc.constantFrom(-2, -1, 1, 2, 4000, 70_000) }) },
    { weight: 3, arbitrary: fc.record({ l: fc.constant('blank' as const), s: fc.constantFrom('', ' ', '\t', '\r') }) },
  );
  return fc.record({
    conns: fc.array(
      fc.record({
        lines: fc.array(line, { minLength: 1, maxLength: 8 }),
        crlf: fc.boolean(),
        flood: fc.oneof(
          { weight: 12, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.constantFrom(MAX_PENDING - 2, MAX_PENDING, MAX_PENDING + 5) },
        ),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
        ending: fc.constantFrom('read' as const, 'read' as const, 'read' as const, 'end' as const, 'destroy' as const),
        unterminated: fc.boolean(),
      }),
      { minLength: 1, maxLength: 2 },
    ),
  });
}

/** The bytes of one line (without its newline). */
function lineBytes(l: Line): Buffer {
  switch (l.l) {
    case 'req': {
      const v = l.mut.length > 0 ? mutateValue(l.m, l.mut) : l.m;
      return Buffer.from(JSON.stringify(v) ?? 'null');
    }
    case 'json':
      return Buffer.from(safeJson(l.v));
    case 'text':
      return Buffer.from(l.s.replace(/\n/g, ' '));
    case 'bytes':
      return Buffer.from(Buffer.from(l.b).toString('latin1').replace(/\n/g, ' '), 'latin1');
    case 'long': {
      // A valid request padded with spaces (inside the JSON) to MAX_LINE_BYTES + over bytes.
      const core = '{"id":77,"cmd":"list"}';
      return Buffer.from(`${core.slice(0, -1)}${' '.repeat(Math.max(0, MAX_LINE_BYTES + l.over - core.length))}}`);
    }
    case 'blank':
      return Buffer.from(l.s);
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x instanceof Uint8Array ? [...x] : x)) ?? 'null';
  } catch {
    return '"?"';
  }
}

// ---------------------------------------------------------------- the model daemon

interface World {
  dir: string;
  path: string;
  server: CtlServer;
  /** An honest user's connection, kept across inputs. */
  honest: { sock: Socket; buf: string; next: number; waiting: ((line: string) => void) | undefined } | undefined;
  /** Requests the daemon was handed, per connection tag. */
  calls: CtlRequest[];
  logs: string[];
}

async function handler(this: World, req: CtlRequest): Promise<unknown> {
  this.calls.push(req);
  const conf = 'conference' in req ? req.conference : '';
  if (conf === 'slow') await new Promise((r) => setImmediate(r));
  else await Promise.resolve();
  if (conf === 'boom') throw new Error('the daemon failed');
  if (conf === 'denied') throw new CtlError('unauthorised', 'no');
  if (req.cmd === 'list') return { conferences: [] };
  return { done: req.cmd };
}

async function setup(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-fuzz-ctl-'));
  const path = join(dir, 'ctl.sock');
  const world = { dir, path, calls: [], logs: [] } as unknown as World;
  world.server = await startCtlServer(path, handler.bind(world), (l) => void world.logs.push(l));
  return world;
}

/** One `list` on the honest user's connection (opened again if it was closed): true when answered ok. */
async function honestList(w: World): Promise<boolean> {
  if (w.honest === undefined || w.honest.sock.destroyed) {
    const sock = connect(w.path);
    const h = { sock, buf: '', next: 1, waiting: undefined as ((line: string) => void) | undefined };
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      h.buf += d.toString();
      let i: number;
      while ((i = h.buf.indexOf('\n')) >= 0) {
        const line = h.buf.slice(0, i);
        h.buf = h.buf.slice(i + 1);
        h.waiting?.(line);
      }
    });
    w.honest = h;
  }
  const h = w.honest;
  const id = h.next++;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      h.waiting = undefined;
      h.sock.destroy();
      resolve(false);
    }, 2000);
    h.waiting = (line) => {
      clearTimeout(timer);
      h.waiting = undefined;
      resolve(line === JSON.stringify({ id, ok: true, result: { conferences: [] } }));
    };
    h.sock.write(`{"id":${id},"cmd":"list"}\n`);
  });
}

async function teardown(w: World): Promise<void> {
  w.honest?.sock.destroy();
  await w.server.close().catch(() => undefined);
  rmSync(w.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- one connection

interface Expect {
  /** Expected reply per request line: the parsed request (valid) or undefined (bad-request). */
  lines: { raw: string; req: CtlRequest | undefined; tooLong: boolean }[];
}

/** What the server should make of the bytes (the protocol, read independently of ctl-server.ts). */
function expected(bytes: Buffer): Expect {
  const text = bytes.toString('utf8');
  const out: Expect = { lines: [] };
  const parts = text.split('\n');
  const rest = parts.pop()!; // an unterminated rest is no request…
  for (const p of parts) {
    // (a line's length counts every byte between newlines, a CR and blanks included)
    const tooLong = Buffer.byteLength(p) > MAX_LINE_BYTES;
    const line = p.trim();
    if (!line && !tooLong) continue;
    let req: CtlRequest | undefined;
    if (!tooLong) {
      try {
        req = parseCtlRequest(line);
      } catch {
        req = undefined;
      }
    }
    out.lines.push({ raw: line, req, tooLong });
    if (tooLong) return out; // the connection closes
  }
  // …but one longer than the limit is refused at once.
  if (Buffer.byteLength(rest) > MAX_LINE_BYTES) out.lines.push({ raw: rest, req: undefined, tooLong: true });
  return out;
}

async function exchange(w: World, c: CtlInput['conns'][number], findings: Finding[]): Promise<void> {
  const nl = c.crlf ? '\r\n' : '\n';
  const lines = c.lines.map(lineBytes);
  const first = lines[0]!;
  const flood = Array.from({ length: c.flood }, () => first);
  const all = [...flood, ...lines];
  let bytes = Buffer.concat(all.flatMap((b, i) => (i === all.length - 1 && c.unterminated ? [b] : [b, Buffer.from(nl)])));
  if (c.unterminated) bytes = Buffer.concat([bytes]);
  const exp = expected(bytes);
  const callsBefore = w.calls.length;

  const sock: Socket = connect(w.path);
  const replies: unknown[] = [];
  let text = '';
  let closed = false;
  let bad = false;
  let wake: (() => void) | undefined;
  const event = (): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50);
    });
  await new Promise<void>((resolve) => {
    sock.once('connect', resolve);
    sock.once('error', () => resolve());
  });
  sock.on('error', () => undefined);
  sock.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    let i: number;
    while ((i = text.indexOf('\n')) >= 0) {
      const l = text.slice(0, i);
      text = text.slice(i + 1);
      try {
        replies.push(ctlReplySchema.parse(JSON.parse(l)));
      } catch {
        bad = true;
        replies.push(undefined);
      }
    }
    wake?.();
  });
  const done = new Promise<void>((resolve) => sock.once('close', () => ((closed = true), wake?.(), resolve())));
  const bounds = [...new Set([0, bytes.length, ...c.cuts.map((x) => x % (bytes.length + 1))])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < bounds.length; i++) {
    if (sock.destroyed) break;
    sock.write(bytes.subarray(bounds[i], bounds[i + 1]));
    if (i % 2 === 1) await new Promise((r) => setImmediate(r));
  }
  const expectAll = exp.lines.length;
  const longLine = exp.lines.some((l) => l.tooLong);
  const floodMode = c.flood > 0;
  let complete = false;
  if (c.ending === 'destroy') {
    sock.destroy();
    await done;
  } else {
    if (c.ending === 'end') sock.end();
    const deadline = Date.now() + 2000;
    while (!closed && replies.length < expectAll && Date.now() < deadline) await event();
    complete = replies.length >= expectAll && !closed;
    if (!closed && replies.length < expectAll && !floodMode) {
      findings.push({
        kind: 'hang',
        signature: 'replies missing after 2 s',
        message: `${replies.length} replies to ${expectAll} request lines within 2 s`,
      });
    }
    sock.destroy();
  }
  // Unless every reply came, the server may still be working through what this connection sent (or
  // sending more than it should): wait until it is quiet.
  if (complete && !longLine && !floodMode) await new Promise((r) => setImmediate(r));
  else {
    for (let i = 0, n = -1, same = 0; i < 200 && same < 2; i++) {
      same = n === w.calls.length + replies.length ? same + 1 : 0;
      n = w.calls.length + replies.length;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  if (bad)
    findings.push({
      kind: 'violation',
      signature: 'reply line is not a valid ctl reply',
      message: 'the server wrote a line that does not parse as a ctl reply',
    });

  const calls = w.calls.slice(callsBefore);
  const valid = exp.lines.filter((l) => l.req !== undefined).map((l) => JSON.stringify(l.req));
  const got = calls.map((r) => JSON.stringify(r));
  // The daemon acts only on valid request lines, in order — never on a line past one that closed the connection.
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== valid[i]) {
      findings.push({
        kind: 'state-changed',
        signature:
          longLine && i >= valid.length - exp.lines.filter((l) => l.tooLong).length
            ? 'daemon acted on a request after an over-long line'
            : 'daemon handed a request that was not sent (or out of order)',
        message: `request ${i} handed to the daemon: ${got[i]?.slice(0, 200)}; expected ${valid[i]?.slice(0, 200) ?? 'none'}`,
      });
      break;
    }
  }
  if (c.ending === 'destroy' || floodMode) return; // replies and calls cut short: only the checks above apply
  if (got.length < valid.length && !longLine) {
    findings.push({
      kind: 'violation',
      signature: 'valid request not handed to the daemon',
      message: `${got.length} of ${valid.length} valid requests reached the daemon`,
    });
  }
  // One reply per request line, in order, with the request's id; bad-request for invalid or over-long lines.
  const n = Math.min(replies.length, exp.lines.length);
  for (let i = 0; i < n; i++) {
    const r = replies[i] as { id?: number; ok: boolean; error?: { code: string; message: string } } | undefined;
    const e = exp.lines[i]!;
    if (r === undefined) continue;
    if (e.tooLong) {
      if (r.ok || r.error?.code !== 'bad-request')
        findings.push({
          kind: 'violation',
          signature: 'over-long line not refused',
          message: `a line of ${Buffer.byteLength(e.raw)} bytes (limit ${MAX_LINE_BYTES}) got ${JSON.stringify(r).slice(0, 200)}`,
        });
      continue;
    }
    if (e.req === undefined && (r.ok || r.error?.code !== 'bad-request')) {
      findings.push({
        kind: 'violation',
        signature: 'invalid line not refused with bad-request',
        message: `line ${JSON.stringify(e.raw.slice(0, 100))} got ${JSON.stringify(r).slice(0, 200)}`,
      });
    }
    if (e.req !== undefined && e.req.id !== undefined && r.id !== e.req.id) {
      findings.push({
        kind: 'violation',
        signature: 'reply with the wrong id (out of order?)',
        message: `reply ${i} has id ${r.id}, its request ${e.req.id}`,
      });
    }
  }
  if (replies.length > exp.lines.length)
    findings.push({
      kind: 'violation',
      signature: 'more replies than request lines',
      message: `${replies.length} replies to ${exp.lines.length} request lines`,
    });
  if (longLine) {
    if (!closed)
      findings.push({
        kind: 'violation',
        signature: 'connection kept open after an over-long line',
        message: 'the server did not close the connection after refusing an over-long line',
      });
    if (replies.length < exp.lines.length)
      findings.push({
        kind: 'violation',
        signature: 'over-long line not answered',
        message: `${replies.length} replies, ${exp.lines.length} lines up to and including the over-long one`,
      });
  } else if (c.ending === 'read' && replies.length < exp.lines.length) {
    // (hang already reported)
  }
}

async function run(w: World, input: CtlInput): Promise<InputOutcome> {
  const findings: Finding[] = [];
  for (const c of input.conns) {
    try {
      await exchange(w, c, findings);
    } catch (err) {
      findings.push(crashFinding('ctl exchange', err));
    }
  }
  // The server must still answer an honest user: a valid request on its long-lived connection.
  const alive = await honestList(w);
  if (!alive)
    findings.push({
      kind: 'honest-failure',
      signature: 'ctl server stopped answering',
      message: 'an honest connection sending a valid list request got no ok reply within 2 s',
    });
  const seen = new Set<string>();
  return { findings: findings.filter((f) => (seen.has(f.signature) ? false : (seen.add(f.signature), true))), broken: !alive };
}

export function xconfCtlTarget(): FuzzTarget<CtlInput, World> {
  return {
    name: 'xconf-ctl',
    description: 'the tandem-xconf ctl protocol and server (apps/xconf ctl-protocol.ts, ctl-server.ts) on a unix socket',
    honest: true,
    state: true,
    stateful: true,
    arbitrary: () => arbitrary(),
    setup,
    run,
    teardown,
  };
}
