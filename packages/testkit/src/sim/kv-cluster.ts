/**
 * The key-value simulation's world: two replicas on two hosts (`ra` on hostA, `rb` on hostB), clients
 * c0 (co-located with ra), c1 (with rb) and the others alone, their workload and its recorded history,
 * and the bookkeeping the checks need (faults, disruptions, replica events).
 */
import {
  computeTimingBounds,
  createClient,
  createReplica,
  errorName,
  resolveConfig,
  type DerivedTimingBounds,
  type Replica,
  type ReplicaEvent,
  type ReplicaOptions,
  type ReplicationConfig,
  type Role,
} from '@tandem/core';
import type { KvHistoryOp } from '../linearizability/kv-history.js';
import type { VariantSpec } from './faults.js';
import { createSimKvService, type SimKvReply, type SimKvRequest, type SimKvState } from './kv-service.js';
import type { SimHost, SimNode } from './node.js';
import type { Simulation } from './simulation.js';

const SERVING: ReadonlySet<Role> = new Set<Role>(['primary', 'solo-primary']);

export interface ReplicaSlot {
  name: string;
  node: SimNode;
  address: string;
  peer: string;
  replica: Replica<SimKvState> | undefined;
}

export interface ClientSlot {
  name: string;
  node: SimNode;
  remaining: number;
  finished: boolean;
  incarnation: number;
}

export interface KvClusterOptions {
  variant: VariantSpec;
  config: Partial<ReplicationConfig>;
  clients: number;
  opsPerClient: number;
  keys: number;
}

export class KvCluster {
  readonly sim: Simulation;
  readonly variant: VariantSpec;
  readonly config: Partial<ReplicationConfig>;
  readonly cfg: ReplicationConfig;
  readonly bounds: DerivedTimingBounds;
  readonly service = createSimKvService();
  readonly replicas: [ReplicaSlot, ReplicaSlot];
  readonly servers: readonly [string, string];
  readonly clients: ClientSlot[] = [];
  readonly clientNodes: Set<SimNode>;
  readonly opsPerClient: number;
  readonly keys: number;
  readonly failures: string[] = [];
  readonly faultLog: string[] = [];
  readonly history: KvHistoryOp[] = [];
  readonly replicaEvents: { time: number; node: string; event: ReplicaEvent }[] = [];
  /** Moments the service may be disrupted (crash, pause start, client resume, chaos start/end, sever):
   * an operation must complete within the liveness bound of the later of its call and the last of these
   * before its return. Restarts and the resumption of a paused server are not disruptions. */
  readonly disruptions: number[] = [];
  /** Chaos windows: loss beyond maxRetransmits is outside the bound's assumptions; completions inside are exempt. */
  readonly chaosWindows: [number, number][] = [];
  /** Client incarnations that died with the primary's host, and when. */
  readonly diedWithPrimary: { label: string; at: number }[] = [];

  constructor(sim: Simulation, options: KvClusterOptions) {
    this.sim = sim;
    this.variant = options.variant;
    this.config = options.config;
    this.cfg = resolveConfig(options.config);
    this.bounds = computeTimingBounds(options.config);
    this.opsPerClient = options.opsPerClient;
    this.keys = options.keys;
    const hostA = sim.host('hostA');
    const hostB = sim.host('hostB');
    this.replicas = [
      { name: 'ra', node: sim.node('ra', hostA), address: 'sim://ra', peer: 'sim://rb', replica: undefined },
      { name: 'rb', node: sim.node('rb', hostB), address: 'sim://rb', peer: 'sim://ra', replica: undefined },
    ];
    this.servers = [this.replicas[0].address, this.replicas[1].address];
    const clientHosts: (SimHost | string)[] = [hostA, hostB];
    for (let i = 0; i < options.clients; i++) {
      const name = `c${i}`;
      this.clients.push({ name, node: sim.node(name, clientHosts[i] ?? `host-${name}`), remaining: options.opsPerClient, finished: false, incarnation: 0 });
    }
    this.clientNodes = new Set(this.clients.map((c) => c.node));
  }

  // ---- time helpers (harness-level: not tied to any simulated process) ----------------------------

  sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => this.sim.scheduler.after(ms, 'driver', r));
  }

  async waitUntil(pred: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
    const end = this.sim.now + timeoutMs;
    while (!pred()) {
      if (this.sim.now >= end) return false;
      await this.sleep(stepMs);
    }
    return true;
  }

  noteFault(what: string, disruptive = true): void {
    this.faultLog.push(`${this.sim.now.toFixed(1)}ms ${what}`);
    this.sim.scheduler.note(`fault ${what}`);
    if (disruptive) this.disruptions.push(this.sim.now);
  }

  // ---- replicas -----------------------------------------------------------------------------------

  startReplica(slot: ReplicaSlot, roleHint: 'primary' | 'backup'): void {
    const sched = this.sim.scheduler;
    const opts: ReplicaOptions<SimKvState, SimKvRequest, SimKvReply> = {
      service: this.service,
      env: slot.node.env(),
      listen: slot.address,
      peer: slot.peer,
      roleHint,
      nodeId: slot.name,
      config: this.config,
    };
    if (this.variant.faultInjection) opts.faultInjection = this.variant.faultInjection;
    const replica = createReplica(opts);
    slot.replica = replica;
    const inc = slot.node.incarnation;
    replica.on((event) => {
      if (slot.node.incarnation !== inc) return;
      if (event.type === 'role' || event.type === 'takeover' || event.type === 'step-down' || event.type === 'divergence' || event.type === 'lost-entries') {
        sched.note(`${slot.name} ${event.type} ${'role' in event ? event.role : ''} ${'epoch' in event ? event.epoch : ''}`);
      }
      this.replicaEvents.push({ time: sched.now, node: slot.name, event });
    });
    void replica.start().catch((err: unknown) => {
      if (slot.node.incarnation === inc) this.failures.push(`${slot.name} failed to start: ${String(err)}`);
    });
  }

  /** A crashed server comes back and must rejoin as backup. */
  restartReplica(slot: ReplicaSlot): void {
    slot.node.restart();
    this.noteFault(`restart ${slot.name} (rejoins as backup)`, false);
    this.startReplica(slot, 'backup');
  }

  live(s: ReplicaSlot): boolean {
    return s.node.state !== 'down' && s.replica !== undefined;
  }

  role(s: ReplicaSlot): Role | undefined {
    return this.live(s) ? s.replica!.status().role : undefined;
  }

  /** The running replica that serves, with the highest epoch. */
  primary(): ReplicaSlot | undefined {
    const serving = this.replicas.filter((s) => s.node.state === 'up' && SERVING.has(this.role(s)!));
    serving.sort((a, b) => b.replica!.status().epoch - a.replica!.status().epoch);
    return serving[0];
  }

  backup(): ReplicaSlot | undefined {
    return this.replicas.find((s) => s.node.state === 'up' && this.role(s) === 'backup');
  }

  /** A primary with its backup, in the same epoch. */
  healthy(): boolean {
    const p = this.primary();
    const b = this.backup();
    return p !== undefined && b !== undefined && p !== b && this.role(p) === 'primary' && p.replica!.status().epoch === b.replica!.status().epoch;
  }

  describeRoles(): string {
    return this.replicas.map((r) => `${r.name}=${this.role(r) ?? 'down'}`).join(', ');
  }

  // ---- clients ------------------------------------------------------------------------------------

  /** Start (or continue, after a restart) a client's workload: get/put/append on random keys with
   * unique written values, each operation recorded with virtual call and return times. */
  runClient(slot: ClientSlot): void {
    const sched = this.sim.scheduler;
    const rng = this.sim.random;
    const inc = slot.node.incarnation;
    const env = slot.node.env();
    const client = createClient({ service: this.service, env, servers: this.servers, config: this.config });
    const label = `${slot.name}#${slot.incarnation}`;
    const pause = (ms: number) => new Promise<void>((r) => env.setTimer(ms, r));
    void (async () => {
      while (slot.remaining > 0) {
        await pause(rng.between(0, 15));
        const i = this.opsPerClient - slot.remaining;
        slot.remaining--;
        const key = `k${rng.int(0, this.keys - 1)}`;
        const r = rng.next();
        const req: SimKvRequest =
          r < 0.4 ? { op: 'get', key } : r < 0.6 ? { op: 'put', key, value: `${label}.${i};` } : { op: 'append', key, value: `${label}.${i};` };
        const rec: KvHistoryOp = { client: label, op: req.op, key, value: req.op === 'get' ? null : req.value, call: sched.now };
        this.history.push(rec);
        sched.note(`call ${label} ${req.op} ${key}`);
        try {
          const rep = await client.call(req);
          rec.return = sched.now;
          if (req.op === 'get') rec.value = rep.value;
          sched.note(`return ${label} ${req.op} ${key} ${rep.value ?? '∅'}`);
        } catch (err) {
          if (slot.node.incarnation !== inc) return;
          if (errorName(err) === 'ServiceUnavailableError') {
            this.failures.push(`liveness: ${label} ${req.op} ${key} called at ${rec.call.toFixed(1)}ms failed with ServiceUnavailableError at ${sched.now.toFixed(1)}ms`);
          } else this.failures.push(`${label} ${req.op} ${key}: unexpected ${errorName(err)}: ${(err as Error).message}`);
        }
      }
      if (slot.node.incarnation === inc) slot.finished = true;
    })();
  }

  /** A crashed client process comes back as a new client (new clientId) and finishes the workload. */
  restartClient(slot: ClientSlot): void {
    if (slot.node.state !== 'down') return;
    slot.node.restart();
    slot.incarnation++;
    if (slot.remaining > 0) this.runClient(slot);
    else slot.finished = true;
  }

  activeClients(): ClientSlot[] {
    return this.clients.filter((c) => !c.finished && c.node.state === 'up');
  }

  /** Read a key through a fresh client process, recording the read in the history. */
  async finalRead(key: string, reader: { call(req: SimKvRequest): Promise<SimKvReply> }): Promise<void> {
    const rec: KvHistoryOp = { client: 'reader', op: 'get', key, value: null, call: this.sim.now };
    this.history.push(rec);
    try {
      rec.value = (await reader.call({ op: 'get', key })).value;
      rec.return = this.sim.now;
    } catch (err) {
      this.failures.push(`final read of ${key}: ${errorName(err)}: ${(err as Error).message}`);
    }
  }
}
