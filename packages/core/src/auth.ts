/**
 * Who may do what (docs/SECURITY.md): keys, the challenge–response handshake that makes a connection a
 * peer's (or an authenticated client's), and the MAC that lets a backup verify the state information
 * clients forward.
 *
 * A cluster key is a shared secret of at least 32 bytes. From it two subkeys are derived (HKDF-SHA256)
 * so one purpose can never stand in for another: `peer-auth` proves a handshake, `state-mac`
 * authenticates state information. A `KeyRing` holds one or more keys: the first signs, every one
 * verifies (key rotation: add the new key second everywhere, then make it first, then drop the old).
 */
import * as nodeCrypto from 'node:crypto';
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { encodeValue } from './codec.js';

/** Shortest key accepted (bytes). */
export const MIN_KEY_BYTES = 32;
/** Handshake nonce length (bytes). */
export const NONCE_BYTES = 16;
/** Handshake proofs and state-information MACs: HMAC-SHA256 truncated to 128 bits. */
export const MAC_BYTES = 16;

export type KeyPurpose = 'peer-auth' | 'state-mac';

/** A key is missing, too short or malformed. */
export class KeyError extends Error {
  static override readonly name = 'KeyError';
  override readonly name = 'KeyError';
}

function derive(key: Uint8Array, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', key, new Uint8Array(0), `tandem/1 ${purpose}`, 32));
}

/** Keys for one purpose: the first signs, any verifies. */
export class KeyRing {
  readonly #keys: readonly HmacKey[];

  private constructor(keys: readonly Buffer[]) {
    this.#keys = keys.map((k) => new HmacKey(k));
  }

  /** Derive the `purpose` subkeys of `keys` (raw cluster or client keys, ≥ MIN_KEY_BYTES each). */
  static derive(keys: readonly Uint8Array[], purpose: KeyPurpose): KeyRing {
    if (keys.length === 0) throw new KeyError('a key ring needs at least one key');
    for (const k of keys) {
      if (!(k instanceof Uint8Array) || k.length < MIN_KEY_BYTES)
        throw new KeyError(`a key must have at least ${MIN_KEY_BYTES} bytes (got ${k instanceof Uint8Array ? k.length : typeof k})`);
    }
    return new KeyRing(keys.map((k) => derive(k, purpose)));
  }

  /** Number of keys in the ring. */
  get size(): number {
    return this.#keys.length;
  }

  /** MAC of `parts` (concatenated) with the signing key. */
  sign(...parts: Uint8Array[]): Uint8Array {
    return this.#keys[0]!.mac(parts);
  }

  /** True when `tag` is the MAC of `parts` under any key of the ring (constant time per key). */
  verify(tag: Uint8Array | undefined, ...parts: Uint8Array[]): boolean {
    if (tag === undefined || tag.length !== MAC_BYTES) return false;
    for (const k of this.#keys) {
      if (timingSafeEqual(k.mac(parts), tag)) return true;
    }
    return false;
  }
}

/** One-shot SHA-256 (node:crypto `hash`, Node ≥ 20.12), when this Node has it. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;
const SHA256_BLOCK = 64;

/**
 * HMAC-SHA256 (RFC 2104) truncated to MAC_BYTES, with the inner and outer padded keys computed once per key:
 * on the reply path this is two one-shot hashes instead of a createHmac object that re-derives both pads on
 * every call (≈ 1.3–1.5× cheaper per MAC; tools/bench-replication's authVsNoAuthP50 counts it). Falls back
 * to createHmac where node:crypto has no one-shot `hash`. Same bytes either way (test/auth.test.ts).
 */
export class HmacKey {
  readonly #key: Buffer;
  readonly #ipad: Buffer;
  readonly #opad: Buffer;

  constructor(key: Buffer) {
    if (key.length > SHA256_BLOCK) throw new KeyError(`an HMAC key longer than ${SHA256_BLOCK} bytes must be hashed first`);
    this.#key = key;
    this.#ipad = Buffer.alloc(SHA256_BLOCK, 0x36);
    this.#opad = Buffer.alloc(SHA256_BLOCK, 0x5c);
    for (let i = 0; i < key.length; i++) {
      this.#ipad[i]! ^= key[i]!;
      this.#opad[i]! ^= key[i]!;
    }
  }

