/**
 * Length-prefixed framing for byte-stream transports (TCP, TLS, raw pipes): every message travels as a
 * 4-byte big-endian length followed by that many bytes. A stream starts with an 8-byte preamble
 * ("TNDM", version, 3 reserved zero bytes) so that a peer speaking something else (an HTTP client, a
 * port scanner) is recognised at once as a ProtocolError instead of being read as a giant length.
 *
 * The decoder checks every announced length against the limit BEFORE allocating anything, handles frames
 * split across chunks and many frames in one chunk, and returns views into the incoming chunk (no copy)
 * whenever a frame lies entirely inside one chunk (copies with `reusedChunks`).
 */
import { MessageTooLargeError, ProtocolError } from './errors.js';

/** Bytes in a frame header (the big-endian uint32 length). */
export const FRAME_HEADER_BYTES = 4;

/** Largest length the 4-byte header can carry. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;

/** Version of the stream framing written in the preamble. */
export const STREAM_FRAMING_VERSION = 1;

/** The 8 bytes every framed stream starts with, in each direction ("TNDM", version, 0, 0, 0). Do not modify. */
export const STREAM_PREAMBLE: Uint8Array = Uint8Array.of(0x54, 0x4e, 0x44, 0x4d, STREAM_FRAMING_VERSION, 0, 0, 0);

/** The 4-byte header announcing a message of `length` bytes. */
export function encodeFrameHeader(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_FRAME_LENGTH) {
    throw new RangeError(`frame length ${length} is not a uint32`);
  }
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, length, false);
  return header;
}

/**
 * Header and payload in one new buffer (one copy). Adapters that can write two buffers in a row
 * (`socket.write(header); socket.write(message)`) should prefer `encodeFrameHeader` and skip the copy
 * for large messages.
 */
export function encodeFrame(message: Uint8Array, maxMessageSize = MAX_FRAME_LENGTH): Uint8Array {
  if (message.byteLength > maxMessageSize) throw new MessageTooLargeError(message.byteLength, maxMessageSize);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + message.byteLength);
  new DataView(frame.buffer).setUint32(0, message.byteLength, false);
  frame.set(message, FRAME_HEADER_BYTES);
  return frame;
}

/** Options of a FrameDecoder: size limit, preamble, and whether pushed chunks are reused by the caller. */
export interface FrameDecoderOptions {
  /** Largest accepted message; a larger announced length throws MessageTooLargeError. */
  maxMessageSize: number;
  /** When true, the stream must start with STREAM_PREAMBLE; anything else throws ProtocolError. */
  expectPreamble?: boolean;
  /**
   * When true, the caller reuses the chunks it pushes (a socket reading into one buffer): a frame found
   * whole in a chunk is copied out instead of returned as a view of it. Default false.
   */
  reusedChunks?: boolean;
}

/**
 * Incremental decoder. Feed it chunks in arrival order with `push`; it returns the whole messages that
 * became complete. After it has thrown, it is unusable (the stream is broken; close the connection).
 */
export class FrameDecoder {
  /** Largest accepted message, in bytes. */
  readonly maxMessageSize: number;
  readonly #reusedChunks: boolean;
  #preambleSeen: number;
  /** Partial header bytes (fewer than 4 available so far). */
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** The message being assembled across chunks, once its length is known. */
  #partial: Uint8Array | undefined;
  #partialFill = 0;
  #failed: Error | undefined;

  constructor(options: FrameDecoderOptions) {
    if (!(options.maxMessageSize >= 0)) throw new RangeError('maxMessageSize must be >= 0');
    this.maxMessageSize = Math.min(options.maxMessageSize, MAX_FRAME_LENGTH);
    this.#preambleSeen = options.expectPreamble ? 0 : STREAM_PREAMBLE.length;
    this.#reusedChunks = options.reusedChunks === true;
  }

  /** Bytes held for an incomplete frame (header bytes included). */
  get bufferedBytes(): number {
    return this.#headerFill + this.#partialFill;
  }

  /** True when the stream stopped in the middle of the preamble, a header or a message. */
  get isMidFrame(): boolean {
    return this.#preambleSeen < STREAM_PREAMBLE.length || this.#headerFill > 0 || this.#partial !== undefined;
  }

