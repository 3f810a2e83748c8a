import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { createMemoryNetwork } from '@tandem/transport';
import {
  BacklogOverrunError,
  ChecksumMismatchError,
  DigestMismatchError,
  encodeMessage,
  isStateTransferError,
  MigrationError,
  ServiceHost,
  StateTransferClient,
  StateTransferServer,
  TransferAbortedError,
  TransferFailedError,
  TransferProtocolError,
  TransferWorkerError,
  VersionMismatchError,
  type StateTransferErrorName,
  type StateTransferServerEvent,
} from '../src/index.js';
import { fill, kvServiceV1, testEnv } from './helpers.js';

/** The error a synchronous call throws. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('state-transfer errors', () => {
  it('are flat classes with a static name equal to the instance name and a stable ERR_ code', () => {
    const all: Error[] = [
      new TransferProtocolError('x'),
      new ChecksumMismatchError('x'),
      new BacklogOverrunError(2, 1),
      new DigestMismatchError(1, 'a', 'b'),
      new VersionMismatchError('x'),
      new MigrationError('x'),
      new TransferAbortedError(),
      new TransferFailedError('x'),
      new TransferWorkerError('x'),
    ];
    for (const err of all) {
      const C = err.constructor as { name: string };
      expect(Object.getPrototypeOf(C)).toBe(Error);
      expect(err.name).toBe(C.name);
      expect((err as unknown as { code: string }).code).toMatch(/^ERR_[A-Z_]+$/);
      expect(isStateTransferError(err, err.name as StateTransferErrorName)).toBe(true);
    }
    expect(new Set(all.map((e) => e.name)).size).toBe(all.length);
  });

  it("isStateTransferError checks its closed list of names: Node's ERR_ errors are not the package's", () => {
    // Before: without a name, any error whose code began with ERR_ passed.
    const nodeError = thrown(() => Buffer.alloc(1).readUInt32LE(4)) as Error & { code: string };
    expect(nodeError.code).toMatch(/^ERR_/); // ERR_BUFFER_OUT_OF_BOUNDS
    expect(isStateTransferError(nodeError)).toBe(false);
    expect(isStateTransferError(Object.assign(new Error('x'), { name: 'TransferFailedError', code: 'ERR_OTHER' }))).toBe(false);
    // Another copy of the package: same name, same code.
    expect(isStateTransferError(Object.assign(new Error('x'), { name: 'TransferFailedError', code: 'ERR_TRANSFER_FAILED' }))).toBe(true);
  });

  it("the server's protocol errors are TransferProtocolErrors (isStateTransferError recognises them)", async () => {
    // Before: the server built a plain Error named TransferProtocolError, without a code.
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const primary = new ServiceHost({ service: kvServiceV1(), env });
    fill((r) => primary.execute(r), 100);
    const server = new StateTransferServer({ env, source: primary });
    const events: StateTransferServerEvent[] = [];
    server.on((e) => events.push(e));
    const address = await server.listen('mem://protocol-errors');

    const early = await network.dial(address); // a message before `open`
    await early.send(encodeMessage({ t: 'ack', transferId: 't', nextChunk: 0, appliedSeq: 0 }));
    expect((await early.closed).by).toBe('remote');

    const late = await network.dial(address); // an ack for a chunk never sent
    await late.send(
      encodeMessage({ t: 'open', service: 'kv', nodeId: 'j', version: 1, formats: [{ format: 'records', minVersion: 1 }], window: 1 }),
    );
    for await (const bytes of late) {
      void bytes; // the meta
      break;
    }
    const meta = events.find((e) => e.type === 'session-open');
    if (meta?.type !== 'session-open') throw new Error('no session');
    await late.send(encodeMessage({ t: 'ack', transferId: meta.transferId, nextChunk: 1_000_000, appliedSeq: 0 }));
    expect((await late.closed).by).toBe('remote');

    const errors = events.flatMap((e) => (e.type === 'protocol-error' ? [e.error] : []));
    expect(errors.map((e) => e.message)).toEqual([
      'state transfer: expected open, got ack',
      'state transfer: ack for chunk 1000000 never sent',
    ]);
    for (const err of errors) {
      expect(isStateTransferError(err, 'TransferProtocolError'), String(err)).toBe(true);
      expect(err).toBeInstanceOf(TransferProtocolError);
    }
    await server.close();
  });

  it('a state whose builder throws a Node error fails the transfer with TransferFailedError, the original as cause', async () => {
    // Before: isStateTransferError took Node's ERR_BUFFER_OUT_OF_BOUNDS for one of the package's, and run()
    // rejected with the raw RangeError.
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const primary = new ServiceHost({ service: kvServiceV1(), env });
    fill((r) => primary.execute(r), 100);
    const server = new StateTransferServer({ env, source: primary });
    const address = await server.listen('mem://builder-throws');
    const base = kvServiceV1();
    const broken = {
      ...base,
      restoreChunks: () => {
        const b = base.restoreChunks!();
        return { ...b, addText: undefined, addPacked: undefined, add: () => void Buffer.alloc(1).readUInt32LE(4) };
      },
    };
    const joiner = new ServiceHost({ service: broken, env });
    const client = new StateTransferClient({ env, service: broken, sink: joiner, nodeId: 'j', address });
    const err = await client.run().catch((e: unknown) => e);
    expect(isStateTransferError(err, 'TransferFailedError'), String(err)).toBe(true);
    expect(((err as Error).cause as { code?: string }).code).toMatch(/^ERR_/);
    await server.close();
  });
});
