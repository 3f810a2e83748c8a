// Plain-TCP helpers for compliance harnesses of adapters that run over TCP (tcp, tls, ws, zmq+tcp…): a
// port where nothing listens, a peer that accepts and never answers, and a raw byte stream to a listener.
import { connect, createServer, type Socket } from 'node:net';
import type { RawPeer, SilentPeer } from './harness.js';

/** A port that was free a moment ago (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Accepts TCP connections and never says a word; `toAddress` builds the adapter's address from the port. */
export async function silentTcpPeer(toAddress: (port: number) => string): Promise<SilentPeer> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: toAddress(port),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A raw TCP byte stream to the host:port of an adapter address (for the garbage-bytes test). */
export async function openRawTcp(address: string): Promise<RawPeer> {
  const url = new URL(address);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  socket.resume(); // discard whatever the listener answers
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    write: (bytes) => void socket.write(bytes),
    closed,
    destroy: () => void socket.destroy(),
  };
}
