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
  })
  .extend(securityConfigSchema.shape)
  .strict();
export type ServeConfigFile = z.infer<typeof serveConfigSchema>;

export function readServeConfig(path: string): ServeConfigFile {
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
  const parsed = serveConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new UsageError(
      `config file ${path}: ` + parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    );
  }
  return parsed.data;
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
