/**
 * A simulated witness: a model of `@tandem/witness-etcd` inside the deterministic simulator.
 *
 * One `SimWitness` per simulated cluster plays the coordination service: a process of its own (`witness`,
 * on its own host, so the network can cut a replica off from it) holding one key — the pair's owner
 * `{ nodeId, epoch, leaseExpiresAt }` — and the highest epoch ever granted (`maxEpoch`, and to whom). Its rule:
 *
 *   grant iff (no live owner, or the owner is the asking node)
 *         and (epoch > maxEpoch, or epoch = maxEpoch and maxEpoch was granted to the asking node)
 *
 * An epoch is one primary's term: the same epoch granted to two replicas would let two different histories
 * carry one epoch (a replica that missed a takeover asks with the epoch it knows + 1 — exactly the epoch
 * the other replica already served at — the partition scenario found it with `epoch ≥ maxEpoch` alone: an
 * operator's promote of the stale side was granted the epoch its peer had served at, and lost its writes).
 * Each grant has a revision (etcd's mod revision); keepalives and releases name it, so a late release of an
 * older grant never removes a newer one.
 *
 * A grant is a lease of `leaseMs`. The replica's side (`SimWitnessClient`, the `Witness` a replica is given)
 * renews it with keepalives every leaseMs / 3 while it holds it. Everything travels over simulated time like
 * network messages (delays drawn from the run's PRNG, within the network's current delay settings) and
 * nothing gets through a partition: a request that cannot reach the witness, or whose answer cannot come
 * back, fails (rejects) after `callTimeoutMs`; a keepalive that cannot get through is simply lost.
 *
 * Conservative on both sides, like etcd's lease and its client:
 * - the witness drops the owner entry at lastKeepaliveReceived + leaseMs;
 * - the replica believes it holds the grant only until lastAcknowledgedKeepaliveSent + 0.9 × leaseMs (the
 *   send time of the newest request or keepalive the witness answered): never after the witness dropped it.
 * Timers and answers pass through the replica process (paused, stalled or crashed processes neither renew
 * nor hear answers). The witness process itself never crashes here: an etcd outage is a witness cut off
 * from both replicas (`cut`/`reconnect`, or a network partition with the `witness` node).
 */
import type { Witness, WitnessRequest } from '@tandem/core';
import type { SimNode } from './node.js';
import type { Simulation } from './simulation.js';

/** A request to the witness failed: it could not be reached, or its answer did not come back in time. */
export class WitnessUnreachableError extends Error {
  static override readonly name = 'WitnessUnreachableError';
  override readonly name = 'WitnessUnreachableError';
}

/** Options of a SimWitness: the lease (TTL), the call timeout, and the keepalive interval. */
export interface SimWitnessOptions {
  /** The grant's lease (TTL), ms. */
  leaseMs: number;
  /** A request without an answer after this long fails (the etcd client's deadline). Default 100 ms. */
  callTimeoutMs?: number;
  /** Keepalives while holding a grant, every … ms. Default leaseMs / 3 (etcd's client does the same). */
  keepaliveEveryMs?: number;
}

/** The replica the witness has granted ownership to: node, epoch, lease expiry, revision. */
export interface WitnessOwner {
  nodeId: string;
  epoch: number;
  leaseExpiresAt: number;
  /** The grant's revision (etcd's mod revision): keepalives and releases name it, so a late release of an
   * older grant never removes a newer one. */
  rev: number;
}

/** What happened at the witness (in order): for reports and tests. */
export interface WitnessRecord {
  time: number;
  nodeId: string;
  what: 'granted' | 'refused' | 'released' | 'expired' | 'keepalive-lost';
  epoch: number;
  reason?: string;
}

/** Counters of a SimWitness: requests asked, granted, refused and unreachable, keepalives, expired and released grants. */
export interface WitnessStats {
  asked: number;
  granted: number;
  refused: number;
  /** Requests the replicas saw fail (could not reach the witness, or the answer was lost). */
  unreachable: number;
  keepalives: number;
  /** Owner entries dropped because their lease ran out. */
  expired: number;
  released: number;
}

