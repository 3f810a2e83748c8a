/** Benchmark child: the joining replica. Transfers the state, catches up, verifies, follows; reports. */

import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import {
  decodeMessage,
  encodeMessage,
  lowerJoinerPriority,
  nodeTransferEnv,
  ServiceHost,
  StateTransferClient,
} from '@tandem/state-transfer';
import { benchKv, type ChildReport } from './kv.js';

const address = process.env.BENCH_TRANSFER_ADDRESS!;
const window = Number(process.env.BENCH_WINDOW ?? 8);
// --joiner-nice: a joiner is background work; optionally lower its priority during the transfer.
const nice = Number(process.env.BENCH_JOINER_NICE ?? 0);
const send = (m: ChildReport): void => void process.send?.(m);
// Exit with the orchestrator (its IPC channel closes when it dies).
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

/** The next 'go' from the orchestrator: start a transfer (follow = keep applying afterwards). */
function nextGo(): Promise<{ follow: boolean }> {
  return new Promise((resolve) => {
    const onGo = (m: { t: string; follow?: boolean }): void => {
      if (m.t !== 'go') return;
      process.off('message', onGo);
      resolve({ follow: m.follow === true });
    };
    process.on('message', onGo);
  });
}

async function main(): Promise<void> {
  if (process.env.BENCH_DEBUG) {
    let cpu = process.cpuUsage();
    setInterval(() => {
      const c = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      console.error(`[joiner] cpu ${((c.user + c.system) / 5000).toFixed(0)}%`);
    }, 500).unref();
  }
  const network = createRegistry([tcp()]);
  const env = nodeTransferEnv({ network });
  let host = new ServiceHost({ service: benchKv(), env });
  process.on('message', (m: { t: string }) => {
    if (m.t === 'digest') send({ t: 'digest', seq: host.seq, digest: host.digest() });
  });
  send({ t: 'ready', kvAddress: '', transferAddress: address, keys: 0, fillMs: 0 });
  // Each round: a fresh replica state receives the whole state, catches up and is verified.
  for (;;) {
    const { follow } = await nextGo();
    if (process.env.BENCH_NULL_JOINER) {
      // Diagnostic: a joiner that only acknowledges chunks (no decoding, building or catch-up), to see
      // what serving a transfer costs the serving replica by itself. Reports after snapEnd.
      const conn = await network.dial(address);
      const t0 = performance.now();
      await conn.send(
        encodeMessage({
          t: 'open',
          service: 'bench-kv',
          nodeId: 'null-' + Date.now(),
          version: 1,
          formats: [{ format: 'records', minVersion: 1 }],
          window,
          encodings: ['text-slices', 'packed-records'],
        }),
      );
      let bytes = 0;
      let records = 0;
      let seq = 0;
      for await (const b of conn) {
        const m = decodeMessage(b);
        if (m.t === 'meta') seq = m.seq;
        if (m.t === 'chunk') {
          bytes += m.data.length;
          records += m.records;
          void conn.send(encodeMessage({ t: 'ack', transferId: m.transferId, nextChunk: m.index + 1, appliedSeq: 0 })).catch(() => {});
        }
        if (m.t === 'snapEnd') break;
      }
      const ms = performance.now() - t0;
      conn.abort();
      send({
        t: 'joined',
        bytes,
        records,
        entries: 0,
        transferMs: ms,
        snapshotMs: ms,
        snapshotCpuMs: 0,
        pageFaults: 0,
        seq,
        digest: '',
        resumes: 0,
      });
      continue;
    }
    host = new ServiceHost({ service: benchKv(), env });
    const client = new StateTransferClient({
      env,
      service: benchKv(),
      sink: host,
      nodeId: `bench-joiner-${Date.now()}`,
      address,
      window,
      follow,
    });
    const restorePriority = lowerJoinerPriority(nice);
    let snapshotMs = 0;
    let snapshotCpuMs = 0;
    let pageFaults = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const faults0 = process.resourceUsage().minorPageFault;
    client.on((e) => {
      if (e.type === 'installed') {
        snapshotMs = performance.now() - t0;
        const c = process.cpuUsage(cpu0);
        snapshotCpuMs = (c.user + c.system) / 1000;
        pageFaults = process.resourceUsage().minorPageFault - faults0;
        if (process.env.BENCH_DEBUG)
          console.error(
            `[joiner] snapshot installed: cpu user ${(c.user / 1000).toFixed(0)} ms, system ${(c.system / 1000).toFixed(0)} ms, wall ${snapshotMs.toFixed(0)} ms, ${pageFaults} page faults`,
          );
      }
    });
    const r = await client.run().finally(restorePriority);
    send({
      t: 'joined',
      bytes: r.bytes,
      records: r.records,
      entries: r.entries,
      transferMs: performance.now() - t0,
      snapshotMs,
      snapshotCpuMs,
      pageFaults,
      seq: r.seq,
      digest: r.digest,
      resumes: r.resumes,
    });
    if (!follow) await client.close();
  }
}

main().catch((err: Error) => {
  send({ t: 'error', message: err.stack ?? err.message });
  process.exit(1);
});
