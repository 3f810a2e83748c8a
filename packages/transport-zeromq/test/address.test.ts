import { describe, expect, it } from 'vitest';
import { createRegistry, isTransportError } from '@tandem/transport';
import { zeromq } from '../src/index.js';

describe('zeromq addresses', () => {
  it.each([
    ['tcp://127.0.0.1:80', 'wrong scheme'],
    ['zmq+tcp://127.0.0.1', 'no port'],
    ['zmq+tcp://127.0.0.1:0', 'dialling port 0'],
    ['zmq+tcp://127.0.0.1:80/path', 'a path'],
    ['not a url', 'not a URL'],
  ])('dial rejects %s (%s) with InvalidAddressError', async (address) => {
    const err = await zeromq()
      .dial(address)
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'InvalidAddressError')).toBe(true);
  });

  it('is picked by a registry for zmq+tcp://', () => {
    expect(createRegistry([zeromq()]).resolve('zmq+tcp://h:1').name).toBe('zeromq');
  });
});