/** The fraction of the lease a holder trusts, counted from the send time of its newest acknowledged message. */
export const HOLD_FRACTION = 0.9;

/** The witness of each simulated world (the partition nemesis finds it here). */
const witnesses = new WeakMap<Simulation, SimWitness>();

/** The `SimWitness` of `sim`, if the run has one. */
export function witnessOf(sim: Simulation): SimWitness | undefined {
  return witnesses.get(sim);
}

/** A simulated witness (an etcd-like lease holder) that grants a pair's ownership by epoch, on virtual time. */
export class SimWitness {
  readonly node: SimNode;
  readonly leaseMs: number;
  readonly callTimeoutMs: number;
  readonly keepaliveEveryMs: number;
  /** The owner entry (possibly expired: see `liveOwner`). */
  owner: WitnessOwner | undefined;
  maxEpoch = 0;
  /** Who was granted maxEpoch. */
  maxEpochNode: string | undefined;
  #rev = 0;
  readonly records: WitnessRecord[] = [];
  readonly stats: WitnessStats = { asked: 0, granted: 0, refused: 0, unreachable: 0, keepalives: 0, expired: 0, released: 0 };
  /** Model self-checks: a client said `holds()` while the witness did not have it as the live owner. */
  readonly violations: string[] = [];
  readonly #sim: Simulation;

  constructor(sim: Simulation, options: SimWitnessOptions) {
    this.#sim = sim;
    this.node = sim.node('witness');
    this.leaseMs = options.leaseMs;
    this.callTimeoutMs = options.callTimeoutMs ?? 100;
    this.keepaliveEveryMs = options.keepaliveEveryMs ?? options.leaseMs / 3;
    witnesses.set(sim, this);
  }

  /** The current virtual time, ms. */
  get now(): number {
    return this.#sim.now;
  }

  /** Replicas cut off from the witness (see cut), by name. */
  readonly #cutOff = new Set<string>();

  /** Cut `node` off from the witness (its requests and keepalives get no answer) until `reconnect`. The
   * network's partitions (SimNetwork.partition with the `witness` node) cut it off as well. */
  cut(node: SimNode): void {
    this.#cutOff.add(node.name);
    this.#sim.scheduler.note(`witness cut ${node.name}`);
  }

  /** Reconnect a cut-off node (every node when none is given). */
  reconnect(node?: SimNode): void {
    if (node === undefined) this.#cutOff.clear();
    else this.#cutOff.delete(node.name);
    this.#sim.scheduler.note(`witness reconnect ${node?.name ?? 'all'}`);
  }

  /** Can `node` reach the witness (and hear back) now? */
  reachable(node: SimNode): boolean {
    return !this.#cutOff.has(node.name) && !this.#sim.network.isBlocked(node, this.node);
  }

  /** The owner whose lease has not run out (dropping an expired entry). */
  liveOwner(): WitnessOwner | undefined {
    const o = this.owner;
    if (o !== undefined && o.leaseExpiresAt <= this.now) {
      this.owner = undefined;
      this.stats.expired++;
      this.#record(o.nodeId, 'expired', o.epoch);
      return undefined;
    }
    return o;
  }

