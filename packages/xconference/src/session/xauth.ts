import { readFileSync } from 'node:fs';

/** One entry of an Xauthority file. */
export interface XauthEntry {
  readonly family: number;
  readonly address: Buffer;
  readonly display: string;
  readonly name: string;
  readonly data: Buffer;
}

/** Parses an Xauthority file (big-endian 16-bit lengths); returns [] if it is missing or malformed. */
export function readXauthority(path: string | undefined): XauthEntry[] {
  if (!path) return [];
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return [];
  }
  const out: XauthEntry[] = [];
  let off = 0;
  const field = (): Buffer | null => {
    if (off + 2 > buf.length) return null;
    const len = buf.readUInt16BE(off);
    if (off + 2 + len > buf.length) return null;
    const v = buf.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    return v;
  };
  while (off + 2 <= buf.length) {
    const family = buf.readUInt16BE(off);
    off += 2;
    const address = field();
    const display = field();
    const name = field();
    const data = field();
    if (!address || !display || !name || !data) break;
    out.push({
      family,
      address: Buffer.from(address),
      display: display.toString('latin1'),
      name: name.toString('latin1'),
      data: Buffer.from(data),
    });
  }
  return out;
}

const FAMILY_LOCAL = 256;
const FAMILY_WILD = 65535;

/** The MIT-MAGIC-COOKIE-1 for display number `display` on this host, if the file has one. */
export function findCookie(entries: readonly XauthEntry[], display: number, hostname: string): { name: string; data: Buffer } | undefined {
  const e = entries.find(
    (x) =>
      x.name === 'MIT-MAGIC-COOKIE-1' &&
      (x.display === String(display) || x.display === '') &&
      (x.family === FAMILY_WILD || (x.family === FAMILY_LOCAL && x.address.toString('latin1') === hostname) || x.family === 0),
  );
  return e ? { name: e.name, data: e.data } : undefined;
}
