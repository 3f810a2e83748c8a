/**
 * TEST ONLY: deliberately broken frame decoders, handed to the `framing` target (`--inject NAME`, or the
 * harness test) to prove the harness fails when the decoder is wrong. Product code is untouched: each is
 * a wrapper around (or a misconfigured) FrameDecoder that lives here.
 */
import { FrameDecoder, MAX_FRAME_LENGTH, MessageTooLargeError, type FrameDecoderOptions } from '@tandem/transport';
import type { DecoderFactory, DecoderLike } from './framing.js';

class Wrapped implements DecoderLike {
  constructor(
    protected readonly inner: FrameDecoder,
    private readonly map: (m: Uint8Array) => Uint8Array = (m) => m,
  ) {}
  push(chunk: Uint8Array): Uint8Array[] {
    return this.inner.push(chunk).map(this.map);
  }
  finish(): void {
    this.inner.finish();
  }
  partialRest(): Uint8Array | undefined {
    return this.inner.partialRest();
  }
  filled(n: number): Uint8Array | undefined {
    const m = this.inner.filled(n);
    return m === undefined ? undefined : this.map(m);
  }
  get bufferedBytes(): number {
    return this.inner.bufferedBytes;
  }
}

/** Allocates for any announced length and checks the limit only on complete messages. */
class AllocFirst extends Wrapped {
  constructor(
    private readonly limit: number,
    options: FrameDecoderOptions,
  ) {
    super(new FrameDecoder({ ...options, maxMessageSize: MAX_FRAME_LENGTH }));
  }
  override push(chunk: Uint8Array): Uint8Array[] {
    const out = super.push(chunk);
    for (const m of out) if (m.length > this.limit) throw new MessageTooLargeError(m.length, this.limit);
    return out;
  }
}

export const BROKEN_DECODERS = ['alloc-first', 'corrupt', 'untyped-error', 'off-by-one-limit'] as const;

export function brokenDecoder(name: string): DecoderFactory {
  switch (name) {
    case 'alloc-first':
      return (o) => new AllocFirst(Math.min(o.maxMessageSize, MAX_FRAME_LENGTH), o);
    case 'corrupt':
      // Flips the last byte of every message whose length is 3 mod 5.
      return (o) =>
        new Wrapped(new FrameDecoder(o), (m) => {
          if (m.length % 5 !== 3) return m;
          const c = m.slice();
          c[c.length - 1]! ^= 0x40;
          return c;
        });
    case 'untyped-error':
      // Reports a bad preamble or an oversized frame as a plain TypeError.
      return (o) => {
        const d = new FrameDecoder(o);
        const retype = <T>(fn: () => T): T => {
          try {
            return fn();
          } catch (err) {
            throw new TypeError((err as Error).message);
          }
        };
        return {
          push: (c) => retype(() => d.push(c)),
          finish: () => retype(() => d.finish()),
          partialRest: () => d.partialRest(),
          filled: (n) => retype(() => d.filled(n)),
          get bufferedBytes() {
            return d.bufferedBytes;
          },
        };
      };
    case 'off-by-one-limit':
      // Accepts a frame one byte over the limit.
      return (o) => new Wrapped(new FrameDecoder({ ...o, maxMessageSize: Math.min(o.maxMessageSize, MAX_FRAME_LENGTH - 1) + 1 }));
    default:
      throw new Error(`unknown broken decoder "${name}" (known: ${BROKEN_DECODERS.join(', ')})`);
  }
}
