/**
 * One replica child process as the chaos runner sees it: its events (stdout lines, parsed, stamped with
 * the run's clock), its latest role, whether it holds state, signals by pid, and an optional IPC channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ReplicaCommand, ReplicaEventLine, ReplicaLaunch, TimedEvent } from './types.js';

const SERVING = new Set(['primary', 'solo-primary']);

/** Default line parser: a JSON object with a string `event` (other lines are not events). */
export function parseJsonEventLine(line: string): ReplicaEventLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as { event?: unknown }).event === 'string') return v as ReplicaEventLine;
  } catch {
    /* not JSON */
  }
  return undefined;
}

/** Every child any runner in this process started and that has not exited: killed on process exit. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) killPid(c.pid, 'SIGKILL');
  });
}

function killPid(pid: number | undefined, sig: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    if (sig === 'SIGKILL' || sig === 'SIGTERM') process.kill(pid, 'SIGCONT'); // a stopped process must run to die gracefully
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

export interface ChaosReplicaOptions {
  launch: ReplicaLaunch;
  command: ReplicaCommand;
  now: () => number;
  parseLine: (line: string) => ReplicaEventLine | undefined;
  onEvent: (e: TimedEvent, r: ChaosReplica) => void;
  onExit: (r: ChaosReplica) => void;
  /** Lines of stderr kept (default 40). */
  stderrLines?: number;
}

/** One replica child process of a chaos run: its launch, events and last role, signals, IPC status, stop and kill. */
export class ChaosReplica {
  readonly launch: ReplicaLaunch;
  readonly child: ChildProcess;
  readonly events: TimedEvent[] = [];
  readonly stderrTail: string[] = [];
  readonly spawnedAt: number;
  /** The latest role it reported. */
  role: string | undefined;
  epoch: number | undefined;
  /**
   * When it last reported role `backup` since it was (re)started or resumed — i.e. since it last came
   * back from a fault the nemesis injected. Undefined: it holds no state yet. The initial pair is marked
   * at startup.
   */
  heldStateSince: number | undefined;
  /** SIGSTOPped by the nemesis and not yet continued. */
  paused = false;
  /** When the nemesis last sent SIGSTOP / SIGCONT. */
  pausedAt: number | undefined;
  resumedAt: number | undefined;
  exitedAt: number | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Killed by the nemesis (as opposed to exiting by itself). */
  killedByNemesis = false;
  /** The runner is stopping it at the end. */
  stopping = false;
  readonly exited: Promise<void>;
  #opts: ChaosReplicaOptions;
  #nextId = 1;
  #pending = new Map<number, (m: Record<string, unknown>) => void>();

