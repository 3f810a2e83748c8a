/**
 * The key-value simulation's replica slots (KvCluster delegates here): creating a slot's replica, what
 * each of its events means for the cluster's bookkeeping, and the replicas' background CPU load.
 */
import { createReplica, type Replica, type ReplicaEvent, type ReplicaOptions } from '@tandem/core';
import { installFaultHooks } from '@tandem/core/internal';
import type { LoadProfile } from './faults.js';
import type { Scheduler } from './scheduler.js';
import type { KvCluster } from './kv-cluster.js';
import { type BlockedInfo, type KvClusterHooks, type ReplicaSlot, SERVING } from './kv-cluster-types.js';
import { checkServesEverything, noteBlocked, promotedServes } from './kv-operator.js';
import type { SimKvReply, SimKvRequest, SimKvState } from './kv-service.js';

/** `slot`'s new replica (not started): the variant's fault hooks installed, the test seam's wrapper applied. */
export function createSlotReplica(
  cluster: KvCluster,
  slot: ReplicaSlot,
  roleHint: 'primary' | 'backup' | 'auto',
  hooks: KvClusterHooks,
): Replica<SimKvState> {
  const opts: ReplicaOptions<SimKvState, SimKvRequest, SimKvReply> = {
    service: cluster.service,
    env: slot.node.env(),
    listen: slot.address,
    peer: slot.peer,
    roleHint,
    nodeId: slot.name,
    config: cluster.config,
    ...hooks.replicaOptions?.(slot, cluster),
  };
  const created = createReplica(opts);
  if (cluster.variant.faultInjection) installFaultHooks(created, cluster.variant.faultInjection.variant);
  return hooks.wrapReplica ? hooks.wrapReplica(created, slot, cluster) : created;
}

/** What an event of `slot`'s current replica means, before the cluster records it: a trace note, a
 * `blocked` report, the slot's statefulness, the operator's promote taking effect, the serve check. */
export function noteReplicaEvent(cluster: KvCluster, slot: ReplicaSlot, event: ReplicaEvent): void {
  const type = (event as { type: string }).type;
  if (
    type === 'role' ||
    type === 'takeover' ||
    type === 'step-down' ||
    type === 'divergence' ||
    type === 'lost-entries' ||
    type === 'blocked'
  ) {
    cluster.sim.scheduler.note(`${slot.name} ${type} ${'role' in event ? event.role : ''} ${'epoch' in event ? event.epoch : ''}`);
  }
  if (type === 'blocked') noteBlocked(cluster, slot, event as unknown as Partial<BlockedInfo>);
  // A first primary starts from the initial state, which it holds: stateful too.
  if (event.type === 'role' && (event.role === 'backup' || SERVING.has(event.role))) slot.stateful = true;
  // A promoted replica serves from what it holds when it starts serving (it may order forwarded
  // entries first): that is the state the history after the promote starts from.
  if (type === 'promoted' || (event.type === 'role' && SERVING.has(event.role))) promotedServes(cluster, slot);
  if (event.type === 'role' && event.role === 'solo-primary') checkServesEverything(cluster, slot);
}

/** Background CPU load (see KvCluster.applyLoad). */
export function applyLoad(cluster: KvCluster, profile: LoadProfile): void {
  const sched = cluster.sim.scheduler;
  const rng = cluster.sim.random;
  profile.replicas.forEach((l, i) => {
    const slot = cluster.replicas[i];
    if (!slot) return;
    slot.node.cpu = { perMessageMs: l.perMessageMs, perKiBMs: l.perKiBMs, perTimerMs: 0 };
    if (l.gcEveryMs <= 0) return;
    const tick = (): void => {
      if (slot.node.state === 'up') {
        slot.node.stall(rng.between(1, l.gcMaxMs));
        cluster.gcStalls.set(slot.name, (cluster.gcStalls.get(slot.name) ?? 0) + 1);
      }
      sched.after(rng.between(0.5, 1.5) * l.gcEveryMs, 'gc', tick);
    };
    sched.after(rng.between(0.5, 1.5) * l.gcEveryMs, 'gc', tick);
  });
}

/** A replica event as the cluster records it. */
type EventRecord = { time: number; node: string; event: ReplicaEvent };

interface EventWaiter {
  pred: (e: EventRecord) => boolean;
  resolve: (e: EventRecord | undefined) => void;
}

/** Drivers waiting for a replica event (see KvCluster.nextEvent). */
export class EventWaiters {
  #waiters: EventWaiter[] = [];

  /** The next recorded event matching `pred`, or undefined after `timeoutMs`. */
  next(scheduler: Scheduler, pred: (e: EventRecord) => boolean, timeoutMs: number): Promise<EventRecord | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const waiter: EventWaiter = {
        pred,
        resolve: (e) => {
          if (done) return;
          done = true;
          timer.cancel();
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(e);
        },
      };
      const timer = scheduler.after(timeoutMs, 'driver wait', () => waiter.resolve(undefined));
      this.#waiters.push(waiter);
    });
  }

  /** A recorded event: resolve the waiters it matches. */
  dispatch(rec: EventRecord): void {
    for (const w of [...this.#waiters]) if (w.pred(rec)) w.resolve(rec);
  }
}

/** One line per replica: role, node state, epoch, appliedSeq, `blocked`. */
export function describeRoles(cluster: KvCluster): string {
  return cluster.replicas
    .map((r) => {
      if (!cluster.live(r)) return `${r.name}=down`;
      const s = r.replica!.status();
      const blocked = (s as { blocked?: BlockedInfo }).blocked;
      return `${r.name}=${s.role}${r.node.state !== 'up' ? ` (${r.node.state})` : ''} epoch ${s.epoch} seq ${s.appliedSeq}${blocked ? ` BLOCKED (${blocked.reason})` : ''}`;
    })
    .join(', ');
}
