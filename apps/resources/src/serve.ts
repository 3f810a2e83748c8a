/**
 * `tandem-resources serve`: one replica of the resource handler (Pro2) or of the resource (Pro3). Prints
 * JSON lines on stdout: {event:"serving"|"role"|"takeover"|"crashing"|"stats", …}. `crashAfterReply`
 * (tests, demo): on the first entry that emits an outbound message, this replica replies and then SIGKILLs
 * itself before the message leaves — its backup must re-issue it.
 */
import { createCausalReplica, type CausalState } from '@tandem/causal/replication';
import { createReplica, nodeEnv, type ReplicationConfig } from '@tandem/core';
import { TransportRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { causalCounterService, counterService, HANDLER, handlerService, RESOURCE, resourceService } from './service.js';

/** Options of `serve`: the service, addresses, role, the two pairs, replication settings, log level, crash point, event sink. */
export interface ServeOptions {
  /** counter / causal-counter: the benchmark's plain and causal single services. */
  service: 'handler' | 'resource' | 'counter' | 'causal-counter';
  listen: string;
  peer: string;
  role: 'primary' | 'backup' | 'auto';
  nodeId?: string;
  /** The two pairs: [A, B] of the handler and of the resource. */
  handler: readonly [string, string];
  resource: readonly [string, string];
  replication?: Partial<ReplicationConfig>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Crash after replying to the N-th request that emits an outbound message (true = the first). */
  crashAfterReply?: boolean | number;
  /** Where events go (default: JSON lines on stdout). */
  emit?: (event: Record<string, unknown>) => void;
}

/** A transport registry with TCP, as every process of this app uses. */
export function createNetwork(): TransportRegistry {
  return new TransportRegistry([tcp()]);
}

/** Run one replica of a service in this process until `stop` is called; events go to stdout as JSON lines. */
export async function serve(opts: ServeOptions): Promise<{
  /** Stop the replica (printing its final stats first). */
  stop(): Promise<void>;
}> {
  const emit = opts.emit ?? ((e) => process.stdout.write(`${JSON.stringify(e)}\n`));
  if (opts.service === 'counter') return servePlainCounter(opts, emit);
  const env = nodeEnv({ network: createNetwork(), logLevel: opts.logLevel ?? 'warn', logFields: { node: opts.nodeId ?? opts.listen } });
  const service = opts.service === 'handler' ? handlerService : opts.service === 'resource' ? resourceService : causalCounterService;
  const members: Record<string, readonly [string, string]> =
    opts.service === 'causal-counter' ? {} : { [HANDLER]: opts.handler, [RESOURCE]: opts.resource };
  let crashed = false;
  let outboundEntries = 0;
  const crashAt = opts.crashAfterReply === true ? 1 : opts.crashAfterReply === false ? 0 : (opts.crashAfterReply ?? 0);
  const { replica, runtime } = createCausalReplica({
    service: service as typeof handlerService,
    env,
    listen: opts.listen,
    peer: opts.peer,
    roleHint: opts.role,
    nodeId: opts.nodeId ?? opts.listen,
    ...(opts.replication ? { config: opts.replication, clientConfig: opts.replication } : {}),
    members,
    onError: (error, what) => emit({ event: 'outbound-retry', to: what.to, n: what.n, confirm: what.confirm, error: error.message }),
    ...(crashAt > 0
      ? {
          wrapHooks: (hooks) => ({
            ...hooks,
            afterApply(entry, state) {
              const out = (state as CausalState<unknown>).outbox;
              if (!crashed && out.length > 0 && out[out.length - 1]!.seq === entry.seq && ++outboundEntries === crashAt) {
                crashed = true;
                emit({ event: 'crashing', seq: entry.seq, outbound: out.filter((o) => o.seq === entry.seq).length });
                // The reply goes out in this turn; the outbound message never does.
                setTimeout(() => process.kill(process.pid, 'SIGKILL'), 30);
                return undefined;
              }
              return crashed ? undefined : hooks.afterApply?.(entry, state);
            },
          }),
        }
      : {}),
  });
  replica.on((e) => {
    if (e.type === 'role') emit({ event: 'role', role: e.role, epoch: e.epoch });
    else if (e.type === 'takeover') emit({ event: 'takeover', epoch: e.epoch, appliedSeq: e.appliedSeq });
    else if (e.type === 'divergence') emit({ event: 'divergence', seq: e.seq });
  });
  await replica.start();
  emit({ event: 'serving', service: service.name, role: replica.status().role, address: replica.address });
  return {
    async stop() {
      emit({ event: 'stats', ...runtime.stats(), appliedSeq: replica.status().appliedSeq });
      await runtime.close();
      await replica.stop();
    },
  };
}

/** The plain counter: a @tandem/core replica with no hooks (the benchmark's baseline). */
async function servePlainCounter(opts: ServeOptions, emit: (e: Record<string, unknown>) => void): Promise<{ stop(): Promise<void> }> {
  const env = nodeEnv({ network: createNetwork(), logLevel: opts.logLevel ?? 'warn' });
  const replica = createReplica({
    service: counterService,
    env,
    listen: opts.listen,
    peer: opts.peer,
    roleHint: opts.role,
    nodeId: opts.nodeId ?? opts.listen,
    ...(opts.replication ? { config: opts.replication } : {}),
  });
  replica.on((e) => {
    if (e.type === 'role') emit({ event: 'role', role: e.role, epoch: e.epoch });
  });
  await replica.start();
  emit({ event: 'serving', service: counterService.name, role: replica.status().role, address: replica.address });
  return { stop: () => replica.stop() };
}
