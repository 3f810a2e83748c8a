/**
 * Turns a captured state into numbered chunks: the state section (records packed in slices of about
 * `sliceBytes`, several slices per chunk of about `chunkBytes`; or the blob cut in pieces), then the
 * aux section (the encoded auxiliary data cut in pieces). Work is done one slice at a time and the
 * producer yields to the event loop between slices, so the serving replica keeps answering requests.
 */
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { chunkChecksum, WholeStateChecksum } from './checksum.js';
import { pack } from './codec.js';
import { yieldToEventLoop, type TransferEnv } from './env.js';
import type { ChunkMsg } from './messages.js';
import type { CapturedState } from './source.js';

export interface ChunkSizing {
  /** Target chunk size in bytes (default 512 KiB). */
  chunkBytes: number;
  /** Upper bound of one unit of encoding work between yields (default 64 KiB). */
  sliceBytes: number;
  /** Target duration of one unit of work in ms, measured with env.now() (default 0.5): slices shrink
   * when the machine is slow so the serving replica never stalls longer than about this. 0 = bytes only. */
  sliceMs?: number;
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
    let chunk: (ChunkMsg & { checksummed?: boolean }) | undefined;
    if (!this.#stateDone) chunk = await this.#nextStateChunk();
    if (!chunk) chunk = this.#nextAuxChunk();
    if (!chunk) {
      this.exhausted = true;
      return undefined;
    }
    if (!chunk.checksummed) this.checksum.update(chunk.data);
    this.bytes += chunk.data.length;
    this.records += chunk.records;
    this.produced++;
    if (chunk.checksummed) {
      const { checksummed: _, ...msg } = chunk;
      return msg;
    }
    return chunk;
  }

  close(): void {
    const b = this.#captured.body;
    if (b.format === 'records') b.cursor.close();
  }

  async #nextStateChunk(): Promise<(ChunkMsg & { checksummed?: boolean }) | undefined> {
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
    // Each slice: read records, encode them, and fold them into the chunk's CRC and the whole-state
    // checksum — then yield, so a request waits at most one slice (about sliceMs) for the transfer.
    const parts: Uint8Array[] = [];
    let size = 0;
    let records = 0;
    let crc = 0;
    const sliceMs = this.#sizing.sliceMs ?? 0.5;
    while (size < this.#sizing.chunkBytes) {
      if (parts.length > 0) await yieldToEventLoop(this.#env);
      const byBytes = Math.max(1, Math.floor(Math.min(this.#sizing.sliceBytes, this.#sizing.chunkBytes - size) / this.#bytesPerRecord));
      const want = sliceMs > 0 ? Math.min(byBytes, this.#recordsPerSlice) : byBytes;
      const t0 = this.#env.now();
      const recs = body.cursor.next(want);
      if (!recs || recs.length === 0) {
        this.#stateDone = true;
        break;
      }
      const packed = pack(recs);
      crc = crc32(packed, crc);
      this.checksum.update(packed);
      const n = recs.length / (body.cursor.recordWidth ?? 1);
      parts.push(packed);
      size += packed.length;
      records += n;
      this.#bytesPerRecord = Math.max(1, packed.length / n);
      if (sliceMs > 0) {
        const ms = this.#env.now() - t0;
        // Aim at sliceMs; move gradually (a timer tick or GC pause in one slice must not collapse it).
        const target = ms > 0 ? (n * sliceMs) / ms : this.#recordsPerSlice * 2;
        this.#recordsPerSlice = Math.max(8, Math.min(1 << 20, Math.round(this.#recordsPerSlice * 0.5 + target * 0.5)));
      }
    }
    if (parts.length === 0) return undefined;
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    return { ...this.#chunk('state', records, data, crc >>> 0), checksummed: true };
  }

  #nextAuxChunk(): ChunkMsg | undefined {
    const aux = this.#aux;
    if (!aux || this.#auxOffset >= aux.length) return undefined;
    const data = aux.subarray(this.#auxOffset, this.#auxOffset + this.#sizing.chunkBytes);
    this.#auxOffset += data.length;
    return this.#chunk('aux', 0, data);
  }

  #chunk(section: 'state' | 'aux', records: number, data: Uint8Array, crc = chunkChecksum(data)): ChunkMsg & { checksummed?: boolean } {
    return { t: 'chunk', transferId: this.#transferId, index: this.produced, section, records, crc, data };
  }
}
