import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isTransportError, TimeoutError, type TransportErrorName } from '@tandem/transport';

/** The error a synchronous call throws. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('isTransportError', () => {
  it("checks its own closed list of names: Node's ERR_ errors and namesakes from elsewhere are not transport errors", () => {
    // Before: anything with a string name and a code starting with ERR_ passed, Node's own errors included.
    const badPort = thrown(() => connect({ port: 99_999 })) as Error & { code: string };
    expect(badPort.code).toBe('ERR_SOCKET_BAD_PORT');
    expect(isTransportError(badPort)).toBe(false);
    const outOfRange = thrown(() => Buffer.alloc(1).readUInt32LE(4)) as Error & { code: string };
    expect(outOfRange.code).toMatch(/^ERR_/);
    expect(isTransportError(outOfRange)).toBe(false);
    expect(isTransportError(Object.assign(new Error('tls'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }))).toBe(false);
    // A transport error's name with another code (Node's AbortError: ABORT_ERR; a DOMException's number).
    expect(isTransportError(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }))).toBe(false);
    expect(isTransportError(AbortSignal.abort().reason)).toBe(false);
    expect(isTransportError(Object.assign(new Error('x'), { name: 'TimeoutError', code: 'ERR_SOMETHING_ELSE' }))).toBe(false);
    expect(isTransportError({ name: 'toString', code: 'ERR_X' }), 'an inherited property is not a listed name').toBe(false);
  });

  it('recognises an error of another copy of the package by its name and code', () => {
    const other = Object.assign(new Error('timed out'), { name: 'TimeoutError', code: 'ERR_TIMEOUT' });
    expect(isTransportError(other)).toBe(true);
    expect(isTransportError(other, 'TimeoutError')).toBe(true);
    expect(isTransportError(other, 'AbortError' satisfies TransportErrorName)).toBe(false);
    expect(isTransportError(new TimeoutError())).toBe(true);
    for (const v of [undefined, null, 'TimeoutError', 42]) expect(isTransportError(v)).toBe(false);
  });
});
