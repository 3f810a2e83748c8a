/**
 * `tandem-kv serve --witness etcd://host:port[,host:port…]/prefix` (or the config file's `witness`): an
 * @tandem/witness-etcd witness both replicas of a pair share (same URL, same prefix), asked before either
 * serves alone (docs/PARTITIONS.md). The lease TTL is `--witness-lease-s` (whole seconds, default 2).
 */
import type { Logger, Witness } from '@tandem/core';
import { EtcdWitness, parseWitnessUrl } from '@tandem/witness-etcd';

export interface KvWitness {
  witness: Witness;
  /** For the startup line: endpoints and prefix, never credentials. */
  summary: string;
  close(): Promise<void>;
}

/** Build the witness named by `url`; throws `WitnessUrlError` (with what is wrong) on a malformed URL. */
export function witnessFromUrl(url: string, options: { leaseTtlS?: number; log?: Logger } = {}): KvWitness {
  const parsed = parseWitnessUrl(url);
  const witness = new EtcdWitness({
    endpoints: parsed.endpoints,
    prefix: parsed.prefix,
    ...(parsed.tls ? { tls: parsed.tls } : {}),
    ...(options.leaseTtlS !== undefined ? { leaseTtlS: options.leaseTtlS } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  return {
    witness,
    summary: `etcd ${parsed.tls ? '(TLS) ' : ''}${parsed.endpoints.join(',')} prefix ${parsed.prefix}`,
    close: () => witness.close(),
  };
}
