/**
 * Compact binary encoding of causal stamps (and of a stamp followed by a byte payload).
 *
 *   header    1 byte: version (high nibble, 1) | bit 0: kind (0 direct, 1 broadcast)
 *                     | bit 1: broadcast vector present | bit 2: in-transit set present
 *   from      varint
 *   to        varint (direct only)
 *   direct    vector
 *   broadcast vector (when bit 1; else all zero)
 *   n         varint, then n × (to varint, relative vector): the in-transit set (when bit 2; n ≥ 1)
 *
 * A vector starts with a varint head = (count << 1) | dense. Dense: one varint per member. Sparse: `count`
 * pairs (index gap, value) for the entries that are present, the gap being the distance from the previous
 * present index minus one. The encoder picks whichever is shorter, so an all-zero vector costs 1 byte and
 * a vector with one non-zero entry 3–5. In-transit vectors are relative to the stamp's own `direct` vector:
 * a present entry k is written as direct[k] − latest[k] (usually 0 or small), dense absent entries as 0 and
 * present ones as that difference + 1. The group size is not on the wire: the decoder is given it.
 */
import { CausalProtocolError } from './errors.js';
import { BROADCAST, checkStamp, type CausalMessage, type CausalStamp, type InTransitEntry } from './stamp.js';
import { ByteReader, ByteWriter, varintSize } from './varint.js';

const VERSION = 1;

/** Encoded entry k of a vector, or undefined when absent (plain: 0 is absent; relative: 0 is absent). */
type EntryCode = (k: number) => number | undefined;

function writeVector(w: ByteWriter, size: number, code: EntryCode): void {
  let sparseBytes = 0;
  let count = 0;
  let denseBytes = 1;
  let prev = -1;
  for (let k = 0; k < size; k++) {
    const v = code(k);
    denseBytes += varintSize(v === undefined ? 0 : v + 1);
    if (v === undefined) continue;
    sparseBytes += varintSize(k - prev - 1) + varintSize(v);
    prev = k;
    count++;
  }
  sparseBytes += varintSize(count * 2);
  if (sparseBytes <= denseBytes) {
    w.uint(count * 2);
    prev = -1;
    for (let k = 0; k < size; k++) {
      const v = code(k);
      if (v === undefined) continue;
      w.uint(k - prev - 1);
      w.uint(v);
      prev = k;
    }
  } else {
    w.uint(1);
    for (let k = 0; k < size; k++) {
      const v = code(k);
      w.uint(v === undefined ? 0 : v + 1);
    }
  }
}

/** Reads a vector; `set(k, v)` receives each present entry's code. */
function readVector(r: ByteReader, size: number, set: (k: number, v: number) => void): void {
  const head = r.uint();
  if (head & 1) {
    if (head !== 1) throw new CausalProtocolError('malformed dense vector head');
    for (let k = 0; k < size; k++) {
      const v = r.uint();
      if (v > 0) set(k, v - 1);
    }
    return;
  }
  const count = head / 2;
  if (count > size) throw new CausalProtocolError(`vector of ${count} entries in a group of ${size}`);
  let k = -1;
  for (let i = 0; i < count; i++) {
    k += r.uint() + 1;
    if (k >= size) throw new CausalProtocolError(`vector index ${k} outside a group of ${size}`);
    set(k, r.uint());
  }
}

// Plain vectors (counts): an entry is present when non-zero and its code is value − 1, so that sparse writes
// value − 1 and dense writes the value itself (code + 1), 0 standing for an absent entry.
const plainCode =
  (vector: readonly number[]): EntryCode =>
  (k) =>
    vector[k]! > 0 ? vector[k]! - 1 : undefined;

