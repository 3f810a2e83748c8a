/**
 * One `tandem-kv serve` child process, driven from a parent (demo, fault tests, benchmark): spawn,
 * wait for a role, ask its status or read keys over IPC, signal it (SIGKILL / SIGSTOP / SIGCONT).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReplicaStatus, ReplicationConfig, Role } from '@tandem/core';

/** dist/cli.js of this package (the harness runs the built CLI, as a user would). */
export function builtCliPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/harness → ../../dist/cli.js; dist/harness → ../cli.js
  const candidates = [join(here, '..', 'cli.js'), join(here, '..', '..', 'dist', 'cli.js')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`tandem-kv is not built (looked for ${candidates.join(', ')}); run: npx nx run kv:build`);
}

export interface ReplicaProcessOptions {
  listen: string;
  peer: string;
  role: 'primary' | 'backup' | 'auto';
  nodeId: string;
  replication?: Partial<ReplicationConfig>;
  /** Core log level on the child's stderr (default 'warn'). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Called with every stderr line (default: kept in `stderrTail`). */
  onStderr?: (line: string) => void;
  cliPath?: string;
  /** `serve --service-version N` (default: the CLI's default, 1). */
  serviceVersion?: number;
  /** 'rejoin': start with `tandem-kv rejoin` (joins as backup through the streaming state transfer);
   * default 'serve'. */
  command?: 'serve' | 'rejoin';
  /** `serve --state-transfer` (ignored by rejoin, which always streams). */
  stateTransfer?: 'stream' | 'copy';
  /** More arguments for serve/rejoin (e.g. --cluster-key-file FILE). */
  extraArgs?: readonly string[];
}

export interface ServeEvent {
  event: string;
  [k: string]: unknown;
}

export class ReplicaProcess {
  readonly options: ReplicaProcessOptions;
  readonly child: ChildProcess;
  readonly events: ServeEvent[] = [];
  readonly stderrTail: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 1;
  #pending = new Map<number, (m: Record<string, unknown>) => void>();
  #eventWaiters = new Set<() => void>();
  #exitedFlag = false;

  private constructor(options: ReplicaProcessOptions) {
    this.options = options;
    const rejoining = options.command === 'rejoin';
    if (rejoining && options.role !== 'backup') throw new TypeError('rejoin always joins as backup');
    const args = [
      options.cliPath ?? builtCliPath(),
      rejoining ? 'rejoin' : 'serve',
      '--listen',
      options.listen,
      '--peer',
      options.peer,
      '--role',
      options.role,
      ...(!rejoining && options.stateTransfer !== undefined ? ['--state-transfer', options.stateTransfer] : []),
      '--node-id',
      options.nodeId,
      '--json',
      '--log-level',
      options.logLevel ?? 'warn',
      '--replication',
      JSON.stringify(options.replication ?? {}),
      ...(options.serviceVersion !== undefined ? ['--service-version', String(options.serviceVersion)] : []),
      ...(options.extraArgs ?? []),
    ];
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#exitedFlag = true;
        for (const w of this.#eventWaiters) w();
        resolve({ code, signal });
      }),
    );
    lines(this.child.stdout!, (line) => {
      try {
        this.events.push(JSON.parse(line) as ServeEvent);
      } catch {
        this.events.push({ event: 'text', line });
      }
      for (const w of this.#eventWaiters) w();
    });
    lines(this.child.stderr!, (line) => {
      if (options.onStderr) options.onStderr(line);
      this.stderrTail.push(line);
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    });
    this.child.on('message', (m: Record<string, unknown>) => {
      const cb = this.#pending.get(m.id as number);
      if (cb) {
        this.#pending.delete(m.id as number);
        cb(m);
      }
    });
    this.child.on('error', () => undefined);
  }

  static spawn(options: ReplicaProcessOptions): ReplicaProcess {
    return new ReplicaProcess(options);
  }

  get pid(): number {
    return this.child.pid!;
  }
  get hasExited(): boolean {
    return this.#exitedFlag;
  }
  get address(): string {
    return this.options.listen;
  }

  /** The latest role the child reported. */
  get role(): Role | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.event === 'role' || e.event === 'serving') return e.role as Role;
    }
    return undefined;
  }

  /** Resolve with the first event (already seen or future) matching `pred`. */
  waitForEvent(pred: (e: ServeEvent) => boolean, timeoutMs: number, what = 'event'): Promise<ServeEvent> {
    return new Promise((resolve, reject) => {
      let from = 0;
      const check = (): void => {
        for (; from < this.events.length; from++) {
          const e = this.events[from]!;
          if (pred(e)) return done(() => resolve(e));
        }
        if (this.#exitedFlag)
          done(() => reject(new Error(`${this.options.nodeId} exited while waiting for ${what}; stderr:\n${this.stderrTail.join('\n')}`)));
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new Error(
                `${this.options.nodeId}: no ${what} within ${timeoutMs} ms (events: ${this.events.map((e) => e.event + (e.role ? ':' + String(e.role) : '')).join(', ')})\nstderr:\n${this.stderrTail.join('\n')}`,
              ),
            ),
          ),
        timeoutMs,
      );
      const done = (f: () => void): void => {
        clearTimeout(timer);
        this.#eventWaiters.delete(check);
        f();
      };
      this.#eventWaiters.add(check);
      check();
    });
  }

  /** Wait until the child reports one of `roles` (its current role counts). */
  waitForRole(roles: readonly Role[], timeoutMs: number): Promise<ServeEvent> {
    return this.waitForEvent(() => this.role !== undefined && roles.includes(this.role), timeoutMs, `role ${roles.join('|')}`);
  }

  #ask(message: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.#exitedFlag || !this.child.connected) return reject(new Error(`${this.options.nodeId} is not running`));
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.options.nodeId} did not answer ${String(message.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.child.send({ ...message, id });
    });
  }

  async status(timeoutMs = 2000): Promise<ReplicaStatus> {
    return (await this.#ask({ type: 'status' }, timeoutMs)).status as ReplicaStatus;
  }

  /** Values of `keys` straight from the replica's state (null = absent), with its status at that moment. */
  async read(keys: string[], timeoutMs = 2000): Promise<{ status: ReplicaStatus; values: (string | null)[] }> {
    const m = await this.#ask({ type: 'read', keys }, timeoutMs);
    return { status: m.status as ReplicaStatus, values: m.values as (string | null)[] };
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.#exitedFlag) this.child.kill(sig);
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful) with a SIGKILL fallback. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.#exitedFlag) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
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
}
