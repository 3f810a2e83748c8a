import { WitnessUrlError } from './errors.js';

/** TLS to etcd: file paths of the CA bundle and, for client-certificate auth, the certificate and key. */
export interface EtcdTlsOptions {
  /** PEM file of the CA(s) that signed etcd's server certificate (default: the system roots). */
  ca?: string;
  /** PEM client certificate (with `key`), when etcd requires client certificates. */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
}

/** Where a witness lives: etcd endpoints (`host:port`) and the key prefix of one replica pair. */
export interface WitnessUrl {
  /** etcd client endpoints, `host:port`. */
  endpoints: string[];
  /** Starts with `/`, no trailing `/` (e.g. `/tandem/kv-1`). */
  prefix: string;
  /** Present for `etcds://` (TLS); the query parameters `ca`, `cert`, `key` fill it. */
  tls?: EtcdTlsOptions;
}

const DEFAULT_PORT = 2379;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

/**
 * Parses `etcd://host:port[,host:port…]/prefix` (plain gRPC) or `etcds://…/prefix?ca=…&cert=…&key=…` (TLS; the
 * query parameters are PEM file paths, all optional). The port defaults to 2379. Throws `WitnessUrlError`.
 */
export function parseWitnessUrl(url: string): WitnessUrl {
  const m = /^(etcds?):\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(url.trim());
  if (!m) throw new WitnessUrlError(url, 'not an etcd:// or etcds:// URL');
  const [, scheme, hostList = '', rawPath = '', query] = m;
  if (hostList === '') throw new WitnessUrlError(url, 'no host');
  const endpoints = hostList.split(',').map((hp) => {
    const h = HOST_PORT.exec(hp);
    if (!h) throw new WitnessUrlError(url, `bad host:port ${JSON.stringify(hp)}`);
    const port = h[2] === undefined ? DEFAULT_PORT : Number(h[2]);
    if (!(port >= 1 && port <= 65535)) throw new WitnessUrlError(url, `bad port in ${JSON.stringify(hp)}`);
    return `${h[1]}:${port}`;
  });
  const prefix = rawPath.replace(/\/+$/, '');
  if (prefix === '') throw new WitnessUrlError(url, 'no key prefix (the path names the pair, e.g. /tandem/kv-1)');
  if (/\/\//.test(prefix)) throw new WitnessUrlError(url, 'empty path segment in the prefix');
  const result: WitnessUrl = { endpoints, prefix: decodeURIComponent(prefix) };
  if (query !== undefined && query !== '' && scheme !== 'etcds')
    throw new WitnessUrlError(url, 'query parameters (ca, cert, key) need etcds://');
  if (scheme === 'etcds') {
    const tls: EtcdTlsOptions = {};
    for (const [k, v] of new URLSearchParams(query ?? '')) {
      if (k !== 'ca' && k !== 'cert' && k !== 'key')
        throw new WitnessUrlError(url, `unknown parameter ${JSON.stringify(k)} (ca, cert, key)`);
      if (v === '') throw new WitnessUrlError(url, `empty ${k}`);
      tls[k] = v;
    }
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw new WitnessUrlError(url, 'cert and key go together');
    result.tls = tls;
  }
  return result;
}
