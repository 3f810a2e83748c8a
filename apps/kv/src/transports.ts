/**
 * The transports this CLI can speak, chosen by address scheme (tcp://…, ws://…, zmq+tcp://…).
 * Adding an adapter is two lines: its import and its entry in the list below.
 */
import { TransportRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';

export function createTransportRegistry(): TransportRegistry {
  return new TransportRegistry([tcp()]);
}

/** The address of `host:port` for a transport name as the CLI flags spell it (tcp | ws | zmq). */
export function addressFor(transport: string, host: string, port: number): string {
  switch (transport) {
    case 'tcp':
      return `tcp://${host}:${port}`;
    case 'ws':
      return `ws://${host}:${port}/tandem-kv`;
    case 'zmq':
      return `zmq+tcp://${host}:${port}`;
    default:
      throw new UsageError(`unknown transport "${transport}" (expected tcp, ws or zmq)`);
  }
}

/** Bad command-line input: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
