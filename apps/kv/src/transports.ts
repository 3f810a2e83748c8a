/**
 * The transports this CLI can speak, chosen by address scheme (tcp://…, ws://…, zmq+tcp://…).
 * Adding an adapter is one entry in the list below. ws and zeromq are loaded on first use, so a
 * machine without the zeromq native module still runs everything over tcp.
 */
import { TransportRegistry, type Connection, type DialOptions, type Listener, type ListenOptions, type Transport } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import type { TransportSecurity } from './security-options.js';

/** `sec`: TLS material for tls:// and wss://, CURVE keys for zmq+tcp:// (security-options.ts). */
export function createTransportRegistry(sec: TransportSecurity = {}): TransportRegistry {
  const tls = sec.tls;
  return new TransportRegistry([
    tcp(tls ? { tls } : {}),
    lazy('ws', ['ws', 'wss'], async () =>
      (await import('@tandem/transport-ws')).websocket(
        tls
          ? {
              tls: {
                ...(tls.key ? { key: tls.key } : {}),
                ...(tls.cert ? { cert: tls.cert } : {}),
                ...(tls.ca ? { ca: tls.ca } : {}),
                requireClientCertificate: tls.requestCert === true,
              },
            }
          : {},
      ),
    ),
    lazy('zeromq', ['zmq+tcp'], async () => (await import('@tandem/transport-zeromq')).zeromq(sec.curve ? { curve: sec.curve } : {})),
  ]);
}

/** A transport whose adapter module is imported when an address of its scheme is first used. */
function lazy(name: string, schemes: readonly string[], load: () => Promise<Transport>): Transport {
  let loaded: Promise<Transport> | undefined;
  const get = (): Promise<Transport> => (loaded ??= load());
  return {
    name,
    schemes,
    listen: async (address: string, options?: ListenOptions): Promise<Listener> => (await get()).listen(address, options),
    dial: async (address: string, options?: DialOptions): Promise<Connection> => (await get()).dial(address, options),
  };
}

/** The address of `host:port` for a transport name as the CLI flags spell it (tcp | ws | zmq). */
export function addressFor(transport: string, host: string, port: number): string {
  switch (transport) {
    case 'tcp':
      return `tcp://${host}:${port}`;
    case 'tls':
      return `tls://${host}:${port}`;
    case 'wss':
      return `wss://${host}:${port}/tandem-kv`;
    case 'ws':
      return `ws://${host}:${port}/tandem-kv`;
    case 'zmq':
      return `zmq+tcp://${host}:${port}`;
    default:
      throw new UsageError(`unknown transport "${transport}" (expected tcp, tls, ws, wss or zmq)`);
  }
}

/** Bad command-line input: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  static override readonly name = 'UsageError';
  override readonly name = 'UsageError';
}
