// Regressions found by the fuzzer (npm run fuzz -- --target state-transfer; docs/TESTING.md, "Fuzzing").
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createMemoryNetwork } from '@tandem/transport';
import {
  chunkChecksum,
  decodeMessage,
  encodeMessage,
  ServiceHost,
  SlabMap,
  StateTransferClient,
  WholeStateChecksum,
  type TransferMessage,
} from '../src/index.js';
import { kvServiceV1, testEnv } from './helpers.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

describe('fuzz regressions', () => {
  it('a SlabMap builder told to expect 2^28 records does not reserve gigabytes for its index', () => {
    const b = SlabMap.builder();
    const before = process.memoryUsage().arrayBuffers;
    b.expect!(2 ** 28); // meta.totalRecords comes from the wire
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(grew).toBeLessThan(512 * 1024 * 1024); // was 8 GiB (or a RangeError where that cannot be reserved)
    b.add(['k1', 'v1', 'k2', 'v2']);
    const m = b.finish();
    expect(m.size).toBe(2);
    expect(m.get('k2')).toBe('v2');
  });

  /** A serving replica that answers the joiner's open with `script` (each chunk's CRC and the checksum computed). */
  async function joinFrom(script: (TransferMessage | { t: 'chunk'; data: Uint8Array; index: number })[]): Promise<unknown> {
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const listener = await network.listen('mem://hostile-st');
    void (async () => {
      for await (const conn of listener) {
        void (async () => {
          const it = conn[Symbol.asyncIterator]();
          const open = await it.next();
          if (open.done || decodeMessage(open.value).t !== 'open') return conn.abort();
          const whole = new WholeStateChecksum();
          for (const m of script) {
            if (m.t === 'chunk' && !('transferId' in m)) {
              const crc = chunkChecksum(m.data);
              whole.add(crc, m.data.length);
              await conn.send(
                encodeMessage({ t: 'chunk', transferId: 't1', index: m.index, section: 'state', records: 1, crc, data: m.data }),
              );
            } else if (m.t === 'snapEnd') {
              await conn.send(encodeMessage({ ...m, checksum: whole.digest() }));
            } else await conn.send(encodeMessage(m as TransferMessage));
          }
          for (;;) if ((await it.next()).done) break;
        })();
      }
    })();
    const sink = new ServiceHost({ service: kvServiceV1(), env });
    const client = new StateTransferClient({
      env,
      service: kvServiceV1(),
      sink,
      nodeId: 'joiner',
      address: 'mem://hostile-st',
      idleTimeoutMs: 500,
      maxReconnects: 1,
      reconnectDelayMs: 5,
    });
    try {
      return await client.run().then(
        () => 'verified',
        (err: unknown) => err,
      );
    } finally {
      await client.close();
      await listener.close();
    }
  }

  it('records that pass their checksums but do not build fail the transfer with a typed error', async () => {
    const err = (await joinFrom([
      { t: 'meta', transferId: 't1', resumed: false, seq: 0, epoch: 1, version: 1, format: 'records', startChunk: 0 },
      { t: 'chunk', index: 0, data: packr.pack(['odd']) }, // a record without its value
    ])) as Error & { cause?: Error };
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('TransferFailedError'); // was the builder's TypeError, untyped
    expect(err.cause?.name).toBe('TypeError');
  });

  it('a blob that passes its checksums but does not decode fails the transfer with a typed error', async () => {
    const err = (await joinFrom([
      { t: 'meta', transferId: 't1', resumed: false, seq: 0, epoch: 1, version: 1, format: 'blob', startChunk: 0 },
      { t: 'chunk', index: 0, data: Uint8Array.of(0xdc, 0x00) }, // a truncated msgpack array
      { t: 'snapEnd', transferId: 't1', chunks: 1, records: 0, bytes: 2, checksum: '' },
    ])) as Error & { cause?: Error };
    expect(err.name).toBe('TransferFailedError'); // was an untyped RangeError from decoding the blob
    expect(err.cause).toBeInstanceOf(Error);
  });
});
