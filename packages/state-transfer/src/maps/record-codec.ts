/**
 * How record slices travel inside a `records` chunk. A chunk's data is several slices written one
 * after another, each framed: `0xc1` (a byte msgpack never uses), kind (u8), body length (u32 LE), body.
 *
 * * kind 1, **text**: every item of the slice is an ASCII string. Body: n (u32 LE), n item lengths
 *   (u32 LE), the n strings' bytes back to back. Encoding is one native write of the slice's strings
 *   joined (a rope V8 flattens once); decoding is one native latin1 decode of the whole payload plus a
 *   `substring` per item (V8 makes a substring of 13 or more characters a slice of its parent: no
 *   copy, no per-record buffer). This is the fast path of a string-keyed map of strings.
 * * kind 2, **packed**: records of a string → string map as `SlabMap` stores them. Body: n (u32 LE),
 *   then n records `keyLength u32 LE, valueLength u32 LE, key UTF-8, value UTF-8` back to back. The
 *   serving side copies whole runs of records from its slabs; a SlabMap joiner copies them into its own
 *   (`addPacked`); any other builder gets the strings (`sliceItems`, UTF-8 checked). Sent only to a
 *   joiner that announces `packed-records`, from a cursor that has `nextPacked`.
 * * kind 0, **msgpack**: a msgpack array of the items (any other slice: non-strings, non-ASCII text).
 *
 * A chunk whose first byte is not 0xc1 is the legacy layout (msgpack arrays back to back, what a
 * joiner that does not announce `text-slices` gets). The decoder checks the framing and throws
 * RangeError on malformed input (the caller turns it into a TransferProtocolError).
 */
import { Buffer, isAscii } from 'node:buffer';
import { pack, unpack, unpackAll } from '../codec.js';

/**
 * A decoded text slice, handed as is to a builder that can take it (`StateBuilder.addText`): item i's
 * length is the u32 LE at `bytes[lengthsAt + 4i]`, its bytes follow the previous item's from
 * `payloadAt` on (ASCII, checked), and its characters follow the previous item's in `text` from
 * `textAt` on. `text` holds the payloads of every text slice of the chunk, decoded at once: one string
 * of about a chunk, which V8 keeps in its large-object space (never copied by the young-generation
 * GC, unlike many slice-sized strings), and which the values cut from it (substrings) point into.
 */
export interface TextSlice {
  readonly bytes: Uint8Array;
  readonly count: number;
  readonly lengthsAt: number;
  readonly payloadAt: number;
  readonly text: string;
  readonly textAt: number;
}

/**
 * A decoded packed slice (`StateBuilder.addPacked`): `count` records (key, value: two items each) in
 * `bytes[at, end)`, each `keyLength u32 LE, valueLength u32 LE, key, value`; the framing is checked.
 */
export interface PackedSlice {
  readonly kind: 'packed';
  readonly bytes: Uint8Array;
  readonly count: number;
  readonly at: number;
  readonly end: number;
}

/** A slice as decoded: a text slice, a packed slice, or the items of a msgpack slice. */
export type RecordSlice = TextSlice | PackedSlice | unknown[];

export function isTextSlice(s: RecordSlice): s is TextSlice {
  return !Array.isArray(s) && (s as Partial<PackedSlice>).kind !== 'packed';
}

