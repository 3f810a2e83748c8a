// Hand-written ZMTP 3.0 bytes (RFC 23), for raw-socket tests: a NULL-mechanism client's greeting and
// READY, and frame headers.

/** The 64-byte greeting of a NULL-mechanism client. */
export function zmtpGreeting(): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3; // version 3.0
  g[11] = 0;
  g.write('NULL', 12, 'latin1');
  return g; // as-server 0, filler zeros
}

/** A READY command announcing a DEALER socket. */
export function zmtpReady(): Buffer {
  const name = Buffer.from('Socket-Type', 'latin1');
  const value = Buffer.from('DEALER', 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(value.byteLength);
  const body = Buffer.concat([Buffer.from([5]), Buffer.from('READY', 'latin1'), Buffer.from([name.byteLength]), name, len, value]);
  return Buffer.concat([Buffer.from([0x04, body.byteLength]), body]);
}

/** The header of a (last) message frame of `size` bytes, in the long form. */
export function zmtpLongFrameHeader(size: number): Buffer {
  const h = Buffer.alloc(9);
  h[0] = 0x02;
  h.writeBigUInt64BE(BigInt(size), 1);
  return h;
}
