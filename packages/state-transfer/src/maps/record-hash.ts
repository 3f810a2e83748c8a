/**
 * The per-record hashing of a SlabMap being built from received bytes, in WebAssembly
 * (wasm/record-hash.wat): for each packed record of a run, its key's lane-A hash (the index slot), its
 * offset, and its entry hash added to the digest lanes — the same results as entry-hash.ts's hashBytes
 * and combine, bit for bit (tests compare the two on random records).
 *
 * Why: on a joiner this hashing was the largest single cost of a transfer. In one process, over
 * 1 000 000 records of ~118 bytes (.tmp-style microbenchmark, 2-vCPU VM): 0.19–0.23 µs per record in
 * JavaScript against 0.11 µs here, the copy of the run into the module's memory included. The hash
 * is a chain of dependent multiplies, so WebAssembly gains by dropping bounds checks and calls, not by
 * doing less work.
 *
 * Where WebAssembly is unavailable (node --jitless) the caller keeps its JavaScript loop.
 */
import { Buffer } from 'node:buffer';
import { RECORD_HASH_WASM } from './record-hash-wasm.js';

/** The parts of the WebAssembly JavaScript API used here (TypeScript declares it only with lib "dom"). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
interface WasmGlobal {
  value: number;
}

interface RecordHashExports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  readonly sumA: WasmGlobal;
  readonly sumB: WasmGlobal;
  readonly high: WasmGlobal;
  hashRecords(end: number, base: number, outHash: number, outAt: number): number;
}

const PAGE = 64 * 1024;

/** Hashes runs of packed records; one per thread is enough (a run is hashed in one synchronous call). */
export class RecordRunHasher {
  readonly #ex: RecordHashExports;
  #bytes: Uint8Array;
  #ints: Int32Array;
  /** Int32 index (into `ints`) of the last run's key hashes and of its record offsets. */
  hashIndex = 0;
  atIndex = 0;
  /** Digest lanes after the last run (the sums passed in plus every entry's hash, mod 2^32, as int32). */
  sumA = 0;
  sumB = 0;
  /** OR of every key and value byte of the last run (bit 7 of a byte set ⇔ some text is not ASCII). */
  high = 0;

  constructor(ex: RecordHashExports) {
    this.#ex = ex;
    this.#bytes = new Uint8Array(ex.memory.buffer);
    this.#ints = new Int32Array(ex.memory.buffer);
  }

  /** The module's memory as int32 (key hashes at `hashIndex`, offsets at `atIndex`); valid until the next run. */
  get ints(): Int32Array {
    return this.#ints;
  }

  /**
   * Hash the records in src[from, to): returns their count (hashes and offsets + `base` in `ints`), or
   * -1 when the bytes are not whole records. `sumA`/`sumB`: the digest lanes to add to.
   */
  run(src: Uint8Array, from: number, to: number, base: number, sumA: number, sumB: number): number {
    const n = to - from;
    // Input, then one int32 per possible record (at least 8 bytes each) for the hashes and the offsets.
    const outHash = (n + 3) & ~3;
    const slots = (n >>> 3) + 1;
    const outAt = outHash + 4 * slots;
    const need = outAt + 4 * slots;
    if (need > this.#bytes.length) {
      this.#ex.memory.grow(Math.ceil((need - this.#bytes.length) / PAGE));
      this.#bytes = new Uint8Array(this.#ex.memory.buffer);
      this.#ints = new Int32Array(this.#ex.memory.buffer);
    }
    this.#bytes.set(src.subarray(from, to), 0);
    const ex = this.#ex;
    ex.sumA.value = sumA | 0;
    ex.sumB.value = sumB | 0;
    ex.high.value = 0;
    const count = ex.hashRecords(n, base, outHash, outAt);
    this.sumA = ex.sumA.value;
    this.sumB = ex.sumB.value;
    this.high = ex.high.value;
    this.hashIndex = outHash >>> 2;
    this.atIndex = outAt >>> 2;
    return count;
  }
}

let enabled = true;
let shared: RecordRunHasher | null | undefined;

/** This thread's hasher, or undefined when WebAssembly is unavailable (or turned off for a test). */
export function recordRunHasher(): RecordRunHasher | undefined {
  if (!enabled) return undefined;
  if (shared === undefined) {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      const module = new wasm.Module(Buffer.from(RECORD_HASH_WASM, 'base64'));
      shared = new RecordRunHasher(new wasm.Instance(module).exports as RecordHashExports);
    } catch {
      shared = null; // (no WebAssembly: node --jitless, or a runtime without it)
    }
  }
  return shared ?? undefined;
}

/** Tests: hash with the JavaScript loop (false) or WebAssembly when available (true, the default). */
export function useWasmRecordHash(on: boolean): void {
  enabled = on;
}
