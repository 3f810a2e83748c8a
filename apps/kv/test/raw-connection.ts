/** A hand-driven protocol connection (hello + req) for asserting exactly what a replica answers. */
import type { Message } from '@tandem/core';
import { codec } from '@tandem/core/internal';
import type { Connection } from '@tandem/transport';
import { KV_SERVICE_NAME } from '../src/service.js';
import { createTransportRegistry } from '../src/transports.js';

export class RawConnection {
  readonly received: Message[] = [];
  readonly conn: Connection;
  private constructor(conn: Connection) {
    this.conn = conn;
    void (async () => {
      try {
        for await (const bytes of conn) {
          try {
            this.received.push(codec.decode(bytes) as Message);
          } catch {
            /* ignore undecodable */
          }
        }
      } catch {
        /* closed */
      }
    })();
  }

  static async open(address: string, clientId: string): Promise<RawConnection> {
    const conn = await createTransportRegistry().dial(address);
    const raw = new RawConnection(conn);
    await conn.send(codec.encode({ t: 'hello', kind: 'client', service: KV_SERVICE_NAME, nodeId: clientId, epoch: 0 }));
    return raw;
  }

  async sendRequest(clientId: string, requestId: number, body: unknown): Promise<void> {
    await this.conn.send(codec.encode({ t: 'req', clientId, requestId, body }));
  }

  close(): void {
    this.conn.abort();
  }
}
