/**
 * Checksums of the transfer: CRC-32 per chunk (detects a corrupted chunk, which is then sent again)
 * and the whole-state checksum compared at the end of the snapshot: SHA-256 over every chunk's
 * (index, length, CRC-32) in order. It proves the joiner holds exactly the sequence of chunks the
 * server produced (none missing, repeated or out of order, each with the CRC the server computed)
 * without hashing the data a second time; the content itself is then checked end to end by the state
 * digests. Both are native (zlib / crypto).
 */
import { Buffer } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export function chunkChecksum(data: Uint8Array): number {
  return crc32(data) >>> 0;
}

/** Running whole-state checksum: feed chunks in index order; `digest()` does not consume it. */
export class WholeStateChecksum {
  #hash: Hash = createHash('sha256');
  #index = 0;
  readonly #entry = Buffer.alloc(16);

  /** The next chunk's data (its CRC-32 is computed here). */
  update(data: Uint8Array): void {
    this.add(chunkChecksum(data), data.byteLength);
  }

  /** The next chunk, by its CRC-32 (already computed by the caller) and length. */
  add(crc: number, length: number): void {
    const e = this.#entry;
    e.writeUInt32LE(this.#index++ >>> 0, 0);
    e.writeDoubleLE(length, 4);
    e.writeUInt32LE(crc >>> 0, 12);
    this.#hash.update(e);
  }

  digest(): string {
    return this.#hash.copy().digest('hex').slice(0, 32);
  }

  reset(): void {
    this.#hash = createHash('sha256');
    this.#index = 0;
  }
}

/** 32-bit FNV-1a of a string's UTF-16 code units, with a seed (offset basis) so two lanes differ. */
export function hashString32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** 32-bit FNV-1a of bytes, with a seed. */
export function hashBytes32(b: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
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

export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
