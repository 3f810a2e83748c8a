/** Byte-order-aware field access for X11 messages (the client chooses the order at connection setup). */

export type ByteOrder = 'LE' | 'BE';

export function read16(buf: Buffer, offset: number, le: boolean): number {
  return le ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
}

export function read32(buf: Buffer, offset: number, le: boolean): number {
  return le ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}

export function write16(buf: Buffer, offset: number, value: number, le: boolean): void {
  if (le) buf.writeUInt16LE(value & 0xffff, offset);
  else buf.writeUInt16BE(value & 0xffff, offset);
}

export function write32(buf: Buffer, offset: number, value: number, le: boolean): void {
  if (le) buf.writeUInt32LE(value >>> 0, offset);
  else buf.writeUInt32BE(value >>> 0, offset);
}

/** Number of bytes needed to pad n up to a multiple of 4. */
export const pad4 = (n: number): number => (4 - (n & 3)) & 3;
