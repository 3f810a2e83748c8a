/**
 * `tandem-kv serve --config file.json`: the file's shape, validated with zod. Command-line flags
 * override the file. The `replication` section is checked by @tandem/core's resolveConfig.
 */
import { readFileSync } from 'node:fs';
import { resolveConfig, type ReplicationConfig } from '@tandem/core';
import { z } from 'zod';
import { UsageError } from './transports.js';
import { securityConfigSchema } from './security-options.js';

export const serveConfigSchema = z
  .object({
    listen: z.string().min(1).optional(),
    peer: z.string().min(1).optional(),
    role: z.enum(['primary', 'backup', 'auto']).optional(),
    nodeId: z.string().min(1).max(256).optional(),
    logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).optional(),
    replication: z.record(z.string(), z.unknown()).optional(),
    /** etcd://host:port[,…]/prefix — the witness both replicas ask before serving alone (docs/PARTITIONS.md). */
    witness: z.string().min(1).max(4096).optional(),
    /** HOST:PORT for Prometheus metrics (GET /metrics), as --metrics-listen. */
    metricsListen: z.string().min(1).max(300).optional(),
  })
  .extend(securityConfigSchema.shape)
  .strict();
export type ServeConfigFile = z.infer<typeof serveConfigSchema>;

export function readServeConfig(path: string): ServeConfigFile {
  return readJsonConfig(path, serveConfigSchema);
}

function readJsonConfig<T>(path: string, schema: z.ZodType<T>): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new UsageError(
      `config file ${path}: ` + parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    );
  }
  return parsed.data;
}

/**
 * `tandem-kv call --config file.json`: where the logical server is — one pair (`servers`: "A,B" or
 * ["A", "B"]) or a shard map (`shards`: the map object, inline JSON or a path to a JSON file; see
 * docs/SHARDING.md) — and client replication settings. Command-line flags override the file.
 */
export const callConfigSchema = z
  .object({
    servers: z.union([z.string().min(1), z.tuple([z.string().min(1), z.string().min(1)])]).optional(),
    shards: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
    timeout: z.number().int().positive().optional(),
    replication: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type CallConfigFile = z.infer<typeof callConfigSchema>;

export function readCallConfig(path: string): CallConfigFile {
  return readJsonConfig(path, callConfigSchema);
}

/** Validate replication settings (file + flags) with the core's schema; ConfigError → UsageError. */
export function replicationSettings(partial: Record<string, unknown>): ReplicationConfig {
  try {
    return resolveConfig(partial as Partial<ReplicationConfig>);
  } catch (err) {
    if ((err as Error).name === 'ConfigError') throw new UsageError((err as Error).message);
    throw err;
  }
}

/** `--replication '{"flushIntervalMs":20}'` */
export function parseJsonObjectFlag(flag: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${flag} must be a JSON object: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`--${flag} must be a JSON object`);
  return v as Record<string, unknown>;
}
