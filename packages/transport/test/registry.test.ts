import { describe, expect, it } from 'vitest';
import { createMemoryNetwork, createRegistry, isTransportError, schemeOf } from '@tandem/transport';

describe('transport registry with the memory transport', () => {
  it('routes by scheme and reports unknown schemes and malformed addresses with typed errors', async () => {
    const net = createMemoryNetwork();
    const registry = createRegistry([net]);
    expect(registry.schemes).toEqual(['mem']);
    expect(schemeOf('MEM://x')).toBe('mem');
    const listener = await registry.listen('mem://svc');
    const accepting = listener[Symbol.asyncIterator]().next();
    const conn = await registry.dial('mem://svc');
    expect((await accepting).done).toBe(false);
    expect(conn.remoteAddress).toBe('mem://svc');
    const unsupported = await registry.dial('tcp://127.0.0.1:1').catch((e: unknown) => e);
    expect(isTransportError(unsupported, 'UnsupportedSchemeError')).toBe(true);
    const noScheme = await registry.dial('svc').catch((e: unknown) => e);
    expect(isTransportError(noScheme, 'InvalidAddressError')).toBe(true);
    conn.abort();
    await listener.close();
  });

  it('memory addresses: empty names and "#" in listen names are invalid; dialler addresses carry the host', async () => {
    const net = createMemoryNetwork();
    for (const bad of ['mem://', 'mem://a b', 'tcp://x']) {
      expect(isTransportError(await net.listen(bad).catch((e: unknown) => e), 'InvalidAddressError')).toBe(true);
    }
    expect(isTransportError(await net.listen('mem://a#1').catch((e: unknown) => e), 'InvalidAddressError')).toBe(true);
    const listener = await net.listen('mem://node-a/primary');
    const conn = await net.host('client-7').dial('mem://node-a/primary');
    expect(conn.localAddress).toMatch(/^mem:\/\/client-7#\d+$/);
    const accepted = (await listener[Symbol.asyncIterator]().next()).value!;
    expect(accepted.remoteAddress).toBe(conn.localAddress);
    expect(accepted.localAddress).toBe('mem://node-a/primary');
    expect(net.sever('node-a')).toBe(1);
    expect((await accepted.closed).reason).toBe('severed');
    await listener.close();
  });
});