  mac(parts: readonly Uint8Array[]): Uint8Array {
    if (oneShot === undefined) {
      const h = createHmac('sha256', this.#key);
      for (const p of parts) h.update(p);
      return new Uint8Array(h.digest().subarray(0, MAC_BYTES));
    }
    const inner = oneShot('sha256', Buffer.concat([this.#ipad, ...parts]), 'buffer');
    const outer = oneShot('sha256', Buffer.concat([this.#opad, inner]), 'buffer');
    return new Uint8Array(outer.subarray(0, MAC_BYTES));
  }
}

// ---------------------------------------------------------------- handshake proofs

/** What both sides of a handshake bind their proofs to. */
export interface HandshakeTranscript {
  service: string;
  /** The dialler's hello kind ('peer', 'transfer', 'client'). */
  kind: string;
  dialerId: string;
  acceptorId: string;
  dialerNonce: Uint8Array;
  acceptorNonce: Uint8Array;
  /** The epoch announced in the dialler's hello. */
  dialerEpoch: number;
}

function transcriptBytes(side: 'accept' | 'dial', t: HandshakeTranscript): Uint8Array {
  return encodeValue(['tandem-auth/1', side, t.service, t.kind, t.dialerId, t.acceptorId, t.dialerNonce, t.acceptorNonce, t.dialerEpoch]);
}

/** The proof one side sends: a MAC over the transcript, labelled by side so a proof cannot be reflected. */
export function handshakeProof(ring: KeyRing, side: 'accept' | 'dial', t: HandshakeTranscript): Uint8Array {
  return ring.sign(transcriptBytes(side, t));
}

export function verifyHandshakeProof(
  ring: KeyRing,
  side: 'accept' | 'dial',
  t: HandshakeTranscript,
  proof: Uint8Array | undefined,
): boolean {
  return ring.verify(proof, transcriptBytes(side, t));
}

// ---------------------------------------------------------------- state information MACs

const seqHeader = (seq: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, seq);
  return b;
};

/** MAC of a packed entry list relayed by clients ('entries' mode), bound to the reply's seq. */
export function packedEntriesMac(ring: KeyRing, upToSeq: number, bytes: Uint8Array): Uint8Array {
  return ring.sign(seqHeader(upToSeq), bytes);
}

export function verifyPackedEntries(ring: KeyRing, upToSeq: number, bytes: Uint8Array, tag: Uint8Array | undefined): boolean {
  return ring.verify(tag, seqHeader(upToSeq), bytes);
}

/** The fields of an entry a MAC covers ('seq-digest' mode: the client rebuilds the entry from its request). */
export interface MacedEntryFields {
  seq: number;
  epoch: number;
  clientId: string;
  requestId: number;
  body: unknown;
  time: number;
  seed: number;
  digest: string;
}

function entryBytes(e: MacedEntryFields): Uint8Array {
  return encodeValue(['tandem-entry/1', e.seq, e.epoch, e.clientId, e.requestId, e.time, e.seed, e.digest, e.body]);
}

export function entryMac(ring: KeyRing, e: MacedEntryFields): Uint8Array {
  return ring.sign(entryBytes(e));
}

export function verifyEntryMac(ring: KeyRing, e: MacedEntryFields, tag: Uint8Array | undefined): boolean {
  return ring.verify(tag, entryBytes(e));
}

// ---------------------------------------------------------------- key files

/**
 * Parse a key file's text: one key per line as 64+ hex digits (`tandem-kv keygen` writes one), blank
 * lines and `#` comments ignored. The first key signs; the others are accepted too (rotation).
 */
export function parseKeyFile(text: string, what = 'key file'): Uint8Array[] {
  const keys: Uint8Array[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^[0-9a-fA-F]+$/.test(line) || line.length % 2 !== 0) throw new KeyError(`${what}, line ${i + 1}: not a hex key`);
    if (line.length < MIN_KEY_BYTES * 2)
      throw new KeyError(
        `${what}, line ${i + 1}: a key needs at least ${MIN_KEY_BYTES} bytes (${MIN_KEY_BYTES * 2} hex digits), got ${line.length / 2}`,
      );
    keys.push(new Uint8Array(Buffer.from(line, 'hex')));
  }
  if (keys.length === 0) throw new KeyError(`${what}: no key in it`);
  return keys;
}

/** The text of a key file holding `key` (hex), as `tandem-kv keygen` writes it. */
export function formatKeyFile(key: Uint8Array): string {
  return `# tandem cluster key (keep it secret: mode 0600); one key per line, the first signs\n${Buffer.from(key).toString('hex')}\n`;
}
