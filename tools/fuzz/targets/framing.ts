/**
 * Target `framing`: the stream framing decoder of @tandem/transport (framing.ts), which every byte-stream
 * adapter (TCP, TLS, raw memory pipes) runs on untrusted bytes.
 *
 * An input is a list of messages encoded as frames (optionally behind the preamble), then mutated (bit
 * flips, insertions, deletions, truncation, rewritten length headers — small, at the limit, just over it,
 * up to 0xffffffff) or replaced by random bytes, and cut into chunks at random points. It is decoded with
 * `push` (and, at random, with the `partialRest`/`filled` in-place path a socket reader uses), chunks
 * coming from one reused buffer when `reusedChunks` is set, and compared with a reference decoder written
 * here from the format's definition:
 * - the only exceptions allowed are ProtocolError and MessageTooLargeError, and exactly where the reference
 *   says the stream breaks (anything else: crash; a missed or spurious error: violation);
 * - every frame that completed before the break decodes to exactly its bytes, in order (else: honest
 *   failure — the frames are the honest sender's), and stays intact when the chunk buffer is reused;
 * - no allocation larger than the message limit, ever (every `new Uint8Array(n)` made while decoding is
 *   metered; an oversized length header must be refused before allocating): violation;
 * - `finish()` throws ProtocolError exactly when the stream stopped inside the preamble, a header or a
 *   message.
 */
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, FrameDecoder, MAX_FRAME_LENGTH, STREAM_PREAMBLE, type FrameDecoderOptions } from '@tandem/transport';
import { crashFinding, normalise } from '../lib/async-errors.js';
import type { Finding, FuzzTarget, InputOutcome, TargetOptions } from '../lib/types.js';
import { brokenDecoder } from './framing-broken.js';

/** What the target drives: FrameDecoder's interface (a test can hand in a broken one). */
export interface DecoderLike {
  push(chunk: Uint8Array): Uint8Array[];
  finish(): void;
  partialRest(): Uint8Array | undefined;
  filled(n: number): Uint8Array | undefined;
  readonly bufferedBytes: number;
}
export type DecoderFactory = (options: FrameDecoderOptions) => DecoderLike;

type LengthValue = { rel: 'max'; d: number } | { abs: number };
type Mutation =
  | { op: 'flip'; at: number; xor: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'truncate'; at: number }
  | { op: 'length'; frame: number; value: LengthValue };

export interface FramingInput {
  maxMessageSize: number;
  expectPreamble: boolean;
  reusedChunks: boolean;
  /** Fill partial messages through partialRest()/filled() (what a socket reading in place does). */
  directFill: boolean;
  callFinish: boolean;
  /** Random bytes instead of frames (then mutations apply to them). */
  random: Uint8Array | null;
  messages: Uint8Array[];
  mutations: Mutation[];
  cuts: number[];
}

const LIMITS = [0, 1, 3, 4, 5, 64, 1000, 65_536, 16 * 1024 * 1024];
/** Largest legitimate allocation a test input may cause (keeps one input cheap). */
const MAX_ALLOWED_ALLOC = 2 * 1024 * 1024;

function arbitrary(): fc.Arbitrary<FramingInput> {
  const bytes = (max: number) => fc.uint8Array({ maxLength: max });
  const message = fc.oneof(
    { weight: 8, arbitrary: bytes(24) },
    { weight: 2, arbitrary: bytes(300) },
    { weight: 1, arbitrary: bytes(5000) },
  );
  const lengthValue: fc.Arbitrary<LengthValue> = fc.oneof(
    fc.record({ rel: fc.constant('max' as const), d: fc.integer({ min: -2, max: 3 }) }),
    fc.record({
      abs: fc.oneof(fc.nat(64), fc.constantFrom(MAX_FRAME_LENGTH, 0x8000_0000, 0x7fff_ffff, 0x0100_0000, 0x0100_0001, 0x00ff_ffff)),
    }),
  );
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 9 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('length' as const), frame: fc.nat(16), value: lengthValue }),
  );
  return fc.record({
    maxMessageSize: fc.constantFrom(...LIMITS),
    expectPreamble: fc.boolean(),
    reusedChunks: fc.boolean(),
    directFill: fc.boolean(),
    callFinish: fc.boolean(),
    random: fc.option(bytes(64), { freq: 6 }),
    messages: fc.array(message, { maxLength: 8 }),
    mutations: fc.oneof(
      { weight: 2, arbitrary: fc.constant([] as Mutation[]) },
      { weight: 5, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
    ),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
  });
}

