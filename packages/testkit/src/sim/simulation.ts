/**
 * One simulated world: a scheduler (virtual time), the run's single seeded PRNG, the network, and the
 * hosts and processes living in it. Everything random in a run derives from `seed`.
 */
import type { Logger } from '@tandem/core';
import { SimNetwork } from './network.js';
import { SimHost, SimNode } from './node.js';
import { SeededRandom } from './random.js';
import { Scheduler, type RunLimits } from './scheduler.js';

/** Options of a Simulation: seed, trace recording, logger, and how many log lines to keep. */
export interface SimulationOptions {
  seed: number;
  /** Keep every executed event's label (for replay comparisons; costs memory). */
  recordTrace?: boolean;
  /** Receives the protocol's log lines (default: kept in a bounded ring for failure reports). */
  logger?: Logger;
  /** Size of the log ring. Default 400. */
  logRing?: number;
}

/** One log line of a simulated node, with its virtual time. */
export interface LogLine {
  time: number;
  level: string;
  event: string;
  fields?: Record<string, unknown> | undefined;
}

/** A deterministic simulation: a scheduler, a network, hosts and nodes, all driven by one seed. */
export class Simulation {
  readonly seed: number;
  readonly scheduler: Scheduler;
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly hosts = new Map<string, SimHost>();
  readonly nodes = new Map<string, SimNode>();
  /** The last `logRing` log lines (all levels), and every 'error' line. */
  readonly logs: LogLine[] = [];
  readonly errorLogs: LogLine[] = [];
  readonly #logger: Logger;

  constructor(options: SimulationOptions) {
    this.seed = options.seed;
    this.scheduler = new Scheduler({ recordTrace: options.recordTrace ?? false });
    this.random = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.scheduler, this.random);
    const ring = options.logRing ?? 400;
    this.#logger = options.logger ?? {
      log: (level, event, fields) => {
        const line = { time: this.scheduler.now, level, event, fields };
        if (level === 'error') this.errorLogs.push(line);
        this.logs.push(line);
        if (this.logs.length > ring) this.logs.shift();
      },
    };
  }

  /** The current virtual time, ms. */
  get now(): number {
    return this.scheduler.now;
  }

  /** The host of this name, created on first use. */
  host(name: string): SimHost {
    let h = this.hosts.get(name);
    if (!h) this.hosts.set(name, (h = new SimHost(name)));
    return h;
  }

  /** A process on `host` (default: a host of its own with the same name). */
  node(name: string, host: SimHost | string = name): SimNode {
    if (this.nodes.has(name)) throw new Error(`node ${name} exists`);
    const h = typeof host === 'string' ? this.host(host) : host;
    const net = this.network;
    const n = new SimNode(
      name,
      h,
      this.scheduler,
      this.random,
      {
        onCrash: (node, hostCrash, resets) => net.nodeCrashed(node, hostCrash, resets),
        transportFor: (node, inc) => net.transportFor(node, inc),
      },
      this.#logger,
    );
    this.nodes.set(name, n);
    return n;
  }

  /** The machine dies: every process on it crashes at once, silently for the network. */
  crashHost(host: SimHost): void {
    this.scheduler.note(`host-crash ${host.name}`);
    host.up = false;
    for (const n of host.nodes) n.crash(true);
  }

  /** The machine is back (its processes stay down until restarted one by one). */
  rebootHost(host: SimHost): void {
    this.scheduler.note(`host-reboot ${host.name}`);
    host.up = true;
  }

  /** Run the simulation until its queue is empty or a limit is reached. */
  run(limits?: RunLimits): Promise<void> {
    return this.scheduler.run(limits);
  }

  /** Run for `ms` of virtual time. */
  runFor(ms: number): Promise<void> {
    return this.scheduler.run({ until: this.scheduler.now + ms });
  }
}