  /** The `Witness` for one incarnation of a replica process (create it with the replica, after a restart anew). */
  clientFor(node: SimNode): SimWitnessClient {
    return new SimWitnessClient(this, this.#sim, node);
  }

  /** One line: who owns the key. */
  describe(): string {
    const o = this.liveOwner();
    return o
      ? `owner ${o.nodeId} at epoch ${o.epoch}, lease ${(o.leaseExpiresAt - this.now).toFixed(0)} ms left (max epoch ${this.maxEpoch})`
      : `no owner (max epoch ${this.maxEpoch})`;
  }

  // ---- the witness process's handlers (run at delivery time) -----------------------------------------

  /** mayServeAlone at the witness: the grant's revision, or undefined (refused). */
  acquire(req: WitnessRequest): number | undefined {
    this.stats.asked++;
    const o = this.liveOwner();
    const ok =
      (o === undefined || o.nodeId === req.nodeId) &&
      (req.epoch > this.maxEpoch || (req.epoch === this.maxEpoch && (this.maxEpochNode === undefined || this.maxEpochNode === req.nodeId)));
    let rev: number | undefined;
    if (ok) {
      rev = ++this.#rev;
      this.owner = { nodeId: req.nodeId, epoch: req.epoch, leaseExpiresAt: this.now + this.leaseMs, rev };
      this.maxEpoch = req.epoch;
      this.maxEpochNode = req.nodeId;
      this.stats.granted++;
    } else this.stats.refused++;
    this.#record(req.nodeId, ok ? 'granted' : 'refused', req.epoch, req.reason);
    return rev;
  }

  /** A keepalive: extends the live entry of grant `rev`. */
  keepalive(nodeId: string, epoch: number, rev: number): boolean {
    this.stats.keepalives++;
    const o = this.liveOwner();
    if (o === undefined || o.rev !== rev) {
      this.#record(nodeId, 'keepalive-lost', epoch);
      return false;
    }
    o.leaseExpiresAt = this.now + this.leaseMs;
    return true;
  }

  /** Give grant `rev` up (a release of an older grant changes nothing). */
  release(nodeId: string, epoch: number, rev: number): void {
    const o = this.liveOwner();
    if (o === undefined || o.rev !== rev) return;
    this.owner = undefined;
    this.stats.released++;
    this.#record(nodeId, 'released', epoch);
  }

  #record(nodeId: string, what: WitnessRecord['what'], epoch: number, reason?: string): void {
    const r: WitnessRecord = { time: this.now, nodeId, what, epoch };
    if (reason !== undefined) r.reason = reason;
    this.records.push(r);
    this.#sim.scheduler.note(`witness ${what} ${nodeId} epoch ${epoch}`);
  }
}

/**
 * A replica's `Witness` (one per process incarnation). Talks to the shared `SimWitness` over simulated
 * time; keeps the grant alive with keepalives; says `holds()` only while the grant is certainly in force.
 */
export class SimWitnessClient implements Witness {
  readonly leaseMs: number;
  readonly #w: SimWitness;
  readonly #sim: Simulation;
  readonly #node: SimNode;
  readonly #inc: number;
  /** The grant this process holds: its epoch, and until when it trusts it. */
  #grant: { nodeId: string; epoch: number; rev: number; validUntil: number } | undefined;
  /** The revision of the newest grant this process got (what a release gives up). */
  #lastRev: number | undefined;
  #keepaliveTimer: { cancel(): void } | undefined;
  #last = 'not asked';

  constructor(witness: SimWitness, sim: Simulation, node: SimNode) {
    this.#w = witness;
    this.#sim = sim;
    this.#node = node;
    this.#inc = node.incarnation;
    this.leaseMs = witness.leaseMs;
  }

