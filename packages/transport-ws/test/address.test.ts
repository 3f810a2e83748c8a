import { describe, expect, it } from 'vitest';
import { createRegistry, isTransportError } from '@tandem/transport';
import { websocket } from '../src/index.js';

describe('ws addresses', () => {
  it.each([
    ['tcp://127.0.0.1:80/x', 'wrong scheme'],
    ['ws://127.0.0.1/x', 'no port'],
    ['ws://127.0.0.1:0/x', 'dialling port 0'],
    ['ws://127.0.0.1:80/x?y=1', 'a query'],
    ['not a url', 'not a URL'],
  ])('dial rejects %s (%s) with InvalidAddressError', async (address) => {
    const err = await websocket()
      .dial(address)
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'InvalidAddressError')).toBe(true);
  });

  it('is picked by a registry for ws:// and wss://', () => {
    const registry = createRegistry([websocket()]);
    expect(registry.resolve('ws://h:1/p').name).toBe('ws');
    expect(registry.resolve('wss://h:1/p').name).toBe('ws');
  });

  it('refuses to listen on wss:// without a key and certificate', async () => {
    const err = await websocket()
      .listen('wss://127.0.0.1:0/x')
      .catch((e: unknown) => e);
    expect(isTransportError(err, 'InvalidAddressError')).toBe(true);
  });
});
