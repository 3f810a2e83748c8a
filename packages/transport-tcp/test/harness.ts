/** The compliance harness for tcp:// and tls:// (shared by the compliance test files). */
import net from 'node:net';
import type { ComplianceHarness } from '@tandem/transport/compliance';
import { tcp, type TcpOptions } from '@tandem/transport-tcp';

/** A port that was free a moment ago (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function tcpHarness(scheme: 'tcp' | 'tls', options: TcpOptions, peerModule: string): ComplianceHarness {
  return {
    name: scheme,
    createTransport: () => tcp(options),
    listenAddress: () => `${scheme}://127.0.0.1:0`,
    refusedAddress: async () => `${scheme}://127.0.0.1:${await freePort()}`,
    // accepts TCP connections and never says a word: no preamble (tcp), no TLS handshake (tls)
    silentPeer: async () => {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((s) => {
        sockets.add(s);
        s.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as net.AddressInfo;
      return {
        address: `${scheme}://127.0.0.1:${port}`,
        close: async () => {
          for (const s of sockets) s.destroy();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    },
    openRaw: async (address) => {
      const url = new URL(address);
      const socket = net.connect({ host: url.hostname, port: Number(url.port) });
      socket.on('error', () => undefined);
      socket.resume();
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      return { write: (b) => void socket.write(b), closed, destroy: () => socket.destroy() };
    },
    peerModule,
  };
}

