// serveMetrics: GET /metrics in the text format, 404 elsewhere, 405 for other methods, loopback only
// unless allowRemote.
import { request } from 'node:http';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isMetricsPrometheusError, type MetricsServer, parseListen, serveMetrics } from '../src/index.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function get(url: string, method = 'GET'): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveMetrics', () => {
  it('serves the registry at /metrics in the Prometheus text format', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'tandem_test_total', help: 'a test counter', registers: [registry] });
    c.inc(3);
    server = await serveMetrics(registry, '127.0.0.1:0');
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(server.url).toBe(`http://${server.address}/metrics`);
    const r = await get(server.url);
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    expect(r.body).toContain('# TYPE tandem_test_total counter');
    expect(r.body).toContain('tandem_test_total 3');
    c.inc();
    expect((await get(`${server.url}?x=1`)).body).toContain('tandem_test_total 4');
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    server = await serveMetrics(new Registry(), '127.0.0.1:0');
    expect((await get(`http://${server.address}/`)).status).toBe(404);
    expect((await get(`http://${server.address}/metricsx`)).status).toBe(404);
    expect((await get(server.url, 'POST')).status).toBe(405);
    expect((await get(server.url, 'DELETE')).status).toBe(405);
  });

  it('refuses a non-loopback host unless allowRemote, with a typed error', async () => {
    for (const listen of ['0.0.0.0:0', '[::]:0', '10.1.2.3:9464', 'example.com:9464']) {
      const err = await serveMetrics(new Registry(), listen).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isMetricsPrometheusError(err, 'InsecureMetricsListenError'), `${listen}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain('allowRemote');
    }
    server = await serveMetrics(new Registry(), '0.0.0.0:0', { allowRemote: true });
    const port = server.address.split(':').pop();
    expect((await get(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
  });

  it('accepts loopback forms and rejects malformed addresses', async () => {
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListen('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:99999', ':9464', 'a:b']) {
      expect(() => parseListen(bad)).toThrow(/HOST:PORT/);
    }
    const err = await serveMetrics(new Registry(), 'nope').catch((e: unknown) => e);
    expect(isMetricsPrometheusError(err, 'MetricsListenError')).toBe(true);
  });

  it('a port in use is a MetricsListenError', async () => {
    server = await serveMetrics(new Registry(), '127.0.0.1:0');
    const err = await serveMetrics(new Registry(), server.address).catch((e: unknown) => e);
    expect(isMetricsPrometheusError(err, 'MetricsListenError'), String(err)).toBe(true);
  });
});
