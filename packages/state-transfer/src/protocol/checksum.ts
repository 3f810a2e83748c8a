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

/** The CRC-32 of a chunk's bytes. */
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

  /** The checksum of the chunks so far (32 hex digits), without ending the running hash. */
  digest(): string {
    return this.#hash.copy().digest('hex').slice(0, 32);
  }

  /** Start over with no chunks. */
  reset(): void {
    this.#hash = createHash('sha256');
    this.#index = 0;
  }
}