/** The encoded stream, mutated; and where each frame's header starts (for `length` mutations). */
export function buildStream(input: FramingInput): Uint8Array {
  const parts: number[] = [];
  const headers: number[] = [];
  if (input.random) {
    parts.push(...input.random);
  } else {
    if (input.expectPreamble) parts.push(...STREAM_PREAMBLE);
    for (const m of input.messages) {
      headers.push(parts.length);
      const n = m.length;
      parts.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, ...m);
    }
  }
  let bytes = parts;
  for (const mu of input.mutations) {
    const len = bytes.length;
    switch (mu.op) {
      case 'flip':
        if (len > 0) bytes[mu.at % len] = bytes[mu.at % len]! ^ mu.xor;
        break;
      case 'insert': {
        const at = mu.at % (len + 1);
        bytes = [...bytes.slice(0, at), ...mu.bytes, ...bytes.slice(at)];
        break;
      }
      case 'delete': {
        const at = mu.at % (len + 1);
        bytes = [...bytes.slice(0, at), ...bytes.slice(at + mu.len)];
        break;
      }
      case 'truncate':
        bytes = bytes.slice(0, mu.at % (len + 1));
        break;
      case 'length': {
        if (headers.length === 0) break;
        const at = headers[mu.frame % headers.length]!;
        if (at + 4 > bytes.length) break;
        const max = Math.min(input.maxMessageSize, MAX_FRAME_LENGTH);
        let v = 'abs' in mu.value ? mu.value.abs : max + mu.value.d;
        // A legitimate length up to a big limit would allocate that much: keep inputs cheap.
        if (v <= max && v > MAX_ALLOWED_ALLOC) v = max + 1;
        v = Math.max(0, Math.min(MAX_FRAME_LENGTH, v));
        bytes[at] = (v >>> 24) & 0xff;
        bytes[at + 1] = (v >>> 16) & 0xff;
        bytes[at + 2] = (v >>> 8) & 0xff;
        bytes[at + 3] = v & 0xff;
        break;
      }
    }
  }
  return Uint8Array.from(bytes);
}

interface Expected {
  /** Frames, with the offset one past each frame's last byte. */
  frames: { end: number; bytes: Uint8Array }[];
  /** The byte whose arrival breaks the stream, and the error then due. */
  error?: { at: number; name: 'ProtocolError' | 'MessageTooLargeError' };
  /** The stream ends inside the preamble (after ≥ 1 byte of it), a header or a message. */
  midFrame: boolean;
}

/** The reference decoder: the framing format, read in one pass over the whole stream. */
export function referenceDecode(stream: Uint8Array, maxMessageSize: number, expectPreamble: boolean): Expected {
  const max = Math.min(maxMessageSize, MAX_FRAME_LENGTH);
  const frames: Expected['frames'] = [];
  let pos = 0;
  if (expectPreamble) {
    for (let i = 0; i < STREAM_PREAMBLE.length; i++) {
      if (pos >= stream.length) return { frames, midFrame: i > 0 };
      if (stream[pos] !== STREAM_PREAMBLE[i]) return { frames, error: { at: pos, name: 'ProtocolError' }, midFrame: false };
      pos++;
    }
  }
  for (;;) {
    if (pos === stream.length) return { frames, midFrame: false };
    if (stream.length - pos < FRAME_HEADER_BYTES) return { frames, midFrame: true };
    const length = ((stream[pos]! << 24) | (stream[pos + 1]! << 16) | (stream[pos + 2]! << 8) | stream[pos + 3]!) >>> 0;
    if (length > max) return { frames, error: { at: pos + 3, name: 'MessageTooLargeError' }, midFrame: false };
    if (stream.length - pos - 4 < length) return { frames, midFrame: true };
    frames.push({ end: pos + 4 + length, bytes: stream.subarray(pos + 4, pos + 4 + length) });
    pos += 4 + length;
  }
}

// ---- allocation metering: every `new Uint8Array(n)` made while the decoder runs ---------------------

const RealUint8Array = Uint8Array;
let meter: { max: number; limit: number } | undefined;

/** Thrown instead of allocating far more than any message may be (the violation is reported). */
class AllocationBomb extends Error {
  override name = 'AllocationBomb';
}

class MeteredUint8Array extends RealUint8Array {
  constructor(...args: unknown[]) {
    const n = args[0];
    if (typeof n === 'number' && meter) {
      if (n > meter.max) meter.max = n;
      if (n > meter.limit + 64 * 1024 * 1024) throw new AllocationBomb(`new Uint8Array(${n}) while decoding`);
    }
    super(...(args as []));
  }
}

