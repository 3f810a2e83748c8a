/**
 * Unsigned LEB128 varints for non-negative safe integers (up to 2^53 − 1, at most 8 bytes), with a
 * growable writer and a bounds-checked reader. Every read failure is a CausalProtocolError.
 */
import { CausalProtocolError } from './errors.js';

/** Bytes of `n` as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  constructor(initial = 64) {
    this.#buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.#len;
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b & 0xff;
  }

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
    this.#reserve(8);
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#len++] = n;
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.byteLength);
    this.#buf.set(b, this.#len);
    this.#len += b.byteLength;
  }

  /** The bytes written (a view: the writer must not be used afterwards). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

export class ByteReader {
  readonly #buf: Uint8Array;
  #pos: number;

  constructor(buf: Uint8Array, offset = 0) {
    this.#buf = buf;
    this.#pos = offset;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#buf.byteLength - this.#pos;
  }

  byte(): number {
    if (this.#pos >= this.#buf.byteLength) throw new CausalProtocolError('truncated: expected a byte');
    return this.#buf[this.#pos++]!;
  }

  uint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.#pos >= this.#buf.byteLength) throw new CausalProtocolError('truncated varint');
      const b = this.#buf[this.#pos++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new CausalProtocolError('non-canonical varint');
        if (!Number.isSafeInteger(value)) throw new CausalProtocolError('varint exceeds 2^53 - 1');
        return value;
      }
      scale *= 0x80;
    }
    throw new CausalProtocolError('varint longer than 8 bytes');
  }

  /** Everything from the current position (a view). */
  rest(): Uint8Array {
    const out = this.#buf.subarray(this.#pos);
    this.#pos = this.#buf.byteLength;
    return out;
  }
}
