/** Why a connection's byte stream was rejected. */
export type XProtocolErrorCode =
  | 'bad-byte-order'
  | 'bad-length'
  | 'too-large'
  | 'truncated'
  | 'malformed-setup'
  | 'malformed-request'
  | 'setup-refused'
  | 'upstream-failed';

/**
 * Malformed, truncated or refused X11 input. The connection that produced it is closed; nothing else is
 * affected. Test `err.name === 'XProtocolError'` (survives two copies of the package).
 */
export class XProtocolError extends Error {
  static override readonly name = 'XProtocolError';
  override readonly name = 'XProtocolError';
  constructor(
    readonly code: XProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}