function metered<T>(limit: number, fn: () => T): { value?: T; error?: unknown; maxAlloc: number } {
  meter = { max: 0, limit };
  (globalThis as { Uint8Array: typeof Uint8Array }).Uint8Array = MeteredUint8Array;
  try {
    return { value: fn(), maxAlloc: meter.max };
  } catch (error) {
    return { error, maxAlloc: meter.max };
  } finally {
    (globalThis as { Uint8Array: typeof Uint8Array }).Uint8Array = RealUint8Array;
    meter = undefined;
  }
}

// ---- the target ------------------------------------------------------------------------------------

const TYPED = new Set(['ProtocolError', 'MessageTooLargeError']);

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function chunkBounds(length: number, cuts: readonly number[]): number[] {
  const set = new Set<number>([0, length]);
  for (const c of cuts) set.add(c % (length + 1));
  return [...set].sort((a, b) => a - b);
}

export function runFramingInput(input: FramingInput, create: DecoderFactory): Finding[] {
  const findings: Finding[] = [];
  const stream = buildStream(input);
  const expected = referenceDecode(stream, input.maxMessageSize, input.expectPreamble);
  const limit = Math.min(input.maxMessageSize, MAX_FRAME_LENGTH);
  const options: FrameDecoderOptions = {
    maxMessageSize: input.maxMessageSize,
    expectPreamble: input.expectPreamble,
    reusedChunks: input.reusedChunks,
  };
  let decoder: DecoderLike;
  try {
    decoder = create(options);
  } catch (err) {
    return [crashFinding('FrameDecoder constructor', err)];
  }
  const got: Uint8Array[] = [];
  const bounds = chunkBounds(stream.length, input.cuts);
  // With reusedChunks every chunk is copied into one scratch buffer, overwritten after the push.
  const scratch = new RealUint8Array(stream.length + 16);
  let thrown: { error: unknown; chunkStart: number; chunkEnd: number } | undefined;
  let maxAlloc = 0;

  const step = (fn: () => Uint8Array[] | Uint8Array | undefined): boolean => {
    const r = metered(limit, fn);
    maxAlloc = Math.max(maxAlloc, r.maxAlloc);
    if (r.error !== undefined) {
      thrown = { error: r.error, chunkStart: -1, chunkEnd: -1 };
      return false;
    }
    const v = r.value;
    if (v instanceof RealUint8Array) got.push(v);
    else if (Array.isArray(v)) got.push(...v);
    return true;
  };

  for (let c = 0; c + 1 < bounds.length; c++) {
    let start = bounds[c]!;
    const end = bounds[c + 1]!;
    // In-place filling of a message being assembled, as a socket reading into partialRest() does.
    if (input.directFill) {
      let rest: Uint8Array | undefined;
      const r = metered(limit, () => decoder.partialRest());
      if (r.error !== undefined) {
        thrown = { error: r.error, chunkStart: start, chunkEnd: start };
        break;
      }
      rest = r.value;
      if (rest !== undefined && rest.length > 0 && start < end) {
        const n = Math.min(rest.length, end - start);
        rest.set(stream.subarray(start, start + n));
        if (!step(() => decoder.filled(n))) {
          thrown!.chunkStart = start;
          thrown!.chunkEnd = start + n;
          break;
        }
        start += n;
      }
    }
    if (start >= end) continue;
    let chunk: Uint8Array;
    if (input.reusedChunks) {
      scratch.set(stream.subarray(start, end), 0);
      chunk = scratch.subarray(0, end - start);
    } else chunk = stream.slice(start, end);
    if (!step(() => decoder.push(chunk))) {
      thrown!.chunkStart = start;
      thrown!.chunkEnd = end;
      break;
    }
    if (input.reusedChunks) scratch.fill(0xee);
    const buffered = decoder.bufferedBytes;
    if (buffered > limit + FRAME_HEADER_BYTES) {
      findings.push({
        kind: 'violation',
        signature: 'decoder buffers more than the message limit',
        message: `${buffered} bytes buffered with a limit of ${limit}`,
      });
    }
  }

  let finishError: unknown;
  if (thrown === undefined && input.callFinish) {
    const r = metered(limit, () => decoder.finish());
    if (r.error !== undefined) finishError = r.error;
  }

  if (maxAlloc > limit) {
    findings.push({
      kind: 'violation',
      signature: 'allocation larger than the message limit',
      message: `the decoder allocated ${maxAlloc} bytes with maxMessageSize ${limit} (an oversized length must be refused before allocating)`,
    });
  }

  // Which frames must have come out: with an error, those completed in chunks before the breaking one.
  const err = thrown?.error as { name?: string } | undefined;
  if (thrown !== undefined && !(err instanceof AllocationBomb)) {
    const name = err?.name ?? typeof err;
    if (!TYPED.has(name)) findings.push(crashFinding('FrameDecoder', thrown.error));
    else if (expected.error === undefined) {
      findings.push({
        kind: 'violation',
        signature: `spurious ${name}`,
        message: `${name} on a stream the reference decodes without error: ${(thrown.error as Error).message}`,
      });
    } else if (expected.error.name !== name) {
      findings.push({
        kind: 'violation',
        signature: `${name} instead of ${expected.error.name}`,
        message: (thrown.error as Error).message,
      });
    } else if (expected.error.at < thrown.chunkStart || expected.error.at >= thrown.chunkEnd) {
      findings.push({
        kind: 'violation',
        signature: expected.error.at < thrown.chunkStart ? 'error raised after the breaking byte' : 'error raised before the breaking byte',
        message: `the stream breaks at byte ${expected.error.at}; the decoder threw on bytes ${thrown.chunkStart}..${thrown.chunkEnd}`,
      });
    }
  } else if (thrown === undefined && expected.error !== undefined) {
    findings.push({
      kind: 'violation',
      signature: `missed ${expected.error.name}`,
      message: `the stream breaks at byte ${expected.error.at} (${expected.error.name}) but the decoder accepted it`,
    });
  }

  // push() throws instead of returning what it completed in the same chunk: exactly the frames that
  // ended before the chunk that broke the stream come out.
  const due = thrown !== undefined ? expected.frames.filter((f) => f.end <= Math.max(0, thrown!.chunkStart)) : expected.frames;
  if (got.length !== due.length) {
    findings.push({
      kind: 'honest-failure',
      signature: 'wrong number of frames',
      message: `decoded ${got.length} frames, expected ${due.length}`,
    });
  } else {
    for (let i = 0; i < got.length; i++) {
      if (!equalBytes(got[i]!, expected.frames[i]!.bytes)) {
        findings.push({
          kind: 'honest-failure',
          signature: input.reusedChunks ? 'frame bytes differ (reused chunk buffer)' : 'frame bytes differ',
          message: `frame ${i}: ${got[i]!.length} bytes decoded, ${expected.frames[i]!.bytes.length} encoded, contents ${equalBytes(got[i]!, expected.frames[i]!.bytes) ? 'equal' : 'different'}`,
        });
        break;
      }
    }
  }

  if (thrown === undefined && input.callFinish) {
    const fname = (finishError as { name?: string } | undefined)?.name;
    if (finishError !== undefined && fname !== 'ProtocolError') findings.push(crashFinding('FrameDecoder.finish', finishError));
    else if (expected.midFrame && finishError === undefined) {
      findings.push({
        kind: 'violation',
        signature: 'finish() accepted a stream that ended mid-frame',
        message: `stream of ${stream.length} bytes ends inside a frame`,
      });
    } else if (!expected.midFrame && finishError !== undefined) {
      findings.push({
        kind: 'violation',
        signature: 'finish() refused a complete stream',
        message: normalise((finishError as Error).message),
      });
    }
  }
  if (thrown?.error instanceof AllocationBomb && !findings.some((f) => f.signature === 'allocation larger than the message limit')) {
    findings.push({ kind: 'violation', signature: 'allocation larger than the message limit', message: (thrown.error as Error).message });
  }
  return findings;
}

export function framingTarget(create?: DecoderFactory): FuzzTarget<FramingInput, DecoderFactory> {
  return {
    name: 'framing',
    description: 'stream framing decoder (@tandem/transport framing.ts) against a reference decoder',
    honest: true,
    state: false,
    stateful: false,
    arbitrary: () => arbitrary(),
    async setup(options: TargetOptions) {
      if (create) return create;
      if (options.inject) return brokenDecoder(options.inject);
      return (o: FrameDecoderOptions) => new FrameDecoder(o);
    },
    async run(factory, input): Promise<InputOutcome> {
      return { findings: runFramingInput(input, factory) };
    },
    async teardown() {},
    notes: (_w, options) => (options.inject ? [`TEST ONLY: deliberately broken decoder "${options.inject}"`] : []),
  };
}
