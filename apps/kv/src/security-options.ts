/**
 * tandem-kv's security settings, from flags, the config file and the environment (docs/SECURITY.md):
 * the cluster key (peers authenticate each other, forwards carry the primary's MAC), client keys,
 * TLS (tls://, wss://) and ZeroMQ CURVE (zmq+tcp://) for the transports.
 *
 * Secrets are read from files, never from the command line (where `ps` shows them).
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { formatKeyFile, MIN_KEY_BYTES, parseKeyFile, type ClientCredentials, type ReplicaSecurity } from '@tandem/core';
import type { TcpTlsOptions } from '@tandem/transport-tcp';
import { z } from 'zod';
import { UsageError } from './transports.js';

/** What the transports need to speak tls://, wss:// and CURVE (createTransportRegistry). */
export interface TransportSecurity {
  tls?: TcpTlsOptions;
  curve?: { publicKey: string; secretKey: string; serverKey: string; allowedClientKeys?: string[] };
}

/** Flags shared by serve and rejoin. */
export const REPLICA_SECURITY_FLAGS = {
  'cluster-key-file': { type: 'string' },
  insecure: { type: 'boolean' },
  'client-keys-file': { type: 'string' },
  'require-client-auth': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-no-client-cert': { type: 'boolean' },
  'curve-server-keys': { type: 'string' },
  'curve-allow': { type: 'string' },
} as const;

/** Flags of the client commands (call, load, demo's clients). */
export const CLIENT_SECURITY_FLAGS = {
  'client-key-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'curve-client-keys': { type: 'string' },
  'curve-server-key': { type: 'string' },
} as const;

export const REPLICA_SECURITY_HELP = `  --cluster-key-file FILE  the replicas' shared secret (tandem-kv keygen --out FILE; also config
                           clusterKeyFile or env TANDEM_CLUSTER_KEY_FILE): peers prove it to each other
                           (HMAC challenge-response) and the backup verifies the primary's MAC on what
                           clients forward. Without it the replica listens on loopback only
  --insecure               listen beyond loopback without a cluster key (prints a warning)
  --client-keys-file FILE  client keys, one "ID HEXKEY" per line; with --require-client-auth only
  --require-client-auth    clients holding one of them may call
  --tls-cert/--tls-key/--tls-ca FILE   PEM files for tls:// and wss:// (this replica's certificate and key,
                           the CA that signs the peer's and the clients' certificates)
  --tls-no-client-cert     do not require client certificates (default: required with --tls-ca)
  --curve-server-keys FILE the service's CURVE key pair for zmq+tcp:// ("public Z85" and "secret Z85"
                           lines; tandem-kv keygen --curve --out FILE), shared by the two replicas
  --curve-allow FILE       CURVE public keys of the clients allowed to connect, one per line
                           (the replicas' own key is always allowed)
`;

export const CLIENT_SECURITY_HELP = `  --client-key-file FILE   this client's key ("ID HEXKEY", tandem-kv keygen --client ID --out FILE)
  --tls-cert/--tls-key/--tls-ca FILE   client certificate, key and the CA of the replicas' certificate
  --curve-client-keys FILE this client's CURVE key pair;  --curve-server-key=Z85: the service's public key
                           (write it with "=": a Z85 key may start with "-")
`;

/** The config file's security fields (serve --config). */
export const securityConfigSchema = z
  .object({
    clusterKeyFile: z.string().min(1).optional(),
    insecure: z.boolean().optional(),
    clientKeysFile: z.string().min(1).optional(),
    requireClientAuth: z.boolean().optional(),
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        ca: z.string().min(1).optional(),
        requireClientCert: z.boolean().optional(),
      })
      .strict()
      .optional(),
    curve: z
      .object({ serverKeysFile: z.string().min(1), allowFile: z.string().min(1).optional() })
      .strict()
      .optional(),
  })
  .strict();
export type SecurityConfig = z.infer<typeof securityConfigSchema>;

type Values = Record<string, unknown>;

