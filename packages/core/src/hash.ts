/**
 * 64-bit FNV-1a over bytes, as 16 hex digits. Deterministic across processes and platforms; used for
 * reply digests (claims 3/8: "a checksum derived from a reply") and state digests. Not cryptographic.
 */
export function fnv1a64(bytes: Uint8Array): string {
  // 64-bit arithmetic in four 16-bit limbs (h3 h2 h1 h0), prime 2^40 + 2^8 + 0xb3.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i]!;
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3;
    const t2 = h2 * 0x1b3 + (h0 << 8);
    const t3 = h3 * 0x1b3 + (h1 << 8);
    const c1 = t1 + (t0 >>> 16);
    const c2 = t2 + (c1 >>> 16);
    h0 = t0 & 0xffff;
    h1 = c1 & 0xffff;
    h2 = c2 & 0xffff;
    h3 = (t3 + (c2 >>> 16)) & 0xffff;
  }
  return hex4(h3) + hex4(h2) + hex4(h1) + hex4(h0);
}

function hex4(n: number): string {
  return (n + 0x10000).toString(16).slice(1);
}