export function isPackedSlice(s: RecordSlice): s is PackedSlice {
  return !Array.isArray(s) && (s as Partial<PackedSlice>).kind === 'packed';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The items of a slice (a text slice's strings, cut from its text; a packed slice's, decoded). */
export function sliceItems(s: RecordSlice): unknown[] {
  if (Array.isArray(s)) return s;
  if (isPackedSlice(s)) {
    const items = new Array<string>(2 * s.count);
    const u = s.bytes;
    let p = s.at;
    try {
      for (let i = 0; i < items.length; i += 2) {
        const kl = u32(u, p);
        const vl = u32(u, p + 4);
        const kAt = p + RECORD_HEADER;
        items[i] = strictUtf8.decode(u.subarray(kAt, kAt + kl));
        items[i + 1] = strictUtf8.decode(u.subarray(kAt + kl, kAt + kl + vl));
        p = kAt + kl + vl;
      }
    } catch {
      throw new RangeError('packed slice holds a string that is not UTF-8');
    }
    return items;
  }
  const items = new Array<string>(s.count);
  const u = s.bytes;
  let c = s.textAt;
  for (let i = 0, q = s.lengthsAt; i < s.count; i++, q += 4) {
    const len = (u[q]! | (u[q + 1]! << 8) | (u[q + 2]! << 16)) + u[q + 3]! * 0x1000000;
    items[i] = s.text.substring(c, c + len);
    c += len;
  }
  return items;
}

/** The name a joiner announces (open.encodings) to receive framed slices. */
export const TEXT_SLICES = 'text-slices';
/** The name a joiner announces to receive packed slices (with framed slices). */
export const PACKED_RECORDS = 'packed-records';

const FRAME = 0xc1;
const KIND_MSGPACK = 0;
const KIND_TEXT = 1;
const KIND_PACKED = 2;
const FRAME_HEADER = 6;
/** Bytes in front of each packed record (and of each SlabMap record): key length, value length (u32 LE). */
export const RECORD_HEADER = 8;
/** Bytes in front of a packed slice's records: frame header and record count. */
export const PACKED_SLICE_OVERHEAD = FRAME_HEADER + 4;

/**
 * Frame a packed slice whose `count` records (`bytes` bytes) were written at `at + PACKED_SLICE_OVERHEAD`;
 * returns the offset after it.
 */
export function framePackedSlice(target: Uint8Array, at: number, count: number, bytes: number): number {
  target[at] = FRAME;
  target[at + 1] = KIND_PACKED;
  putU32(target, at + 2, 4 + bytes);
  putU32(target, at + FRAME_HEADER, count);
  return at + PACKED_SLICE_OVERHEAD + bytes;
}

function putU32(u: Uint8Array, q: number, n: number): void {
  u[q] = n;
  u[q + 1] = n >>> 8;
  u[q + 2] = n >>> 16;
  u[q + 3] = n >>> 24;
}

const encoder = new TextEncoder();

/** Encode one slice of flat record items: framed (text or msgpack) or, with `framed` false, legacy msgpack. */
export function encodeRecordSlice(items: readonly unknown[], framed = true): Uint8Array {
  if (!framed) return pack(items);
  const text = asciiCandidate(items);
  if (text !== undefined) {
    const out = Buffer.allocUnsafe(FRAME_HEADER + 4 + 4 * items.length + text.length);
    if (writeText(items, text, out, 0) > 0) return out;
  }
  return frameMsgpack(items);
}

/**
 * Encode one framed slice into `target` at `at`; returns the offset after it, or -1 when it does not
 * fit (nothing useful written). The producer's way of filling a chunk buffer without a copy per slice.
 */
export function encodeRecordSliceInto(items: readonly unknown[], target: Buffer, at: number): number {
  const text = asciiCandidate(items);
  if (text !== undefined) {
    if (at + FRAME_HEADER + 4 + 4 * items.length + text.length > target.length) return -1;
    const end = writeText(items, text, target, at);
    if (end > 0) return end;
  }
  const framed = frameMsgpack(items);
  if (at + framed.length > target.length) return -1;
  target.set(framed, at);
  return at + framed.length;
}

/** All items joined (one flat string, built natively) when every item is a string, else undefined. */
function asciiCandidate(items: readonly unknown[]): string | undefined {
  for (let i = 0; i < items.length; i++) if (typeof items[i] !== 'string') return undefined;
  return items.join('');
}

/** Write a text slice at `at` (room checked by the caller); the offset after it, or -1 when not ASCII. */
function writeText(items: readonly unknown[], text: string, out: Buffer, at: number): number {
  const n = items.length;
  const chars = text.length;
  const payloadAt = at + FRAME_HEADER + 4 + 4 * n;
  // UTF-8 into exactly `chars` bytes: everything read and `chars` bytes written ⇔ ASCII (any other
  // character takes 2 or 3 bytes).
  const r = encoder.encodeInto(text, out.subarray(payloadAt, payloadAt + chars));
  if (r.read !== chars || r.written !== chars) return -1;
  out[at] = FRAME;
  out[at + 1] = KIND_TEXT;
  out.writeUInt32LE(4 + 4 * n + chars, at + 2);
  out.writeUInt32LE(n, at + FRAME_HEADER);
  let p = at + FRAME_HEADER + 4;
  for (let i = 0; i < n; i++) {
    const len = (items[i] as string).length;
    out[p] = len;
    out[p + 1] = len >>> 8;
    out[p + 2] = len >>> 16;
    out[p + 3] = len >>> 24;
    p += 4;
  }
  return payloadAt + chars;
}

function frameMsgpack(items: readonly unknown[]): Uint8Array {
  const packed = pack(items);
  const out = Buffer.allocUnsafe(FRAME_HEADER + packed.length);
  out[0] = FRAME;
  out[1] = KIND_MSGPACK;
  out.writeUInt32LE(packed.length, 2);
  out.set(packed, FRAME_HEADER);
  return out;
}

function u32(buf: Uint8Array, q: number): number {
  return (buf[q]! | (buf[q + 1]! << 8) | (buf[q + 2]! << 16)) + buf[q + 3]! * 0x1000000;
}

/** Decode every slice of a chunk's data. Throws RangeError when malformed. */
export function decodeRecordSlices(data: Uint8Array): RecordSlice[] {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: RecordSlice[] = [];
  if (buf.length > 0 && buf[0] !== FRAME) {
    for (const v of unpackAll(buf)) {
      if (!Array.isArray(v)) throw new RangeError('a record slice is not an array');
      out.push(v);
    }
    return out;
  }
  const texts: { slot: number; count: number; lengthsAt: number; payloadAt: number; end: number }[] = [];
  let p = 0;
  while (p < buf.length) {
    if (buf[p] !== FRAME) throw new RangeError(`no slice frame at byte ${p}`);
    if (p + FRAME_HEADER > buf.length) throw new RangeError('truncated slice frame');
    const kind = buf[p + 1];
    const bodyAt = p + FRAME_HEADER;
    const end = bodyAt + u32(buf, p + 2);
    if (end > buf.length) throw new RangeError(`slice of ${end - bodyAt} bytes overruns the chunk`);
    if (kind === KIND_TEXT) {
      texts.push({ slot: out.length, ...checkText(buf, bodyAt, end), end });
      out.push([]); // placeholder, replaced below
    } else if (kind === KIND_PACKED) {
      out.push(checkPacked(buf, bodyAt, end));
    } else if (kind === KIND_MSGPACK) {
      const v = unpack(buf.subarray(bodyAt, end));
      if (!Array.isArray(v)) throw new RangeError('a record slice is not an array');
      out.push(v);
    } else throw new RangeError(`unknown slice kind ${kind}`);
    p = end;
  }
  if (texts.length > 0) {
    // Every text payload of the chunk as one string (one copy of the payload bytes when there are several).
    let text: string;
    if (texts.length === 1) text = buf.toString('latin1', texts[0]!.payloadAt, texts[0]!.end);
    else text = Buffer.concat(texts.map((t) => buf.subarray(t.payloadAt, t.end))).toString('latin1');
    let textAt = 0;
    for (const t of texts) {
      out[t.slot] = { bytes: buf, count: t.count, lengthsAt: t.lengthsAt, payloadAt: t.payloadAt, text, textAt };
      textAt += t.end - t.payloadAt;
    }
  }
  return out;
}

/** Check a text slice's framing (lengths add up, ASCII payload); its count and offsets. */
function checkText(buf: Buffer, at: number, end: number): { count: number; lengthsAt: number; payloadAt: number } {
  if (at + 4 > end) throw new RangeError('truncated text slice');
  const n = u32(buf, at);
  const lengthsAt = at + 4;
  const payloadAt = lengthsAt + 4 * n;
  if (payloadAt > end) throw new RangeError(`text slice of ${n} items overruns its frame`);
  let total = 0;
  for (let q = lengthsAt; q < payloadAt; q += 4) total += u32(buf, q);
  if (payloadAt + total !== end) throw new RangeError(`text slice lengths (${total} bytes) do not match its frame (${end - payloadAt})`);
  if (!isAscii(buf.subarray(payloadAt, end))) throw new RangeError('text slice is not ASCII');
  return { count: n, lengthsAt, payloadAt };
}

/** Check a packed slice's framing (n records ending exactly at the frame's end). */
function checkPacked(buf: Buffer, at: number, end: number): PackedSlice {
  if (at + 4 > end) throw new RangeError('truncated packed slice');
  const n = u32(buf, at);
  let p = at + 4;
  for (let i = 0; i < n; i++) {
    if (p + RECORD_HEADER > end) throw new RangeError(`packed slice of ${n} records overruns its frame at record ${i}`);
    p += RECORD_HEADER + u32(buf, p) + u32(buf, p + 4);
  }
  if (p !== end) throw new RangeError(`packed slice records (${p - at - 4} bytes) do not match its frame (${end - at - 4})`);
  return { kind: 'packed', bytes: buf, count: n, at: at + 4, end };
}
