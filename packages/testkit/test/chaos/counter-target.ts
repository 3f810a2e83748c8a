/**
 * The worked example of @tandem/testkit/chaos for a service of your own (docs/TESTING.md): how to start
 * a replica, and a workload that records a history for the linearizability checker and knows what the
 * final state must be.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, nodeEnv, type Client, type ReplicationConfig } from '@tandem/core';
import { TransportRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { checkOperations, type Model, type Operation } from '@tandem/testkit';
import type { ChaosTarget, ChaosWorkload, FinalState, WorkloadContext, WorkloadVerdict } from '@tandem/testkit/chaos';
import { counterService } from './counter-service.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..', '..');

type AddInput = { add: number; total?: number };
/** The sequential specification: each add returns the total after it. */
export const counterModel: Model<number, AddInput> = {
  init: () => 0,
  step: (total, input) => ({ ok: input.total === undefined || input.total === total + input.add, state: total + input.add }),
  hash: (total) => String(total),
};

export function counterTarget(replication: Partial<ReplicationConfig>): ChaosTarget {
  return {
    name: 'chaos-counter',
    // 1. How to start a replica: any command line; JSON event lines on stdout; IPC optional.
    launch: (spec) => ({
      command: process.execPath,
      args: [
        '--conditions=@tandem/source',
        '--import',
        'tsx',
        join(here, 'counter-serve.ts'),
        '--listen',
        spec.listen,
        '--peer',
        spec.peer,
        '--role',
        spec.role, // restarts ('serve' or 'rejoin') join as backup
        '--node-id',
        spec.name,
        '--replication',
        JSON.stringify(replication),
      ],
      cwd: root,
      ipc: true,
    }),
    // 2. The load: flat out, every call reported to ctx.record, a history kept for the checker.
    workload: (ctx) => new CounterWorkload(ctx, replication),
  };
}

class CounterWorkload implements ChaosWorkload {
  readonly history: Operation<AddInput>[] = [];
  acked = 0;
  unknown = 0;
  running = false;
  loops: Promise<void>[] = [];
  readonly network = new TransportRegistry([tcp()]);
  readonly clients: Client<{ add: number }, { total: number }>[];

  constructor(
    readonly ctx: WorkloadContext,
    readonly config: Partial<ReplicationConfig>,
  ) {
    this.clients = Array.from({ length: ctx.clients }, () =>
      createClient({ service: counterService, env: nodeEnv({ network: this.network }), servers: [...ctx.servers], config }),
    );
  }

  start(): void {
    this.running = true;
    this.loops = this.clients.map(async (client, c) => {
      while (this.running) {
        const op: { index: number; client: string; input: AddInput; call: number; return?: number } = {
          index: this.history.length,
          client: `c${c}`,
          input: { add: 1 },
          call: this.ctx.now(),
        };
        this.history.push(op);
        try {
          const r = await client.callWithInfo({ add: 1 });
          op.input.total = r.reply.total;
          op.return = this.ctx.now();
          this.acked++;
          this.ctx.record({ client: c, call: op.call, return: op.return, ok: true, epoch: r.epoch });
        } catch {
          this.unknown++; // outcome unknown: no return in the history
          this.ctx.record({ client: c, call: op.call, return: this.ctx.now(), ok: false });
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close()));
  }

  // 3. The verdict: read the state through the service (add 0), compare with what clients were told.
  async verify(final: FinalState): Promise<WorkloadVerdict> {
    if (!final.serving) throw new Error('no replica is serving');
    const reader = createClient({
      service: counterService,
      env: nodeEnv({ network: this.network }),
      servers: [...final.servers],
      config: this.config,
    });
    try {
      const { total } = await reader.call({ add: 0 });
      const lin = checkOperations(counterModel, this.history);
      return {
        lost: Math.max(0, this.acked - total),
        duplicated: Math.max(0, total - this.acked - this.unknown),
        linearizable: lin.verdict === 'linearizable',
        linearizability: {
          verdict: lin.verdict,
          operations: this.history.length,
          ...(lin.explanation ? { explanation: lin.explanation.slice(0, 4000) } : {}),
        },
        extra: { total, acked: this.acked, unknown: this.unknown },
      };
    } finally {
      await reader.close();
    }
  }
}
