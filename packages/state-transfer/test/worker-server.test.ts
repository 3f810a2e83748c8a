/**
 * serveTransfersInWorker: a real worker thread serves transfers over real TCP on 127.0.0.1 while this
 * thread keeps writing to the state.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import {
  nodeTransferEnv,
  serveTransfersInWorker,
  ServiceHost,
  SlabMap,
  slabMapSupport,
  StateTransferClient,
  TransferWorkerError,
  type HostedService,
  type StateTransferServerEvent,
  type TransferWorker,
} from '../src/index.js';
import { applyKv, fill, kvServiceV1, sleep, type KvRequest } from './helpers.js';

const KEYS = 100_000;

/** The kv service of helpers.ts over a SlabMap (shared: slabs in SharedArrayBuffers). */
function slabKv(shared: boolean): HostedService<SlabMap, KvRequest, string | null> {
  return {
    name: 'kv',
    version: 1,
    initialState: () => new SlabMap({ shared, slabBytes: 256 * 1024 }),
    apply: applyKv,
    ...slabMapSupport(),
  };
}

/** Sets and deletes on the owner's thread, a batch per timer tick, until stopped. */
function writer(execute: (r: KvRequest) => unknown, keySpace: number) {
  let stop = false;
  let writes = 0;
  const done = (async () => {
    while (!stop) {
      for (let i = 0; i < 40; i++, writes++) {
        const n = (writes * 7919) % keySpace;
        execute(writes % 5 === 0 ? { op: 'del', key: `key:${n}` } : { op: 'set', key: `key:${n}`, value: `w${writes}` });
      }
      await sleep(1);
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return writes;
    },
  };
}

/** The owners' environment (TCP on 127.0.0.1). */
const ownerEnv = nodeTransferEnv({ network: createRegistry([tcp()]) });
const workers: TransferWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});

async function join<S>(
  service: HostedService<S, KvRequest, string | null>,
  owner: ServiceHost<S, KvRequest, string | null>,
  worker: TransferWorker,
) {
  const env = nodeTransferEnv({ network: createRegistry([tcp()]) });
  const joiner = new ServiceHost({ service, env });
  const client = new StateTransferClient({ env, service, sink: joiner, nodeId: 'joiner', address: worker.address, follow: true });
  const load = writer((r) => owner.execute(r), KEYS);
  const result = await client.run();
  const writes = await load.stop();
  const deadline = Date.now() + 10_000;
  while (joiner.seq !== owner.seq && Date.now() < deadline) await sleep(5);
  await client.close();
  return { joiner, result, writes };
}

describe('serveTransfersInWorker', () => {
  it(`streams ${KEYS} keys from shared slabs on a worker thread while the owner keeps writing; digests equal`, async () => {
    const service = slabKv(true);
    // 'encoded' backlog: the owner answers backlog questions with the stored bytes (readPacked); the
    // tests below keep the default 'objects' backlog (encoded per question).
    const owner = new ServiceHost({ service, env: ownerEnv, backlog: { storage: 'encoded' } });
    fill((r) => owner.execute(r), KEYS);
    const worker = await serveTransfersInWorker({
      env: ownerEnv,
      source: owner,
      listen: 'tcp://127.0.0.1:0',
      server: { chunkBytes: 128 * 1024 },
    });
    workers.push(worker);
    const events: StateTransferServerEvent[] = [];
    worker.on((e) => events.push(e));
    const { joiner, result, writes } = await join(service, owner, worker);
    console.log(
      `[worker-server] ${result.records} records, ${(result.bytes / 1e6).toFixed(1)} MB, ${result.entries} catch-up entries, ${writes} writes; owner answered ${JSON.stringify(worker.answered)}`,
    );
    expect(writes).toBeGreaterThan(0);
    expect(result.entries).toBeGreaterThan(0);
    expect(result.seq).toBeGreaterThanOrEqual(result.snapshotSeq);
    // The worker's events cross a MessagePort: the joiner can be done before 'verified' arrives here.
    const verified = (): boolean => events.some((e) => e.type === 'verified' && e.seq === result.seq);
    for (let i = 0; i < 500 && !verified(); i++) await sleep(10);
    expect(verified()).toBe(true);
    // It keeps following: at the end the joiner equals the owner.
    expect(joiner.seq).toBe(owner.seq);
    expect(joiner.digest()).toBe(owner.digest());
    expect(joiner.state.size).toBe(owner.state.size);
    // The records were read from shared memory by the worker: none passed through this thread.
    expect(worker.answered.capture).toBe(1);
    expect(worker.answered.skips ?? 0).toBeGreaterThan(0);
    expect(worker.answered.next ?? 0).toBe(0);
    await worker.close();
    expect(await worker.ended).toBeUndefined();
    expect(owner.state.openSnapshots).toBe(0);
  }, 120_000);

  it.each([
    ['a SlabMap that is not in shared memory', slabKv(false)],
    ['a SnapshotMap', kvServiceV1()],
  ] as const)(
    'streams %s through the owner (records on request)',
    async (_label, service: HostedService<unknown, KvRequest, string | null>) => {
      const owner = new ServiceHost({ service, env: ownerEnv });
      fill((r) => owner.execute(r), 20_000);
      const worker = await serveTransfersInWorker({ env: ownerEnv, source: owner, listen: 'tcp://127.0.0.1:0' });
      workers.push(worker);
      const { joiner } = await join(service, owner, worker);
      expect(joiner.digest()).toBe(owner.digest());
      expect(worker.answered.next ?? 0).toBeGreaterThan(0);
      expect(worker.answered.skips ?? 0).toBe(0);
    },
    60_000,
  );

  it('applies thread settings to the worker thread only (Linux)', async (ctx) => {
    let linux = true;
    try {
      readFileSync('/proc/thread-self/stat');
    } catch {
      linux = false;
    }
    if (!linux) {
      console.log('[worker-server] skipped: no /proc/thread-self (thread settings are Linux only)');
      ctx.skip();
    }
    const owner = new ServiceHost({ service: slabKv(true), env: ownerEnv });
    const worker = await serveTransfersInWorker({ env: ownerEnv, source: owner, listen: 'tcp://127.0.0.1:0', thread: { nice: 7 } });
    workers.push(worker);
    expect(worker.thread.applied).toContain('nice 7');
    const niceOf = (tid: number): number =>
      Number(readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    expect(niceOf(worker.thread.tid)).toBe(7);
    expect(niceOf(process.pid)).toBe(0);
  }, 30_000);

  it('a worker that cannot start fails with a typed error naming the cause', async () => {
    const owner = new ServiceHost({ service: slabKv(true), env: ownerEnv });
    const start = serveTransfersInWorker({
      env: ownerEnv,
      source: owner,
      listen: 'tcp://127.0.0.1:0',
      transports: [{ module: '@tandem/transport-tcp', factory: 'noSuchFactory' }],
    });
    await expect(start).rejects.toBeInstanceOf(TransferWorkerError);
    await expect(start).rejects.toThrow(/noSuchFactory/);
  }, 30_000);
});
