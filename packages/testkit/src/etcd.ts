// A real etcd for tests: /usr/bin/etcd (Debian `etcd-server`) on two free 127.0.0.1 ports with a temporary
// data directory and short raft timings (heartbeat 10 ms, election 100 ms) so leases of 1–2 s work. Every
// signal goes to the process by pid; nothing is killed by name.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's `etcd-server` installs etcd. */
export const ETCD_BINARY = '/usr/bin/etcd';
/** The command that installs it. */
export const ETCD_INSTALL = 'apt-get update && apt-get install -y etcd-server';

/** Undefined when etcd is installed; otherwise why not and how to install it (for a loud skip). */
export function etcdMissingReason(binary = ETCD_BINARY): string | undefined {
  return existsSync(binary) ? undefined : `${binary} is missing. Install it with: ${ETCD_INSTALL}`;
}

/** Options of startEtcd: data directory, output lines, binary, start timeout, TLS. */
export interface StartEtcdOptions {
  /** Data directory (default: a new temporary one, removed by `stop`; a given one is left in place). */
  dataDir?: string;
  /** Receives etcd's output lines (default: kept in memory, shown when etcd fails to start). */
  log?: (line: string) => void;
  binary?: string;
  /** How long to wait for etcd to serve (default 20 s). */
  startTimeoutMs?: number;
  /** Serve clients over TLS (PEM file paths); `caFile` + `clientCertAuth` require client certificates
   * signed by that CA. `clientCertFile`/`clientKeyFile` are what the launcher's own health probe presents. */
  tls?: {
    certFile: string;
    keyFile: string;
    caFile?: string;
    clientCertAuth?: boolean;
    clientCertFile?: string;
    clientKeyFile?: string;
  };
}

/** A running etcd child process: endpoint, pid and data directory; stop, kill, restart, pause and resume it. */
export interface EtcdServer {
  /** The client URL, `http://127.0.0.1:<port>` (`https://` with `tls`). */
  readonly endpoint: string;
  /** `127.0.0.1:<port>` (what `etcd://…` URLs and EtcdWitness's `endpoints` take). */
  readonly hostPort: string;
  /** The current process id (changes on `restart`). */
  readonly pid: number;
  readonly dataDir: string;
  /** SIGTERM by pid, then SIGKILL after 5 s; removes the data directory if it was a temporary one. */
  stop(): Promise<void>;
  /** Stops the process (SIGKILL by pid), keeping the data directory and ports: etcd is "down". */
  kill(): Promise<void>;
  /** Starts etcd again on the same ports and data directory (after `kill`; stops it first if running). */
  restart(): Promise<void>;
  /** SIGSTOP by pid: etcd is unreachable (connections hang) until `resume`. */
  pause(): void;
  /** SIGCONT by pid. */
  resume(): void;
  /** etcd's output so far (the last 64 KiB). */
  output(): string;
}

/** A port nobody listens on right now (the OS picks it; a race with another process is possible, hence retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function healthy(endpoint: string, tls: StartEtcdOptions['tls']): Promise<boolean> {
  if (tls) return healthyTls(endpoint, tls);
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true' || body.health === true;
  } catch {
    return false;
  }
}

function healthyTls(endpoint: string, tls: NonNullable<StartEtcdOptions['tls']>): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${endpoint}/health`,
      {
        timeout: 1000,
        ...(tls.caFile && { ca: readFileSync(tls.caFile) }),
        ...(tls.clientCertFile && { cert: readFileSync(tls.clientCertFile) }),
        ...(tls.clientKeyFile && { key: readFileSync(tls.clientKeyFile) }),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(/"health"\s*:\s*"?true/.test(body)));
        res.on('error', () => resolve(false));
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

class EtcdProcess implements EtcdServer {
  readonly endpoint: string;
  readonly hostPort: string;
  readonly dataDir: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #out = '';
  #paused = false;

  constructor(
    private readonly clientPort: number,
    private readonly peerPort: number,
    dataDir: string,
    private readonly ownsDataDir: boolean,
    private readonly options: StartEtcdOptions,
  ) {
    this.hostPort = `127.0.0.1:${clientPort}`;
    this.endpoint = `${options.tls ? 'https' : 'http'}://${this.hostPort}`;
    this.dataDir = dataDir;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  output(): string {
    return this.#out;
  }

  /** Spawns etcd and waits until /health says true; rejects (with its output) if it exits or times out. */
  async launch(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const name = 'tandem-test';
    const args = [
      `--name=${name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${name}=${peer}`,
      '--initial-cluster-state=new',
      '--heartbeat-interval=10',
      '--election-timeout=100',
      '--logger=zap',
      '--log-level=warn',
      '--log-outputs=stderr',
    ];
    const tls = this.options.tls;
    if (tls) {
      args.push(`--cert-file=${tls.certFile}`, `--key-file=${tls.keyFile}`);
      if (tls.caFile) args.push(`--trusted-ca-file=${tls.caFile}`);
      if (tls.clientCertAuth) args.push('--client-cert-auth');
    }
    const child = spawn(this.options.binary ?? ETCD_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#paused = false;
    const onData = (d: Buffer) => {
      const text = d.toString();
      this.#out = (this.#out + text).slice(-65536);
      if (this.options.log) for (const line of text.split('\n')) if (line.trim() !== '') this.options.log(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    let exited = false;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        exited = true;
        resolve();
      });
      child.once('error', (err) => {
        this.#out += `\nspawn failed: ${err.message}`;
        exited = true;
        resolve();
      });
    });
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 20_000);
    for (;;) {
      if (exited) throw new Error(`etcd exited before serving (ports ${this.clientPort}/${this.peerPort}):\n${this.#out}`);
      if (await healthy(this.endpoint, this.options.tls)) return;
      if (Date.now() > deadline) {
        await this.#terminate();
        throw new Error(`etcd did not serve on ${this.endpoint} in time:\n${this.#out}`);
      }
      await sleep(50);
    }
  }

  async #terminate(): Promise<void> {
    const child = this.#child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return this.#exited;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(child.pid as number, s);
      } catch {
        /* already gone */
      }
    };
    signal('SIGTERM');
    if (this.#paused) signal('SIGCONT');
    this.#paused = false;
    const timer = setTimeout(() => signal('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.#terminate();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid, 'SIGKILL');
    this.#paused = false;
    await this.#exited;
  }

  async restart(): Promise<void> {
    await this.#terminate();
    await this.launch();
  }

  pause(): void {
    if (this.#child?.pid === undefined) throw new Error('etcd is not running');
    process.kill(this.#child.pid, 'SIGSTOP');
    this.#paused = true;
  }

  resume(): void {
    if (this.#child?.pid === undefined) throw new Error('etcd is not running');
    process.kill(this.#child.pid, 'SIGCONT');
    this.#paused = false;
  }
}

/**
 * Starts a single-member etcd on 127.0.0.1 (free client and peer ports, a temporary data directory unless
 * `dataDir` is given) and resolves once it serves. Throws with a clear message when the binary is missing.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const missing = etcdMissingReason(options.binary);
  if (missing) throw new Error(missing);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tandem-etcd-'));
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    const proc = new EtcdProcess(clientPort, peerPort, dataDir, ownsDataDir, options);
    try {
      await proc.launch();
      return proc;
    } catch (err) {
      lastError = err;
      await proc.stop();
    }
  }
  throw lastError;
}
