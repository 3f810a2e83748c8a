// A TCP proxy for tests: delays every server→client byte by `delayMs` (in order) and can cut the
// client→server direction (requests vanish, answers already under way still arrive).
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  /** `127.0.0.1:<port>` */
  readonly hostPort: string;
  /** From now on, bytes from clients are dropped. */
  cut(): void;
  /** performance.now() of the last client→server bytes forwarded. */
  lastForwardedAt(): number;
  close(): Promise<void>;
}

export async function startDelayProxy(target: string, delayMs: number): Promise<DelayProxy> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  let cut = false;
  let lastForwarded = 0;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port: Number(port) });
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (d) => {
      if (cut) return;
      lastForwarded = performance.now();
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      setTimeout(() => client.destroyed || client.write(d), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const proxyPort = typeof address === 'object' && address ? address.port : 0;
  return {
    hostPort: `127.0.0.1:${proxyPort}`,
    cut: () => {
      cut = true;
    },
    lastForwardedAt: () => lastForwarded,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