  constructor(opts: ChaosReplicaOptions) {
    this.#opts = opts;
    this.launch = opts.launch;
    this.spawnedAt = opts.now();
    const { command, args, env, cwd, ipc } = opts.command;
    installExitHook();
    this.child = spawn(command, [...args], {
      stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])],
      ...(env ? { env } : {}),
      ...(cwd ? { cwd } : {}),
    });
    if (this.child.pid !== undefined) live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        this.exitedAt = opts.now();
        this.exit = { code, signal };
        this.paused = false;
        for (const cb of this.#pending.values()) cb({ error: 'exited' });
        this.#pending.clear();
        opts.onExit(this);
        resolve();
      });
    });
    this.child.once('error', (err) => {
      // spawn failure (no such command): report as an exit
      this.stderrTail.push(`spawn error: ${err.message}`);
      if (this.exitedAt === undefined) this.child.emit('exit', null, null);
    });
    lines(this.child.stdout!, (line) => this.#line(line));
    lines(this.child.stderr!, (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > (opts.stderrLines ?? 40)) this.stderrTail.shift();
    });
    if (ipc) {
      this.child.on('message', (m: unknown) => {
        if (typeof m !== 'object' || m === null) return;
        const id = (m as { id?: unknown }).id;
        const cb = typeof id === 'number' ? this.#pending.get(id) : undefined;
        if (cb) {
          this.#pending.delete(id as number);
          cb(m as Record<string, unknown>);
        }
      });
    }
  }

  /** The replica's name (its slot: a or b). */
  get name(): string {
    return this.launch.name;
  }
  /** The child's process id (undefined if it failed to spawn). */
  get pid(): number | undefined {
    return this.child.pid;
  }
  /** True until the process has exited. */
  get alive(): boolean {
    return this.exitedAt === undefined;
  }
  /** Running, not paused, not being killed. */
  get up(): boolean {
    return this.alive && !this.paused && !this.killedByNemesis;
  }
  /** True while its last reported role is primary or solo-primary. */
  get serving(): boolean {
    return this.role !== undefined && SERVING.has(this.role);
  }

  #line(line: string): void {
    const parsed = this.#opts.parseLine(line);
    if (!parsed) return;
    const e: TimedEvent = { ...parsed, at: this.#opts.now(), node: this.name, generation: this.launch.generation };
    this.events.push(e);
    if ((e.event === 'role' || e.event === 'serving') && typeof e.role === 'string') {
      this.role = e.role;
      if (typeof e.epoch === 'number') this.epoch = e.epoch;
      if (e.role === 'backup' && !this.paused) this.heldStateSince ??= e.at;
    }
    if (e.event === 'takeover' && typeof e.epoch === 'number') this.epoch = e.epoch;
    this.#opts.onEvent(e, this);
  }

  /** Send a signal by pid (no-op once exited). */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    try {
      process.kill(this.child.pid!, sig);
      return true;
    } catch {
      return false;
    }
  }

  /** Ask over IPC: sends `{...message, id}`, resolves with the answer carrying the same id. */
  ask(message: Record<string, unknown>, timeoutMs = 1000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (!this.alive || !this.child.connected)
        return reject(new Error(`${this.name} has no IPC channel (not running, or started without ipc)`));
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name} did not answer ${String(message.type)} within ${timeoutMs} ms${this.paused ? ' (paused)' : ''}`));
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error === 'exited') reject(new Error(`${this.name} exited`));
        else resolve(m);
      });
      try {
        this.child.send({ ...message, id });
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err as Error);
      }
    });
  }

  /** `{type:'status'}` over IPC (undefined without IPC or without an answer). */
  async status(timeoutMs = 1000): Promise<unknown> {
    if (!this.child.connected) return undefined;
    const m = await this.ask({ type: 'status' }, timeoutMs);
    return m.status;
  }

  /** SIGCONT + SIGTERM, then SIGKILL after `graceMs`; resolves once exited. */
  async stop(graceMs = 1500): Promise<void> {
    this.stopping = true;
    if (!this.alive) return;
    killPid(this.child.pid, 'SIGTERM');
    const t = setTimeout(() => killPid(this.child.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** SIGKILL now (also a stopped process) and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    killPid(this.child.pid, 'SIGKILL');
    await this.exited;
  }

  /** A short, JSON-friendly picture of this process (for stall records). */
  describe(lastEvents = 15): Record<string, unknown> {
    return {
      node: this.name,
      generation: this.launch.generation,
      how: this.launch.how,
      pid: this.pid,
      alive: this.alive,
      paused: this.paused,
      role: this.role ?? null,
      epoch: this.epoch ?? null,
      heldStateSince: this.heldStateSince ?? null,
      ...(this.exit ? { exit: { ...this.exit, at: this.exitedAt, byNemesis: this.killedByNemesis } } : {}),
      lastEvents: this.events.slice(-lastEvents).map(compactEvent),
      stderrTail: this.stderrTail.slice(-10),
    };
  }
}

/** An event without the bulky fields (timing config). */
export function compactEvent(e: TimedEvent): Record<string, unknown> {
  const { config: _config, bounds: _bounds, ...rest } = e as TimedEvent & { config?: unknown; bounds?: unknown };
  return { ...rest, at: Math.round(e.at) };
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.length > 0) onLine(line);
    }
  });
  stream.on('error', () => undefined);
}
