/**
 * Turns a captured state into numbered chunks: the state section (records packed in slices of about
 * `sliceBytes`, several slices per chunk of about `chunkBytes`; or the blob cut in pieces), then the
 * aux section (the encoded auxiliary data cut in pieces). Work is done one slice at a time and the
 * producer yields to the event loop between slices, so the serving replica keeps answering requests.
 */
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { chunkChecksum, WholeStateChecksum } from './checksum.js';
import { pack } from '../codec.js';
import { encodeRecordSlice, encodeRecordSliceInto, framePackedSlice, PACKED_SLICE_OVERHEAD } from '../maps/record-codec.js';
import { yieldToEventLoop, type TransferEnv } from '../env.js';
import { encodeMessage, type ChunkMsg } from './messages.js';
import type { CapturedState } from '../source.js';
import { isPackedCursor } from '../transferable.js';

export interface ChunkSizing {
  /** Target chunk size in bytes (default 512 KiB). */
  chunkBytes: number;
  /** Upper bound of one unit of encoding work between yields (default 64 KiB). */
  sliceBytes: number;
  /** Target duration of one unit of work in ms, measured with env.now() (default 0.5): slices shrink
   * when the machine is slow so the serving replica never stalls longer than about this. 0 = bytes only. */
  sliceMs?: number;
  /** Write record slices framed, with the text fast path (the joiner announced 'text-slices'). */
  framedSlices?: boolean;
  /** Copy records as packed slices when the cursor can (the joiner announced 'packed-records'; needs framedSlices). */
  packedSlices?: boolean;
  /** Where chunk buffers come from and go back to (default: a pool of this producer's own). */
  pool?: ChunkBufferPool;
}

/** Free bytes in front of a pooled chunk's data, for its message header. */
const HEADROOM = 256;
const EMPTY = new Uint8Array(0);

/**
 * Chunk buffers, each with HEADROOM free bytes in front (for the chunk message's header, see
 * `ChunkProducer.encode`), reused once their chunk is acknowledged: producing a chunk allocates
 * nothing on the serving replica's heap or outside it. A server shares one pool between its transfers,
 * so the next transfer starts with memory that is already mapped (fresh buffers at the start of a
 * transfer cost the serving replica page faults). Only acknowledged chunks come back, never
 * one that may still be queued on a connection.
 */
export class ChunkBufferPool {
  readonly #free: Buffer[] = [];
  readonly #owned = new WeakSet<ArrayBufferLike>();
  /** At most this many free buffers are kept (the rest are left to the GC). */
  readonly maxFree: number;

