/**
 * tandem-kv over several replicated pairs: the kv request's shard key, and shard maps from the command
 * line or a config file (docs/SHARDING.md).
 *
 * The shard key is the request's key (a lock's name for lock requests). As in Redis Cluster, a key that
 * contains a hash tag — the text between its first `{` and the next `}`, when not empty — is routed by
 * the tag alone, so related keys can be kept on one pair: `{acct7}balance` and `{acct7}lock` go together.
 * Requests that would need two pairs are refused with an InvalidRequestError before anything is sent:
 *   - a scan whose prefix does not contain a whole hash tag (its keys may be on every pair);
 *   - a fenced write whose lock does not have the same shard key as its key (the fence is checked
 *     against the lock table of the pair that holds the key).
 */
import { readFileSync } from 'node:fs';
import { InvalidRequestError, type ShardMap, validateShardMap } from '@tandem/core';
import type { KvRequest } from './schema.js';
import { UsageError } from './transports.js';

/** The hash tag of `key` (between the first `{` and the next `}`, non-empty), or the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** The shard key of a kv request (see the module comment); throws InvalidRequestError for the ones
 * that span pairs. */
export function kvShardKey(req: KvRequest): string {
  switch (req.op) {
    case 'get':
      return hashTag(req.key);
    case 'set':
    case 'delete':
    case 'cas':
    case 'append': {
      const k = hashTag(req.key);
      if (req.fence !== undefined && hashTag(req.fence.lock) !== k)
        throw new InvalidRequestError(
          `a fenced ${req.op} on a sharded kv needs its key and lock on one pair: give both the same hash tag ` +
            `(e.g. key "{${k}}…" with lock "{${k}}…"); "${req.key}" and lock "${req.fence.lock}" have different shard keys`,
        );
      return k;
    }
    case 'incr':
      return hashTag(req.key);
    case 'scan': {
      const tag = hashTag(req.prefix);
      if (tag === req.prefix)
        throw new InvalidRequestError(
          `scan "${req.prefix}" may span every pair of a sharded kv: scan one pair with --servers, or scan a prefix that contains a whole hash tag ("{tag}…")`,
        );
      return tag;
    }
    case 'acquire':
    case 'renew':
    case 'release':
      return hashTag(req.name);
  }
}

/**
 * A shard map given as `--shards` or as the config file's `shards`: inline JSON (text starting with
 * `{`), a path to a JSON file, or (config file) the map object itself. Invalid maps are UsageErrors.
 */
export function parseShardMap(value: unknown, where = '--shards'): ShardMap {
  let map: unknown = value;
  if (typeof value === 'string') {
    let text = value;
    if (!value.trimStart().startsWith('{')) {
      try {
        text = readFileSync(value, 'utf8');
      } catch (err) {
        throw new UsageError(`${where}: cannot read shard map ${value}: ${(err as Error).message}`);
      }
    }
    try {
      map = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${where}: the shard map is not valid JSON: ${(err as Error).message}`);
    }
  }
  try {
    return validateShardMap(map);
  } catch (err) {
    if ((err as Error).name === 'ShardMapError') throw new UsageError(`${where}: ${(err as Error).message}`);
    throw err;
  }
}
