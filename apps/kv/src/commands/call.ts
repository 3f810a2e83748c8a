/**
 * `tandem-kv call --servers A,B <command> [args]`: one request to the logical server, reply printed
 * as JSON. Commands map to kv requests (see `requestFromWords`). With `--shards MAP` instead of
 * `--servers`, the request goes to the pair its key hashes to (docs/SHARDING.md).
 */
import { createClient, createShardedClient, nodeEnv, type ReplicationConfig, type ShardMap } from '@tandem/core';
import type { KvReply, KvRequest } from '../schema.js';
import { kvRequestSchema } from '../schema.js';
import { kvService } from '../service.js';
import { createTransportRegistry, UsageError } from '../transports.js';
import type { ClientSecuritySettings } from '../security-options.js';
import { kvShardKey } from '../shards.js';

export const CALL_COMMANDS = `  get KEY                      value of KEY (null when absent)
  set KEY VALUE                write VALUE
  delete KEY                   remove KEY
  cas KEY EXPECTED NEW         write NEW if KEY currently holds EXPECTED (@absent = not present)
  append KEY VALUE             append VALUE to KEY's value
  incr KEY [BY]                add BY (default 1) to an integer value
  scan PREFIX [LIMIT]          keys starting with PREFIX, in order (at most LIMIT, default 100)
  lock NAME TTL_MS [OWNER]     acquire a lease; prints the fencing token, or who holds it until when
  renew NAME TOKEN TTL_MS      extend a lease you hold
  release NAME TOKEN           give a lease back`;

function int(word: string | undefined, what: string): number {
  if (word === undefined || !/^-?\d+$/.test(word))
    throw new UsageError(`${what} must be an integer, got ${word === undefined ? 'nothing' : JSON.stringify(word)}`);
  return Number(word);
}

function need(words: string[], n: number, usage: string): void {
  if (words.length - 1 < n) throw new UsageError(`usage: tandem-kv call --servers A,B ${usage}`);
  if (words.length - 1 > n + (usage.includes('[') ? 1 : 0))
    throw new UsageError(`too many arguments; usage: tandem-kv call --servers A,B ${usage}`);
}

/** Turn command words (`set k v`) into a validated kv request. */
export function requestFromWords(words: string[]): KvRequest {
  const [cmd, a, b, c] = words;
  let req: unknown;
  switch (cmd) {
    case 'get':
      need(words, 1, 'get KEY');
      req = { op: 'get', key: a };
      break;
    case 'set':
    case 'put':
      need(words, 2, 'set KEY VALUE');
      req = { op: 'set', key: a, value: b };
      break;
    case 'delete':
    case 'del':
      need(words, 1, 'delete KEY');
      req = { op: 'delete', key: a };
      break;
    case 'cas':
      need(words, 3, 'cas KEY EXPECTED NEW');
      req = { op: 'cas', key: a, expected: b === '@absent' ? null : b, value: c };
      break;
    case 'append':
      need(words, 2, 'append KEY VALUE');
      req = { op: 'append', key: a, value: b };
      break;
    case 'incr':
      need(words, 1, 'incr KEY [BY]');
      req = b === undefined ? { op: 'incr', key: a } : { op: 'incr', key: a, by: int(b, 'BY') };
      break;
    case 'scan':
      need(words, 1, 'scan PREFIX [LIMIT]');
      req = b === undefined ? { op: 'scan', prefix: a } : { op: 'scan', prefix: a, limit: int(b, 'LIMIT') };
      break;
    case 'lock':
    case 'acquire':
      need(words, 2, 'lock NAME TTL_MS [OWNER]');
      req =
        c === undefined
          ? { op: 'acquire', name: a, ttlMs: int(b, 'TTL_MS') }
          : { op: 'acquire', name: a, ttlMs: int(b, 'TTL_MS'), owner: c };
      break;
    case 'renew':
      need(words, 3, 'renew NAME TOKEN TTL_MS');
      req = { op: 'renew', name: a, token: int(b, 'TOKEN'), ttlMs: int(c, 'TTL_MS') };
      break;
    case 'release':
    case 'unlock':
      need(words, 2, 'release NAME TOKEN');
      req = { op: 'release', name: a, token: int(b, 'TOKEN') };
      break;
    case undefined:
      throw new UsageError(`missing command; one of:\n${CALL_COMMANDS}`);
    default:
      throw new UsageError(`unknown command "${cmd}"; one of:\n${CALL_COMMANDS}`);
  }
  const parsed = kvRequestSchema.safeParse(req);
  if (!parsed.success)
    throw new UsageError(`invalid ${cmd}: ` + parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

export function parseServers(text: string | undefined): [string, string] {
  if (text === undefined)
    throw new UsageError('--servers is required: the two replicas, e.g. --servers tcp://127.0.0.1:7001,tcp://127.0.0.1:7002');
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length !== 2) throw new UsageError(`--servers needs exactly two addresses separated by a comma, got ${parts.length}`);
  return [parts[0]!, parts[1]!];
}

/** Send one request; resolves with the reply, rejects with the core's typed errors. */
export async function callOnce(
  servers: [string, string],
  request: KvRequest,
  config: Partial<ReplicationConfig>,
  sec: ClientSecuritySettings = { transport: {} },
): Promise<KvReply> {
  const client = createClient({
    service: kvService,
    env: nodeEnv({ network: createTransportRegistry(sec.transport) }),
    servers,
    config,
    ...(sec.credentials ? { credentials: sec.credentials } : {}),
  });
  try {
    const reply = await client.call(request);
    // Hand the state information to the backup before exiting (bounded: the primary's flush covers it anyway).
    await Promise.race([client.drain(), new Promise((r) => setTimeout(r, 1000).unref())]);
    return reply;
  } finally {
    await client.close();
  }
}

/** Send one request to the pair of `map` its shard key routes to (kvShardKey: refuses the requests that
 * span pairs with InvalidRequestError, before anything is sent). */
export async function callShardedOnce(
  map: ShardMap,
  request: KvRequest,
  config: Partial<ReplicationConfig>,
  sec: ClientSecuritySettings = { transport: {} },
): Promise<{ reply: KvReply; shard: string }> {
  const client = createShardedClient({
    service: kvService,
    env: nodeEnv({ network: createTransportRegistry(sec.transport) }),
    shardKey: kvShardKey,
    map,
    clientOptions: { config, ...(sec.credentials ? { credentials: sec.credentials } : {}) },
  });
  try {
    const r = await client.callWithInfo(request);
    await Promise.race([client.drain(), new Promise((res) => setTimeout(res, 1000).unref())]);
    return { reply: r.reply, shard: r.shard };
  } finally {
    await client.close();
  }
}