  constructor(maxFree = 64) {
    this.maxFree = maxFree;
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of at least `bytes` (its data part; HEADROOM free bytes precede it). */
  take(bytes: number): Buffer {
    for (let i = this.#free.length - 1; i >= 0; i--) {
      const b = this.#free[i]!;
      if (b.length < bytes) continue;
      this.#free.splice(i, 1);
      return b;
    }
    const fresh = Buffer.allocUnsafeSlow(HEADROOM + bytes);
    this.#owned.add(fresh.buffer);
    return fresh.subarray(HEADROOM);
  }

  /** Whether `d` lies in a buffer of this pool with header room in front of it. */
  owns(d: Uint8Array): boolean {
    return d.byteOffset >= HEADROOM && this.#owned.has(d.buffer);
  }

  /** Give a buffer of this pool back (any view of it); others are ignored. */
  recycle(b: Uint8Array): void {
    if (this.#owned.has(b.buffer) && this.#free.length < this.maxFree)
      this.#free.push(Buffer.from(b.buffer, HEADROOM, b.buffer.byteLength - HEADROOM));
  }
}

export class ChunkProducer {
  readonly #env: TransferEnv;
  readonly #captured: CapturedState;
  readonly #sizing: ChunkSizing;
  readonly #transferId: string;
  readonly checksum = new WholeStateChecksum();
  #aux: Uint8Array | undefined;
  #auxOffset = 0;
  #blobOffset = 0;
  #stateDone = false;
  #bytesPerRecord = 64;
  /** Records one slice may take to stay within sliceMs (adapted from measured slices). */
  #recordsPerSlice = 64;
  /** Next chunk index to produce. */
  produced = 0;
  bytes = 0;
  records = 0;
  exhausted = false;

  constructor(env: TransferEnv, transferId: string, captured: CapturedState, sizing: ChunkSizing) {
    this.#env = env;
    this.#transferId = transferId;
    this.#captured = captured;
    this.#sizing = sizing;
    this.#pool = sizing.pool ?? new ChunkBufferPool();
    // The aux data is fixed at capture time (it must reflect seq S), so encode it now.
    this.#aux = captured.aux === undefined ? undefined : pack(captured.aux);
  }

  get totalRecords(): number | undefined {
    const b = this.#captured.body;
    return b.format === 'records' ? b.cursor.totalRecords : undefined;
  }

  #busy: Promise<unknown> = Promise.resolve();

  /** The next chunk, or undefined when everything has been produced. Calls are served one at a time. */
  next(): Promise<ChunkMsg | undefined> {
    const run = this.#busy.then(() => this.#produce());
    this.#busy = run.catch(() => {});
    return run;
  }

  async #produce(): Promise<ChunkMsg | undefined> {
    if (this.exhausted) return undefined;
    let chunk: ChunkMsg | undefined;
    if (!this.#stateDone) chunk = await this.#nextStateChunk();
    if (!chunk) chunk = this.#nextAuxChunk();
    if (!chunk) {
      this.exhausted = true;
      return undefined;
    }
    this.checksum.add(chunk.crc, chunk.data.length);
    this.bytes += chunk.data.length;
    this.records += chunk.records;
    this.produced++;
    return chunk;
  }

  close(): void {
    const b = this.#captured.body;
    if (b.format === 'records') b.cursor.close();
  }

  async #nextStateChunk(): Promise<ChunkMsg | undefined> {
    const body = this.#captured.body;
    if (body.format === 'blob') {
      if (this.#blobOffset >= body.bytes.length) {
        this.#stateDone = true;
        return undefined;
      }
      const data = body.bytes.subarray(this.#blobOffset, this.#blobOffset + this.#sizing.chunkBytes);
      this.#blobOffset += data.length;
      return this.#chunk('state', 0, data);
    }
    // Each slice: read records, encode them into the chunk buffer, fold them into the chunk's CRC —
    // then yield, so a request waits at most one slice (about sliceMs) for the transfer.
    const framed = this.#sizing.framedSlices === true;
    const packed = framed && this.#sizing.packedSlices === true && isPackedCursor(body.cursor) ? body.cursor : undefined;
    const parts: Uint8Array[] = [];
    let buf = framed ? this.#takeBuffer() : undefined;
    let size = 0;
    let records = 0;
    let crc = 0;
    let slices = 0;
    const sliceMs = this.#sizing.sliceMs ?? 0.5;
    while (size < this.#sizing.chunkBytes) {
      if (slices > 0) await yieldToEventLoop(this.#env);
      if (packed && buf) {
        // Whole runs of records copied from the state's own bytes (no per-record encoding).
        // A slice may run past chunkBytes into the buffer's spare room (the chunk ends after it).
        const room = Math.max(1, Math.min(this.#sizing.sliceBytes, buf.length - size - PACKED_SLICE_OVERHEAD));
        let r = packed.nextPacked(buf, size + PACKED_SLICE_OVERHEAD, room);
        if (r && r.records === 0) {
          // One record larger than a slice: end this chunk before it, or give it a bigger buffer.
          if (size > 0) break;
          const need = r.needBytes ?? room;
          buf = this.#moveToBigger(buf, 0, PACKED_SLICE_OVERHEAD + need);
          r = packed.nextPacked(buf, PACKED_SLICE_OVERHEAD, need);
        }
        if (!r || r.records === 0) {
          this.#stateDone = true;
          break;
        }
        const end = framePackedSlice(buf, size, r.records, r.bytes);
        crc = crc32(buf.subarray(size, end), crc);
        size = end;
        records += r.records;
        slices++;
        continue;
      }
      const byBytes = Math.max(1, Math.floor(Math.min(this.#sizing.sliceBytes, this.#sizing.chunkBytes - size) / this.#bytesPerRecord));
      const want = sliceMs > 0 ? Math.min(byBytes, this.#recordsPerSlice) : byBytes;
      const t0 = this.#env.now();
      const recs = body.cursor.next(want);
      if (!recs || recs.length === 0) {
        this.#stateDone = true;
        break;
      }
      let written: number;
      if (buf) {
        let end = encodeRecordSliceInto(recs, buf, size);
        if (end < 0) {
          // Larger than estimated: move to a bigger buffer (not pooled).
          const one = encodeRecordSlice(recs);
          buf = this.#moveToBigger(buf, size, size + one.length + this.#sizing.sliceBytes);
          buf.set(one, size);
          end = size + one.length;
        }
        crc = crc32(buf.subarray(size, end), crc);
        written = end - size;
      } else {
        const packed = encodeRecordSlice(recs, false);
        crc = crc32(packed, crc);
        parts.push(packed);
        written = packed.length;
      }
      const n = recs.length / (body.cursor.recordWidth ?? 1);
      size += written;
      records += n;
      slices++;
      this.#bytesPerRecord = Math.max(1, written / n);
      if (sliceMs > 0) {
        const ms = this.#env.now() - t0;
        // Aim at sliceMs; move gradually (a timer tick or GC pause in one slice must not collapse it).
        const target = ms > 0 ? (n * sliceMs) / ms : this.#recordsPerSlice * 2;
        this.#recordsPerSlice = Math.max(8, Math.min(1 << 20, Math.round(this.#recordsPerSlice * 0.5 + target * 0.5)));
      }
    }
    if (slices === 0) {
      if (buf) this.#pool.recycle(buf);
      return undefined;
    }
    const data = buf ? buf.subarray(0, size) : parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    return this.#chunk('state', records, data, crc >>> 0);
  }

  readonly #pool: ChunkBufferPool;

  /** A chunk buffer: `chunkBytes` plus room for a slice, or `minBytes` when more. */
  #takeBuffer(minBytes = 0): Buffer {
    return this.#pool.take(Math.max(minBytes, this.#sizing.chunkBytes + 2 * this.#sizing.sliceBytes + 1024));
  }

  /** A buffer of at least `minBytes` (not pooled) holding `b`'s first `keep` bytes; `b` is recycled. */
  #moveToBigger(b: Buffer, keep: number, minBytes: number): Buffer {
    const bigger = this.#takeBuffer(minBytes);
    b.copy(bigger, 0, 0, keep);
    this.#pool.recycle(b);
    return bigger;
  }

  /**
   * The server no longer needs this chunk (acknowledged: the joiner has its bytes): its buffer may be
   * reused for a later chunk. The chunk must not be read or sent afterwards.
   */
  release(chunk: ChunkMsg): void {
    if (chunk.section === 'state' && chunk.data.byteOffset === HEADROOM) this.#pool.recycle(chunk.data as Buffer);
  }

  /**
   * The chunk as a transfer message (what `encodeMessage` gives). For a chunk in a pooled buffer the
   * message header is written into the free bytes in front of the data and the message is a view of
   * header + data: no copy of the data.
   */
  encode(chunk: ChunkMsg): Uint8Array {
    const d = chunk.data;
    if (this.#pool.owns(d)) {
      // Same map, same key order as encodeMessage; `data` last, as an empty bin8 (c4 00) to be widened.
      const head = pack({
        t: 'chunk',
        transferId: chunk.transferId,
        index: chunk.index,
        section: chunk.section,
        records: chunk.records,
        crc: chunk.crc,
        data: EMPTY,
      });
      const n = head.length;
      if (n + 3 <= HEADROOM && head[n - 2] === 0xc4 && head[n - 1] === 0) {
        const headerBytes = n - 2 + 5;
        const out = Buffer.from(d.buffer, d.byteOffset - headerBytes, headerBytes + d.length);
        out.set(head.subarray(0, n - 2), 0);
        out[n - 2] = 0xc6; // bin32
        out.writeUInt32BE(d.length, n - 1);
        return out;
      }
    }
    return encodeMessage(chunk);
  }

  #nextAuxChunk(): ChunkMsg | undefined {
    const aux = this.#aux;
    if (!aux || this.#auxOffset >= aux.length) return undefined;
    const data = aux.subarray(this.#auxOffset, this.#auxOffset + this.#sizing.chunkBytes);
    this.#auxOffset += data.length;
    return this.#chunk('aux', 0, data);
  }

  #chunk(section: 'state' | 'aux', records: number, data: Uint8Array, crc = chunkChecksum(data)): ChunkMsg {
    return { t: 'chunk', transferId: this.#transferId, index: this.produced, section, records, crc, data };
  }
}
