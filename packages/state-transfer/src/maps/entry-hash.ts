/**
 * The per-entry hashes behind the order-independent digests of SnapshotMap and SlabMap: a two-lane
 * 32-bit hash of a string's UTF-8 bytes (FNV-style multiply, four bytes per step, murmur3 finaliser),
 * and the hash of a (key, value) pair. Both maps hash the same bytes the same way, so equal contents
 * give equal digests whichever map holds them. Results go to the module-level `laneA`, `laneB` (no
 * pair allocated per call).
 */
import { pack } from '../codec.js';

/**
 * Output of the two-lane hashes (module-level to avoid allocating a pair per call), as int32: a uint32
 * of 2^31 or more is not a small integer for V8, so storing one here allocated a heap number (and a
 * write barrier into the module's old-space context) on every call — 4 to 6 per record hashed.
 */
export let laneA = 0;
export let laneB = 0;
/** hashBytes also leaves the OR of every byte it read here (bit 7 set ⇔ not ASCII). */
export let highBits = 0;

const utf8 = new TextEncoder();

/**
 * The two-lane hash of a string's UTF-8 bytes (see hashBytes) → laneA, laneB. ASCII strings (the
 * common case) are hashed from their characters directly, four per step; any other string is encoded
 * first, so a string and its UTF-8 bytes in a received chunk hash alike.
 */
export function hashString(s: string, seedA: number, seedB: number): void {
  let a = seedA | 0;
  let b = seedB | 0;
  const n = s.length;
  let high = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    high |= c0 | c1 | c2 | c3;
    const w = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ w, 0x5bd1e995);
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    high |= c;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  if (high > 0x7f) {
    hashArray(utf8.encode(s), seedA, seedB);
    return;
  }
  laneA = mix32(a ^ n) | 0;
  laneB = mix32(b ^ n) | 0;
}

/**
 * A hash of bytes[from, to) in two independent 32-bit lanes at once (FNV-style multiply, four bytes
 * per step little-endian, the tail byte by byte, murmur3 finaliser) → laneA, laneB; and highBits.
 * Reads through a DataView: one 32-bit load per step instead of four byte loads (in a 1M-record
 * microbenchmark 0.12 against 0.18–0.22 µs per ~118-byte record; same results).
 */
export function hashBytes(v: DataView, from: number, to: number, seedA: number, seedB: number): void {
  let a = seedA | 0;
  let b = seedB | 0;
  let high = 0;
  let i = from;
  for (; i + 3 < to; i += 4) {
    const w = v.getInt32(i, true);
    high |= w;
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ w, 0x5bd1e995);
  }
  for (; i < to; i++) {
    const c = v.getUint8(i);
    high |= c;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  const n = to - from;
  laneA = mix32(a ^ n) | 0;
  laneB = mix32(b ^ n) | 0;
  highBits = high;
}

/** hashBytes over a whole byte array. */
function hashArray(u: Uint8Array, seedA: number, seedB: number): void {
  hashBytes(new DataView(u.buffer, u.byteOffset, u.byteLength), 0, u.byteLength, seedA, seedB);
}

export const SEED_A = 0x811c9dc5;
export const SEED_B = 0x9747b28c;

export const VALUE_SEED_A = SEED_A ^ 0x5bd1e995;
export const VALUE_SEED_B = SEED_B ^ 0x5bd1e995;
const PACKED_SEED_A = SEED_A ^ 0x27d4eb2f;
const PACKED_SEED_B = SEED_B ^ 0x27d4eb2f;

/** Hash of one (key, value) pair in two lanes → laneA, laneB; k1/k2 are the key's two lane hashes. */
export function entryHash(k1: number, k2: number, value: unknown): void {
  if (typeof value === 'string') {
    hashString(value, VALUE_SEED_A, VALUE_SEED_B);
  } else {
    hashArray(pack(value), PACKED_SEED_A, PACKED_SEED_B);
  }
  combine(k1, k2);
}

/** Fold the key's lanes into the value's (laneA, laneB) → laneA, laneB. */
export function combine(k1: number, k2: number): void {
  const a = mix32(k1 ^ mix32(laneA >>> 0));
  const b = mix32(k2 ^ mix32((laneB + 0x9e3779b9) >>> 0));
  laneA = a | 0;
  laneB = b | 0;
}

/** A final avalanche (murmur3 fmix32) so that sums of hashes of similar inputs do not collide easily. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit lane as 8 hex digits (the digests' text form). */
export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