/** Appends the encoding of `stamp` to `w`. The stamp is checked first (CausalProtocolError). */
export function writeStamp(w: ByteWriter, stamp: CausalStamp): void {
  const size = stamp.direct.length;
  checkStamp(stamp, size);
  const hasBroadcast = stamp.broadcast.some((v) => v > 0);
  const entries = stamp.inTransit.filter((e) => e.latest.some((v) => v > 0));
  w.byte((VERSION << 4) | (stamp.kind === 'broadcast' ? 1 : 0) | (hasBroadcast ? 2 : 0) | (entries.length > 0 ? 4 : 0));
  w.uint(stamp.from);
  if (stamp.kind === 'direct') w.uint(stamp.to);
  writeVector(w, size, plainCode(stamp.direct));
  if (hasBroadcast) writeVector(w, size, plainCode(stamp.broadcast));
  if (entries.length === 0) return;
  w.uint(entries.length);
  for (const entry of entries) {
    w.uint(entry.to);
    writeVector(w, size, (k) => (entry.latest[k]! > 0 ? stamp.direct[k]! - entry.latest[k]! : undefined));
  }
}

/** Reads one stamp for a group of `size` members; throws CausalProtocolError on anything malformed. */
export function readStamp(r: ByteReader, size: number): CausalStamp {
  const header = r.byte();
  if (header >> 4 !== VERSION) throw new CausalProtocolError(`unknown causal stamp version ${header >> 4}`);
  if ((header & 0x08) !== 0) throw new CausalProtocolError('reserved bit set in a causal stamp header');
  const kind = header & 1 ? 'broadcast' : 'direct';
  const from = r.uint();
  const to = kind === 'direct' ? r.uint() : BROADCAST;
  if (from >= size || (kind === 'direct' && to >= size)) throw new CausalProtocolError(`member index outside a group of ${size}`);
  const direct = new Array<number>(size).fill(0);
  const broadcast = new Array<number>(size).fill(0);
  readVector(r, size, (k, v) => (direct[k] = v + 1));
  if (header & 2) readVector(r, size, (k, v) => (broadcast[k] = v + 1));
  const n = header & 4 ? r.uint() : 0;
  if (header & 4 && n === 0) throw new CausalProtocolError('an empty in-transit set marked present');
  if (n > size) throw new CausalProtocolError(`${n} in-transit entries in a group of ${size}`);
  const inTransit: InTransitEntry[] = [];
  for (let i = 0; i < n; i++) {
    const dest = r.uint();
    if (dest >= size) throw new CausalProtocolError(`in-transit destination ${dest} outside a group of ${size}`);
    const latest = new Array<number>(size).fill(0);
    readVector(r, size, (k, delta) => {
      const value = direct[k]! - delta;
      if (value < 1) throw new CausalProtocolError(`in-transit entry for member ${k} below 1`);
      latest[k] = value;
    });
    inTransit.push({ to: dest, latest });
  }
  const stamp: CausalStamp = { kind, from, to, direct, broadcast, inTransit };
  checkStamp(stamp, size);
  return stamp;
}

/** The stamp alone, as bytes. */
export function encodeStamp(stamp: CausalStamp): Uint8Array {
  const w = new ByteWriter();
  writeStamp(w, stamp);
  return w.finish().slice();
}

/** Decodes a stamp that fills `bytes` exactly. */
export function decodeStamp(bytes: Uint8Array, size: number): CausalStamp {
  const r = new ByteReader(bytes);
  const stamp = readStamp(r, size);
  if (r.remaining !== 0) throw new CausalProtocolError(`${r.remaining} trailing bytes after a causal stamp`);
  return stamp;
}

/** Bytes the stamp takes on the wire. */
export function stampSize(stamp: CausalStamp): number {
  const w = new ByteWriter();
  writeStamp(w, stamp);
  return w.length;
}

/** The stamp followed by the payload bytes (no length prefix: the stamp delimits itself). */
export function encodeCausalMessage(message: CausalMessage<Uint8Array>): Uint8Array {
  const w = new ByteWriter(64 + message.payload.byteLength);
  writeStamp(w, message.stamp);
  w.bytes(message.payload);
  return w.finish();
}

/** Inverse of encodeCausalMessage; the payload is a copy. Throws CausalProtocolError. */
export function decodeCausalMessage(bytes: Uint8Array, size: number): CausalMessage<Uint8Array> {
  const r = new ByteReader(bytes);
  const stamp = readStamp(r, size);
  return { stamp, payload: r.rest().slice() };
}
