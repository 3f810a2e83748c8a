/**
 * Helpers for the real-process fault tests: an in-process client that appends unique markers and
 * remembers which were acknowledged, a `tandem-kv load` client child process, and the check that
 * every acknowledged marker is in the serving replica's state exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createClient, nodeEnv, type CallResult, type Client, type ClientDiagnostics, type ReplicationConfig } from '@tandem/core';
import { builtCliPath, type ReplicaProcess } from '../src/harness/replica-process.js';
import type { KvReply, KvRequest } from '../src/schema.js';
import { kvService } from '../src/service.js';
import { createTransportRegistry } from '../src/transports.js';
import type { ClientSecuritySettings } from '../src/security-options.js';

/** Small timeouts so each fault case settles in well under a second of protocol time. */
export const TEST_REPLICATION: Partial<ReplicationConfig> = {
  flushIntervalMs: 20,
  heartbeatTimeoutMs: 150,
  ackTimeoutMs: 50,
  maxRetransmits: 2,
  requestTimeoutMs: 100,
  callDeadlineMs: 8000,
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A surviving client in the test process: appends `tag.i;` markers to `key`. */
export class MarkerClient {
  readonly client: Client<KvRequest, KvReply> & ClientDiagnostics;
  readonly key: string;
  readonly tag: string;
  readonly acked = new Map<string, CallResult<KvReply>>();
  readonly issued = new Set<string>();
  #i = 0;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(
    servers: readonly [string, string],
    key: string,
    tag: string,
    config: Partial<ReplicationConfig>,
    sec: ClientSecuritySettings = { transport: {} },
  ) {
    this.key = key;
    this.tag = tag;
    this.client = createClient({
      service: kvService,
      env: nodeEnv({ network: createTransportRegistry(sec.transport) }),
      servers,
      config,
      ...(sec.credentials ? { credentials: sec.credentials } : {}),
    });
  }

  /** Append the next marker; resolves with the call result, or undefined when the call failed. */
  async append(): Promise<CallResult<KvReply> | undefined> {
    return this.settle(this.send());
  }

  /** Send the next append without waiting; pass the promise to `settle`. */
  send(): { marker: string; pending: Promise<CallResult<KvReply>> } {
    const marker = `${this.tag}.${this.#i++};`;
    this.issued.add(marker);
    return { marker, pending: this.client.callWithInfo({ op: 'append', key: this.key, value: marker }) };
  }

  async settle(s: { marker: string; pending: Promise<CallResult<KvReply>> }): Promise<CallResult<KvReply> | undefined> {
    try {
      const r = await s.pending;
      this.acked.set(s.marker, r);
      return r;
    } catch {
      return undefined;
    }
  }

  async appendMany(n: number): Promise<void> {
    for (let k = 0; k < n; k++) await this.append();
  }

  /** Append continuously (one at a time) until `stopLoop`. */
  startLoop(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) await this.append();
    })();
  }

  async stopLoop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** Highest epoch of any acknowledged reply. */
  get lastEpoch(): number {
    let e = 0;
    for (const r of this.acked.values()) e = Math.max(e, r.epoch);
    return e;
  }

  async close(): Promise<void> {
    await this.stopLoop();
    await Promise.race([this.client.drain(), sleep(1000)]);
    await this.client.close();
  }
}

/** A `tandem-kv load` client child process (a client on the primary's host, or a crashing client). */
export class LoadProcess {
  readonly child: ChildProcess;
  readonly key: string;
  readonly tag: string;
  readonly sent = new Set<string>();
  readonly acked = new Set<string>();
  readonly exited: Promise<void>;
  #listeners = new Set<() => void>();

  constructor(servers: readonly [string, string], key: string, tag: string, extra: string[], config: Partial<ReplicationConfig>) {
    this.key = key;
    this.tag = tag;
    this.child = spawn(
      process.execPath,
      [
        builtCliPath(),
        'load',
        '--servers',
        servers.join(','),
        '--key',
        key,
        '--tag',
        tag,
        '--replication',
        JSON.stringify(config),
        ...extra,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    let buf = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const m = JSON.parse(line) as { event: string; marker?: string };
          if (m.event === 'sent' && m.marker) this.sent.add(m.marker);
          if (m.event === 'acked' && m.marker) this.acked.add(m.marker);
        } catch {
          /* not ours */
        }
        for (const l of this.#listeners) l();
      }
    });
  }

  waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    return until(what, cond, timeoutMs);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export interface MarkerCheck {
  /** Acknowledged markers missing from the state. */
  lost: string[];
  /** Markers present more than once. */
  duplicated: string[];
  /** Markers present that were never sent. */
  unexpected: string[];
  found: Map<string, number>;
}

/** Read `keys` from the replica's state and check acknowledged markers are present exactly once. */
export async function checkMarkers(
  replica: ReplicaProcess,
  keys: string[],
  acked: Iterable<string>,
  issued: Iterable<string>,
): Promise<MarkerCheck> {
  const { values } = await replica.read(keys);
  const found = new Map<string, number>();
  for (const v of values) for (const m of (v ?? '').split(';')) if (m) found.set(m + ';', (found.get(m + ';') ?? 0) + 1);
  const issuedSet = new Set(issued);
  return {
    lost: [...acked].filter((m) => !found.has(m)),
    duplicated: [...found].filter(([, n]) => n > 1).map(([m]) => m),
    unexpected: [...found.keys()].filter((m) => !issuedSet.has(m)),
    found,
  };
}
