/** The compliance harness for tcp:// and tls:// (shared by the compliance test files). */
import tls from 'node:tls';
import { freePort, openRawTcp, silentTcpPeer, type ComplianceHarness, type RawPeer } from '@tandem/transport/compliance';
import { tcp, type TcpOptions } from '@tandem/transport-tcp';

export function tcpHarness(scheme: 'tcp' | 'tls', options: TcpOptions, peerModule: string, client?: TcpOptions['tls']): ComplianceHarness {
  return {
    name: scheme,
    createTransport: () => tcp(options),
    listenAddress: () => `${scheme}://127.0.0.1:0`,
    refusedAddress: async () => `${scheme}://127.0.0.1:${await freePort()}`,
    // accepts TCP connections and never says a word: no preamble (tcp), no TLS handshake (tls)
    silentPeer: () => silentTcpPeer((port) => `${scheme}://127.0.0.1:${port}`),
    openRaw: openRawTcp,
    // hand-written frames go inside TLS, from a client with a certificate
    ...(scheme === 'tls' ? { openSession: (address: string) => openRawTls(address, client ?? {}) } : {}),
    peerModule,
  };
}

/** A TLS socket to the listener (its handshake done), writing raw bytes inside TLS. */
export async function openRawTls(address: string, options: NonNullable<TcpOptions['tls']>): Promise<RawPeer> {
  const url = new URL(address);
  const socket = tls.connect({
    host: url.hostname,
    port: Number(url.port),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.cert !== undefined ? { cert: options.cert } : {}),
  });
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { write: (bytes) => void socket.write(bytes), closed, destroy: () => void socket.destroy() };
}