function readSecret(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  try {
    if ((statSync(path).mode & 0o077) !== 0)
      process.stderr.write(`tandem-kv: warning: ${what} ${path} is readable by other users (chmod 600 ${path})\n`);
  } catch {
    /* reported by the read above */
  }
  return text;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function keysFrom(path: string, what: string): Uint8Array[] {
  try {
    return parseKeyFile(readSecret(path, what), `${what} ${path}`);
  } catch (err) {
    if ((err as Error).name === 'KeyError') throw new UsageError((err as Error).message);
    throw err;
  }
}

/** "ID HEXKEY" lines (client keys files; a client's own key file has one). */
export function parseClientKeys(text: string, what: string): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S{1,256})\s+([0-9a-fA-F]+)$/.exec(line);
    if (!m || m[2]!.length % 2 !== 0 || m[2]!.length < MIN_KEY_BYTES * 2) {
      throw new UsageError(`${what}, line ${i + 1}: expected "ID HEXKEY" with a key of at least ${MIN_KEY_BYTES} bytes`);
    }
    keys.set(m[1]!, new Uint8Array(Buffer.from(m[2]!, 'hex')));
  }
  if (keys.size === 0) throw new UsageError(`${what}: no key in it`);
  return keys;
}

/** A CURVE key pair file: lines "public Z85" and "secret Z85". */
export function parseCurveKeys(text: string, what: string): { publicKey: string; secretKey: string } {
  const get = (name: string): string => {
    const m = new RegExp(`^\\s*${name}\\s+(\\S{40})\\s*$`, 'm').exec(text);
    if (!m) throw new UsageError(`${what}: needs a line "${name} <40-character Z85 key>"`);
    return m[1]!;
  };
  return { publicKey: get('public'), secretKey: get('secret') };
}

function curveAllowList(text: string, what: string): string[] {
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const k of keys) if (k.length !== 40) throw new UsageError(`${what}: "${k}" is not a 40-character Z85 public key`);
  return keys;
}

export interface ReplicaSecuritySettings {
  security: ReplicaSecurity;
  transport: TransportSecurity;
  /** One line for the startup output. */
  summary: string;
}

/** Flags win over the config file, which wins over TANDEM_CLUSTER_KEY_FILE. */
export function replicaSecurityFrom(
  values: Values,
  file: SecurityConfig = {},
  env: NodeJS.ProcessEnv = process.env,
): ReplicaSecuritySettings {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const security: ReplicaSecurity = {};
  const transport: TransportSecurity = {};
  const parts: string[] = [];
  const keyFile = str('cluster-key-file') ?? file.clusterKeyFile ?? (env.TANDEM_CLUSTER_KEY_FILE || undefined);
  if (keyFile !== undefined) {
    security.clusterKeys = keysFrom(keyFile, 'cluster key file');
    parts.push(`cluster key from ${keyFile} (${security.clusterKeys.length} key${security.clusterKeys.length > 1 ? 's' : ''})`);
  } else parts.push('NO cluster key: peers not authenticated');
  if (values.insecure === true || file.insecure === true) security.insecure = true;
  const clientKeysFile = str('client-keys-file') ?? file.clientKeysFile;
  if (clientKeysFile !== undefined)
    security.clientKeys = parseClientKeys(readSecret(clientKeysFile, 'client keys file'), `client keys file ${clientKeysFile}`);
  if (values['require-client-auth'] === true || file.requireClientAuth === true) {
    if (clientKeysFile === undefined) throw new UsageError('--require-client-auth needs --client-keys-file FILE');
    security.requireClientAuth = true;
    parts.push(`client keys required (${security.clientKeys!.size})`);
  }
  const cert = str('tls-cert') ?? file.tls?.cert;
  const key = str('tls-key') ?? file.tls?.key;
  const ca = str('tls-ca') ?? file.tls?.ca;
  if (cert !== undefined || key !== undefined || ca !== undefined) {
    if (cert === undefined || key === undefined) throw new UsageError('TLS needs both --tls-cert and --tls-key');
    const requireClientCert = ca !== undefined && values['tls-no-client-cert'] !== true && file.tls?.requireClientCert !== false;
    transport.tls = {
      cert: readText(cert, 'TLS certificate'),
      key: readSecret(key, 'TLS key'),
      ...(ca ? { ca: readText(ca, 'TLS CA') } : {}),
      requestCert: requireClientCert,
    };
    parts.push(`TLS ${requireClientCert ? 'with client certificates required' : 'server-authenticated'}`);
  }
  const curveFile = str('curve-server-keys') ?? file.curve?.serverKeysFile;
  if (curveFile !== undefined) {
    const pair = parseCurveKeys(readSecret(curveFile, 'CURVE key file'), `CURVE key file ${curveFile}`);
    const allowFile = str('curve-allow') ?? file.curve?.allowFile;
    const allowed = allowFile === undefined ? [] : curveAllowList(readText(allowFile, 'CURVE allow list'), `CURVE allow list ${allowFile}`);
    // The replicas dial each other with the service's own key pair: always allowed.
    transport.curve = { ...pair, serverKey: pair.publicKey, allowedClientKeys: [pair.publicKey, ...allowed] };
    parts.push(`CURVE, ${allowed.length} client key${allowed.length === 1 ? '' : 's'} allowed`);
  } else if (str('curve-allow') !== undefined) throw new UsageError('--curve-allow needs --curve-server-keys FILE');
  return { security, transport, summary: parts.join('; ') };
}

