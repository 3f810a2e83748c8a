import { describe, expect, it } from 'vitest';
import { createMemoryNetwork } from '@tandem/transport';
import {
  ServiceHost,
  StateTransferClient,
  StateTransferServer,
  isStateTransferError,
  type HostedService,
  type SnapshotMap,
} from '../src/index.js';
import { fill, kvServiceV1, kvServiceV2, testEnv, v1ToV2, type KvRequest, type V2Value } from './helpers.js';

async function transfer<S>(
  serverService: HostedService<SnapshotMap<string>, KvRequest, string | null>,
  joinerService: HostedService<S, KvRequest, string | null>,
  keys = 5000,
) {
  const network = createMemoryNetwork();
  const env = testEnv(network);
  const primary = new ServiceHost({ service: serverService, env });
  const joiner = new ServiceHost({ service: joinerService, env });
  fill((r) => primary.execute(r), keys);
  const server = new StateTransferServer({ env, source: primary, chunkBytes: 32 * 1024 });
  const address = await server.listen('mem://versioned');
  const client = new StateTransferClient({ env, service: joinerService, sink: joiner, nodeId: 'j', address });
  try {
    const result = await client.run();
    // After the transfer the primary keeps serving old-version requests; the joiner can apply them too.
    return { result, primary, joiner };
  } finally {
    await client.close().catch(() => {});
    await server.close();
  }
}

describe('versioned state', () => {
  it('a version-2 joiner receives a version-1 state and migrates it per record (chunked)', async () => {
    const { result, joiner } = await transfer(kvServiceV1(), kvServiceV2());
    expect(result.sourceVersion).toBe(1);
    expect(result.version).toBe(2);
    expect(result.format).toBe('records');
    const state = joiner.state as SnapshotMap<V2Value>;
    expect(state.size).toBe(5000);
    expect(state.get('key:42')).toEqual({ v: 'x'.repeat(24) + '00000042', len: 32 });
  });

  it('migrates a whole-state (blob) transfer with the snapshot() step', async () => {
    const v1 = kvServiceV1();
    const { snapshotChunks: _a, restoreChunks: _b, ...v1Blob } = v1;
    const v2 = kvServiceV2();
    const { snapshotChunks: _c, restoreChunks: _d, ...v2Blob } = v2;
    const { result, joiner } = await transfer(v1Blob, v2Blob, 3000);
    expect(result.format).toBe('blob');
    expect((joiner.state as SnapshotMap<V2Value>).get('key:7')?.len).toBe(32);
  });

  it('chooses the blob format when only snapshot migrations exist', async () => {
    const onlySnapshot = { from: 1, snapshot: v1ToV2.snapshot! };
    const { result, joiner } = await transfer(kvServiceV1(), kvServiceV2([onlySnapshot]), 1000);
    expect(result.format).toBe('blob');
    expect((joiner.state as SnapshotMap<V2Value>).size).toBe(1000);
  });

  it('an older joiner cannot take a newer state: VersionMismatch, refused by the server', async () => {
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const primary = new ServiceHost({ service: kvServiceV2(), env });
    const joiner = new ServiceHost({ service: kvServiceV1(), env });
    const server = new StateTransferServer({ env, source: primary });
    const address = await server.listen('mem://newer');
    const client = new StateTransferClient({ env, service: kvServiceV1(), sink: joiner, nodeId: 'j', address });
    const err = await client.run().catch((e: unknown) => e);
    expect(isStateTransferError(err, 'TransferFailedError')).toBe(true);
    expect((err as Error).message).toMatch(/ERR_VERSION_MISMATCH/);
    await server.close();
  });

  it('a missing migration step is refused before any data is sent', async () => {
    const network = createMemoryNetwork();
    const env = testEnv(network);
    const primary = new ServiceHost({ service: kvServiceV1(), env });
    const joiner = new ServiceHost({ service: kvServiceV2([]), env });
    const server = new StateTransferServer({ env, source: primary });
    const address = await server.listen('mem://nomig');
    const client = new StateTransferClient({ env, service: kvServiceV2([]), sink: joiner, nodeId: 'j', address });
    const err = await client.run().catch((e: unknown) => e);
    expect(isStateTransferError(err, 'TransferFailedError')).toBe(true);
    expect((err as Error).message).toMatch(/migrate from \(2\)|ERR_VERSION_MISMATCH/);
    await server.close();
  });
});