  /** Throw a ProtocolError if the stream ended mid-frame (call on end of stream). */
  finish(): void {
    if (this.#failed) throw this.#failed;
    if (this.#preambleSeen > 0 && this.#preambleSeen < STREAM_PREAMBLE.length) {
      throw this.#fail(new ProtocolError('stream ended inside the preamble'));
    }
    if (this.#headerFill > 0 || this.#partial !== undefined) {
      throw this.#fail(new ProtocolError(`stream ended inside a frame (${this.bufferedBytes} bytes buffered)`));
    }
  }

  /** True once the preamble (when expected) has been received and checked. */
  get preambleReceived(): boolean {
    return this.#preambleSeen >= STREAM_PREAMBLE.length;
  }

  /**
   * Decode a chunk. Returns the messages completed by it, in order. Throws MessageTooLargeError when a
   * header announces more than the limit, ProtocolError when the preamble is wrong.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    const out: Uint8Array[] = [];
    let pos = 0;
    const end = chunk.byteLength;

    while (this.#preambleSeen < STREAM_PREAMBLE.length && pos < end) {
      const i = this.#preambleSeen;
      if (chunk[pos] !== STREAM_PREAMBLE[i]) {
        throw this.#fail(
          new ProtocolError(
            i === 4
              ? `unsupported framing version ${chunk[pos]} (expected ${STREAM_FRAMING_VERSION})`
              : 'the peer does not speak the Tandem stream framing (bad preamble)',
          ),
        );
      }
      this.#preambleSeen++;
      pos++;
    }

    while (pos < end) {
      if (this.#partial !== undefined) {
        const want = this.#partial.byteLength - this.#partialFill;
        const take = Math.min(want, end - pos);
        this.#partial.set(chunk.subarray(pos, pos + take), this.#partialFill);
        this.#partialFill += take;
        pos += take;
        if (this.#partialFill === this.#partial.byteLength) {
          out.push(this.#partial);
          this.#partial = undefined;
          this.#partialFill = 0;
        }
        continue;
      }

      let length: number;
      if (this.#headerFill === 0 && end - pos >= FRAME_HEADER_BYTES) {
        length = readUint32BE(chunk, pos);
        pos += FRAME_HEADER_BYTES;
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, end - pos);
        this.#header.set(chunk.subarray(pos, pos + take), this.#headerFill);
        this.#headerFill += take;
        pos += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) break;
        this.#headerFill = 0;
        length = readUint32BE(this.#header, 0);
      }

      if (length > this.maxMessageSize) throw this.#fail(new MessageTooLargeError(length, this.maxMessageSize));

      if (end - pos >= length) {
        // Whole frame inside this chunk: a view, no copy — or a copy when the chunk will be reused (not
        // Buffer#slice, a view too).
        const frame = chunk.subarray(pos, pos + length);
        out.push(this.#reusedChunks ? new Uint8Array(frame) : frame);
        pos += length;
      } else {
        this.#partial = new Uint8Array(length); // size already checked against the limit
        this.#partialFill = 0;
      }
    }
    return out;
  }

  /**
   * While a message is being assembled and more of it is still to come: that unfilled rest. A reader
   * that chooses where the next bytes land (a socket's `onread` buffer) can read straight into it and
   * then call `filled`, instead of reading into a buffer of its own that `push` copies from. Undefined
   * when the next bytes are a header or the preamble (or the decoder has failed).
   */
  partialRest(): Uint8Array | undefined {
    if (this.#failed || this.#partial === undefined) return undefined;
    return this.#partial.subarray(this.#partialFill);
  }

  /** `n` bytes of the stream were written at the start of `partialRest()`; the message, if that completed it. */
  filled(n: number): Uint8Array | undefined {
    if (this.#failed) throw this.#failed;
    const partial = this.#partial;
    if (partial === undefined || !Number.isInteger(n) || n < 0 || this.#partialFill + n > partial.byteLength) {
      throw new RangeError(`filled(${n}): no message being assembled has room for that`);
    }
    this.#partialFill += n;
    if (this.#partialFill < partial.byteLength) return undefined;
    this.#partial = undefined;
    this.#partialFill = 0;
    return partial;
  }

  #fail(err: Error): Error {
    this.#failed = err;
    this.#partial = undefined;
    return err;
  }
}

function readUint32BE(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
