/**
 * `serveMetrics`: a plain HTTP listener that answers `GET /metrics` with a prom-client registry in the
 * Prometheus text format. Loopback only unless `allowRemote` (the endpoint is unauthenticated: the same rule
 * as a replica without a cluster key, see @tandem/core's `isLoopbackAddress`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackAddress } from '@tandem/core';
import type { Registry } from 'prom-client';
import { InsecureMetricsListenError, MetricsListenError } from './errors.js';

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** Listen beyond loopback (0.0.0.0, a LAN address): anyone who reaches the port reads the metrics. Default false. */
  allowRemote?: boolean;
  /** The path served (default `/metrics`); every other path is 404. */
  path?: string;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound `HOST:PORT` (the real port when `listen` asked for port 0). */
  readonly address: string;
  /** The scrape URL, `http://HOST:PORT/metrics`. */
  readonly url: string;
  /** Stop listening and close open scrape connections. */
  close(): Promise<void>;
}

/** Split `HOST:PORT` (`[::1]:9464` for IPv6); throws `MetricsListenError` when malformed. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !Number.isInteger(port) || port > 65535)
    throw new MetricsListenError(listen, 'expected HOST:PORT, e.g. 127.0.0.1:9464');
  return { host, port };
}

/** Serve `registry` on `listen` (`HOST:PORT`, e.g. `127.0.0.1:9464`): GET /metrics → 200 text format, other paths 404, other methods 405. */
export async function serveMetrics(registry: Registry, listen: string, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  if (!options.allowRemote && !isLoopbackAddress(`tcp://${hostForUrl}:${port}`)) throw new InsecureMetricsListenError(listen);
  const path = options.path ?? '/metrics';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: GET ${path}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new MetricsListenError(listen, err.message, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  return {
    address,
    url: `http://${address}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