  mayServeAlone(request: WitnessRequest): Promise<boolean> {
    const sentAt = this.#sim.now;
    const req = { nodeId: request.nodeId, epoch: request.epoch, reason: request.reason };
    return this.#call(`acquire ${req.reason}`, () => this.#w.acquire(req)).then(
      (rev) => {
        const ok = rev !== undefined;
        if (ok) {
          const validUntil = sentAt + HOLD_FRACTION * this.leaseMs;
          this.#grant = { nodeId: req.nodeId, epoch: req.epoch, rev, validUntil };
          this.#lastRev = rev;
          this.#last = `granted epoch ${req.epoch} (${req.reason})`;
          this.#scheduleKeepalive();
        } else {
          this.#drop();
          this.#last = `refused epoch ${req.epoch} (${req.reason})`;
        }
        return ok;
      },
      (err: unknown) => {
        this.#last = `unreachable (${req.reason}, epoch ${req.epoch})`;
        throw err;
      },
    );
  }

  holds(): boolean {
    const g = this.#grant;
    const ok = g !== undefined && this.#sim.now < g.validUntil;
    if (ok) {
      // Ground truth: a holder must be the witness's live owner (the model's own safety rule).
      const o = this.#w.liveOwner();
      if (o === undefined || o.rev !== g.rev)
        this.#w.violations.push(
          `${this.#sim.now.toFixed(1)}ms ${g.nodeId} holds epoch ${g.epoch} by its own clock, the witness says ${this.#w.describe()}`,
        );
    }
    return ok;
  }

  release(request: { nodeId: string; epoch: number }): Promise<void> {
    this.#drop();
    const rev = this.#lastRev;
    this.#lastRev = undefined;
    if (rev === undefined) return Promise.resolve();
    this.#last = `released epoch ${request.epoch}`;
    return this.#call('release', () => {
      this.#w.release(request.nodeId, request.epoch, rev);
      return true;
    }).then(() => undefined);
  }

  describe(): string {
    const g = this.#grant;
    const held =
      g && this.#sim.now < g.validUntil ? `holds epoch ${g.epoch} for ${(g.validUntil - this.#sim.now).toFixed(0)} ms` : 'holds nothing';
    return `sim witness: ${held}; last: ${this.#last}`;
  }

  #drop(): void {
    this.#grant = undefined;
    this.#keepaliveTimer?.cancel();
    this.#keepaliveTimer = undefined;
  }

  #scheduleKeepalive(): void {
    this.#keepaliveTimer?.cancel();
    this.#keepaliveTimer = this.#node.env().setTimer(this.#w.keepaliveEveryMs, () => {
      this.#keepaliveTimer = undefined;
      const g = this.#grant;
      if (g === undefined) return;
      this.#scheduleKeepalive();
      const sentAt = this.#sim.now;
      this.#call('keepalive', () => this.#w.keepalive(g.nodeId, g.epoch, g.rev)).then(
        (ok) => {
          if (this.#grant !== g) return;
          if (ok) g.validUntil = Math.max(g.validUntil, sentAt + HOLD_FRACTION * this.leaseMs);
          else {
            this.#drop();
            this.#last = `lost the grant of epoch ${g.epoch} (keepalive refused)`;
          }
        },
        () => {}, // a lost keepalive: the next one may get through; the grant lapses by itself meanwhile
      );
    });
  }

  /**
   * One round trip to the witness process: the request is handled at the witness when it arrives (unless
   * the network cuts it off, at sending or on arrival), the answer comes back through this process's
   * event loop. No answer within callTimeoutMs: rejected with WitnessUnreachableError.
   */
  #call<T>(what: string, handle: () => T): Promise<T> {
    const sim = this.#sim;
    const me = this.#node;
    const inc = this.#inc;
    return new Promise<T>((resolve, reject) => {
      if (me.incarnation !== inc || me.state === 'down') return; // a dead process's call never returns
      let settled = false;
      const timer = me.env().setTimer(this.#w.callTimeoutMs, () => {
        if (settled) return;
        settled = true;
        this.#w.stats.unreachable++;
        reject(new WitnessUnreachableError(`witness ${what}: no answer within ${this.#w.callTimeoutMs} ms`));
      });
      const cut = () => !this.#w.reachable(me);
      if (cut()) return;
      sim.scheduler.after(this.#delay(), `witness-req ${me.name} ${what}`, () => {
        if (cut()) return;
        const answer = handle();
        if (cut()) return;
        sim.scheduler.after(this.#delay(), `witness-rep ${me.name} ${what}`, () => {
          if (cut()) return;
          me.gate(inc, `witness-rep ${what}`, () => {
            if (settled) return;
            settled = true;
            timer.cancel();
            resolve(answer);
          });
        });
      });
    });
  }

  #delay(): number {
    const f = this.#sim.network.faults;
    return this.#sim.random.between(f.minDelayMs, f.maxDelayMs);
  }
}