export interface ClientSecuritySettings {
  credentials?: ClientCredentials;
  transport: TransportSecurity;
}

export function clientSecurityFrom(values: Values): ClientSecuritySettings {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const out: ClientSecuritySettings = { transport: {} };
  const keyFile = str('client-key-file');
  if (keyFile !== undefined) {
    const keys = parseClientKeys(readSecret(keyFile, 'client key file'), `client key file ${keyFile}`);
    if (keys.size !== 1) throw new UsageError(`client key file ${keyFile}: must hold exactly one "ID HEXKEY" line`);
    const [keyId, key] = [...keys][0]!;
    out.credentials = { keyId, key };
  }
  const cert = str('tls-cert');
  const key = str('tls-key');
  const ca = str('tls-ca');
  if (cert !== undefined || key !== undefined || ca !== undefined) {
    if ((cert === undefined) !== (key === undefined)) throw new UsageError('a TLS client certificate needs both --tls-cert and --tls-key');
    out.transport.tls = {
      ...(cert ? { cert: readText(cert, 'TLS certificate') } : {}),
      ...(key ? { key: readSecret(key, 'TLS key') } : {}),
      ...(ca ? { ca: readText(ca, 'TLS CA') } : {}),
    };
  }
  const curveFile = str('curve-client-keys');
  const serverKey = str('curve-server-key');
  if (curveFile !== undefined || serverKey !== undefined) {
    if (curveFile === undefined || serverKey === undefined)
      throw new UsageError('CURVE needs both --curve-client-keys FILE and --curve-server-key Z85');
    if (serverKey.length !== 40) throw new UsageError('--curve-server-key must be a 40-character Z85 public key');
    out.transport.curve = { ...parseCurveKeys(readSecret(curveFile, 'CURVE key file'), `CURVE key file ${curveFile}`), serverKey };
  }
  return out;
}

/** `tandem-kv keygen`: write a new key file with mode 0600 (never overwrite one without --force). */
export async function keygen(out: string, kind: { curve?: boolean; client?: string }, force: boolean): Promise<string> {
  if (existsSync(out) && !force) throw new UsageError(`${out} exists; pass --force to overwrite it`);
  let text: string;
  if (kind.curve) {
    const { curveKeyPair } = await import('@tandem/transport-zeromq');
    const pair = curveKeyPair();
    text = `# tandem CURVE key pair (keep the secret line secret: mode 0600)\npublic ${pair.publicKey}\nsecret ${pair.secretKey}\n`;
  } else if (kind.client !== undefined) {
    if (!/^\S{1,256}$/.test(kind.client)) throw new UsageError('--client ID: 1–256 characters, no spaces');
    text = `# tandem client key: give this line to the replicas (--client-keys-file) and the file to the client\n${kind.client} ${randomBytes(32).toString('hex')}\n`;
  } else {
    text = formatKeyFile(new Uint8Array(randomBytes(32)));
  }
  writeFileSync(out, text, { mode: 0o600 });
  chmodSync(out, 0o600); // an existing file keeps its mode on write
  return text;
}
