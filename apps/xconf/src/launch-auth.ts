// Launch authorisation: a conference's MIT-MAGIC-COOKIE-1, the Xauthority file that hands it to launched
// applications, and the gate that checks it in each application's connection setup.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Socket } from 'node:net';
import { encodeSetupFailed, parseClientSetup } from '@tandem/xconference';

export const COOKIE_NAME = 'MIT-MAGIC-COOKIE-1';
const FAMILY_LOCAL = 256;
const FAMILY_WILD = 65535;

/** A new random 16-byte MIT-MAGIC-COOKIE-1. */
export function newCookie(): Buffer {
  return randomBytes(16);
}

function field(b: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** Encodes Xauthority entries for display `n` (this host's unix socket, and any address for TCP). */
export function encodeXauthority(n: number, cookie: Buffer, host = hostname()): Buffer {
  const entry = (family: number, address: Buffer): Buffer => {
    const fam = Buffer.alloc(2);
    fam.writeUInt16BE(family);
    return Buffer.concat([fam, field(address), field(Buffer.from(String(n))), field(Buffer.from(COOKIE_NAME)), field(cookie)]);
  };
  return Buffer.concat([entry(FAMILY_LOCAL, Buffer.from(host)), entry(FAMILY_WILD, Buffer.alloc(0))]);
}

/**
 * Writes the conference's Xauthority file, readable by the daemon's user only (0600). A file left there is
 * removed first and the new one created exclusively, so its mode is always 0600 and no symlink is followed.
 */
export function writeXauthority(path: string, n: number, cookie: Buffer): void {
  rmSync(path, { force: true });
  writeFileSync(path, encodeXauthority(n, cookie), { mode: 0o600, flag: 'wx' });
}

/** Longest connection setup the gate reads (name and data are 16-bit lengths, so 12 + 2×64 KiB is the limit). */
const MAX_SETUP = 12 + 2 * 65540;

/**
 * Reads an application's connection setup, and hands the connection with the bytes read so far to `accept`
 * (for `Conference.addApplication(sock, prelude)`) only if it presents `cookie`; otherwise answers with an
 * X setup "failed" reply and closes it.
 */
export function gateApplication(
  sock: Socket,
  cookie: Buffer,
  accept: (sock: Socket, prelude: Buffer) => void,
  opts: { readonly timeoutMs?: number; readonly log?: (line: string) => void; readonly label?: string } = {},
): void {
  let buf = Buffer.alloc(0);
  const timer = setTimeout(() => done('connection setup timed out'), opts.timeoutMs ?? 10_000);
  const done = (refusal: string | null, le = true): void => {
    clearTimeout(timer);
    sock.removeListener('data', onData);
    sock.removeListener('error', onError);
    sock.removeListener('close', onClose);
    if (refusal === null) {
      accept(sock, buf);
      return;
    }
    opts.log?.(`${opts.label ?? '[conference]'} application refused: ${refusal}`);
    sock.on('error', () => {});
    if (!sock.destroyed) sock.end(encodeSetupFailed(`tandem-xconf: ${refusal}`, le));
    sock.destroySoon?.();
  };
  const onError = (): void => {
    clearTimeout(timer);
    sock.destroy();
  };
  const onClose = (): void => clearTimeout(timer);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    let setup;
    try {
      setup = parseClientSetup(buf);
    } catch {
      sock.removeListener('data', onData);
      clearTimeout(timer);
      sock.destroy(); // not X at all (bad byte-order byte): nothing sensible to answer
      return;
    }
    if (!setup) {
      if (buf.length > MAX_SETUP) done('connection setup too long');
      return;
    }
    const le = setup.byteOrder === 'LE';
    const ok = setup.authName === COOKIE_NAME && setup.authData.length === cookie.length && timingSafeEqual(setup.authData, cookie);
    done(
      ok
        ? null
        : setup.authName
          ? `authorization ${setup.authName} rejected (not this conference's cookie)`
          : 'authorization required (launch with `tandem-xconf ctl launch`)',
      le,
    );
  };
  sock.on('data', onData);
  sock.on('error', onError);
  sock.on('close', onClose);
}
