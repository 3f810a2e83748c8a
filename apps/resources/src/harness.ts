/**
 * Child processes for the demo, the real-process tests and the benchmark: `tandem-resources serve` per
 * replica (the built CLI, or the TypeScript sources under tsx when this module itself runs from them), a
 * free loopback port, and the four replicas of the two pairs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReplicationConfig } from '@tandem/core';

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');

/** How to start this package's CLI: node + dist/cli.js, or node + tsx + src/cli.ts from the sources. */
export function cliCommand(): { args: string[]; cwd: string } {
  if (fromSource)
    return { args: ['--conditions=@tandem/source', '--import', 'tsx', join(here, 'cli.ts')], cwd: resolve(here, '..', '..', '..') };
  return { args: [join(here, 'cli.js')], cwd: process.cwd() };
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** A JSON event line printed by a serving process. */
export interface ServeEvent {
  event: string;
  [k: string]: unknown;
}

/** Options of a ServeProcess: the service, addresses, role, the two pairs, replication settings, crash point, node id. */
export interface ServeProcessOptions {
  service: 'handler' | 'resource' | 'counter' | 'causal-counter';
  listen: string;
  peer: string;
  role: 'primary' | 'backup';
  handler: readonly [string, string];
  resource: readonly [string, string];
  /** The resource pair as this process dials it (e.g. through a relay); default `resource`. */
  resourceVia?: readonly [string, string];
  replication?: Partial<ReplicationConfig>;
  /** Crash after replying to the N-th request that emits an outbound message (before it leaves). */
  crashAfterReply?: number;
  nodeId: string;
}

/** One `tandem-resources serve` child. */
export class ServeProcess {
  readonly options: ServeProcessOptions;
  readonly child: ChildProcess;
  readonly events: ServeEvent[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();

  constructor(options: ServeProcessOptions) {
    this.options = options;
    const cli = cliCommand();
    const via = options.resourceVia ?? options.resource;
    const args = [
      ...cli.args,
      'serve',
      '--service',
      options.service,
      '--listen',
      options.listen,
      '--peer',
      options.peer,
      '--role',
      options.role,
      '--node-id',
      options.nodeId,
      '--handler',
      options.handler.join(','),
      '--resource',
      via.join(','),
      '--replication',
      JSON.stringify(options.replication ?? {}),
      ...(options.crashAfterReply ? ['--crash-after-reply', String(options.crashAfterReply)] : []),
    ];
    this.child = spawn(process.execPath, args, { cwd: cli.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((res) => this.child.once('exit', (code, signal) => res({ code, signal })));
    void this.exited.then(() => this.#wake());
    lines(this.child.stdout!, (line) => {
      try {
        this.events.push(JSON.parse(line) as ServeEvent);
      } catch {
        this.events.push({ event: 'text', line });
      }
      this.#wake();
    });
    lines(this.child.stderr!, (line) => {
      this.stderr.push(line);
      if (this.stderr.length > 100) this.stderr.shift();
    });
  }

  /** The child's process id. */
  get pid(): number {
    return this.child.pid!;
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  /** The first event (seen or future) matching `pred`. */
  waitFor(pred: (e: ServeEvent) => boolean, timeoutMs: number, what: string): Promise<ServeEvent> {
    return new Promise((res, rej) => {
      const check = (): boolean => {
        const e = this.events.find(pred);
        if (e !== undefined) {
          done();
          res(e);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          rej(new Error(`${this.options.nodeId} exited before ${what}; stderr: ${this.stderr.slice(-5).join(' | ')}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`${this.options.nodeId}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.slice(-5).join(' | ')}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter = (): void => void check();
      this.#waiters.add(waiter);
      check();
    });
  }

  /** SIGTERM (the child prints its stats and exits), SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** SIGKILL the child. */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.length > 0) onLine(line);
      i = buf.indexOf('\n');
    }
  });
}

/** Options of ThreeParty.start: replication settings, a handler crash point, and a relay for the resource pair. */
export interface ThreePartyOptions {
  replication?: Partial<ReplicationConfig>;
  /** The handler's first primary crashes after replying to its N-th allocation, before its message leaves. */
  crashHandlerPrimary?: number;
  /** Map the resource pair's addresses as the handler processes dial them (a relay). */
  handlerDialsResourceVia?: (resource: readonly [string, string]) => Promise<readonly [string, string]>;
}

/** The two pairs (handler A/B, resource A/B) as child processes, started and serving. */
export class ThreeParty {
  readonly handler: readonly [string, string];
  readonly resource: readonly [string, string];
  readonly procs: { handlerA: ServeProcess; handlerB: ServeProcess; resourceA: ServeProcess; resourceB: ServeProcess };

  private constructor(handler: readonly [string, string], resource: readonly [string, string], procs: ThreeParty['procs']) {
    this.handler = handler;
    this.resource = resource;
    this.procs = procs;
  }

  /** Start the handler and resource pairs on free loopback ports and wait until both serve. */
  static async start(opts: ThreePartyOptions = {}): Promise<ThreeParty> {
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const addr = (p: number): string => `tcp://127.0.0.1:${p}`;
    const handler = [addr(ports[0]!), addr(ports[1]!)] as const;
    const resource = [addr(ports[2]!), addr(ports[3]!)] as const;
    const via = opts.handlerDialsResourceVia ? await opts.handlerDialsResourceVia(resource) : resource;
    const common = { handler, resource, ...(opts.replication ? { replication: opts.replication } : {}) };
    const resourceA = new ServeProcess({
      ...common,
      service: 'resource',
      listen: resource[0],
      peer: resource[1],
      role: 'primary',
      nodeId: 'resource-A',
    });
    await resourceA.waitFor((e) => e.event === 'serving', 20_000, 'resource A serving');
    const resourceB = new ServeProcess({
      ...common,
      service: 'resource',
      listen: resource[1],
      peer: resource[0],
      role: 'backup',
      nodeId: 'resource-B',
    });
    const handlerA = new ServeProcess({
      ...common,
      resourceVia: via,
      service: 'handler',
      listen: handler[0],
      peer: handler[1],
      role: 'primary',
      nodeId: 'handler-A',
      ...(opts.crashHandlerPrimary ? { crashAfterReply: opts.crashHandlerPrimary } : {}),
    });
    await handlerA.waitFor((e) => e.event === 'serving', 20_000, 'handler A serving');
    const handlerB = new ServeProcess({
      ...common,
      resourceVia: via,
      service: 'handler',
      listen: handler[1],
      peer: handler[0],
      role: 'backup',
      nodeId: 'handler-B',
    });
    await Promise.all([
      resourceB.waitFor((e) => e.event === 'serving', 20_000, 'resource B serving'),
      handlerB.waitFor((e) => e.event === 'serving', 20_000, 'handler B serving'),
      resourceA.waitFor((e) => e.event === 'role' && e.role === 'primary', 20_000, 'resource pair'),
      handlerA.waitFor((e) => e.event === 'role' && e.role === 'primary', 20_000, 'handler pair'),
    ]);
    return new ThreeParty(handler, resource, { handlerA, handlerB, resourceA, resourceB });
  }

  /** Stop every process of both pairs. */
  async stop(): Promise<void> {
    await Promise.all(Object.values(this.procs).map((p) => p.stop()));
  }
}

/** One pair of a single service (counter or causal-counter), started and serving. */
export async function startPair(
  service: 'counter' | 'causal-counter',
  replication?: Partial<ReplicationConfig>,
): Promise<{
  servers: readonly [string, string];
  /** Stop both processes. */
  stop(): Promise<void>;
}> {
  const ports = await Promise.all([freePort(), freePort()]);
  const servers = [`tcp://127.0.0.1:${ports[0]}`, `tcp://127.0.0.1:${ports[1]}`] as const;
  const common = { service, handler: servers, resource: servers, ...(replication ? { replication } : {}) };
  const a = new ServeProcess({ ...common, listen: servers[0], peer: servers[1], role: 'primary', nodeId: `${service}-A` });
  await a.waitFor((e) => e.event === 'serving', 20_000, `${service} A serving`);
  const b = new ServeProcess({ ...common, listen: servers[1], peer: servers[0], role: 'backup', nodeId: `${service}-B` });
  await a.waitFor((e) => e.event === 'role' && e.role === 'primary', 20_000, `${service} pair`);
  return { servers, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
}
