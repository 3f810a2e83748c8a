/** Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 4 bytes ↔ 5 characters. */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const VALUES = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

/** Bytes (a multiple of 4) as Z85 text. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.byteLength % 4 !== 0) throw new RangeError('z85Encode needs a multiple of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.byteLength; i += 4) {
    let value = bytes[i]! * 2 ** 24 + ((bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = ALPHABET[value % 85]! + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

/** Z85 text as bytes; undefined when it is not valid Z85. */
export function z85Decode(text: string): Uint8Array | undefined {
  if (text.length % 5 !== 0) return undefined;
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const v = VALUES.get(text[i + j]!);
      if (v === undefined) return undefined;
      value = value * 85 + v;
    }
    if (value > 0xffff_ffff) return undefined;
    const at = (i / 5) * 4;
    out[at] = Math.floor(value / 2 ** 24);
    out[at + 1] = (value >>> 16) & 0xff;
    out[at + 2] = (value >>> 8) & 0xff;
    out[at + 3] = value & 0xff;
  }
  return out;
}

/** The canonical form of a 40-character Z85 CURVE key; undefined when it is not one. */
export function canonicalCurveKey(key: unknown): string | undefined {
  if (typeof key !== 'string' || key.length !== 40) return undefined;
  const bytes = z85Decode(key);
  return bytes?.byteLength === 32 ? z85Encode(bytes) : undefined;
}
