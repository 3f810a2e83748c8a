import { fileURLToPath } from 'node:url';
import { describeTransportCompliance } from '@tandem/transport/compliance';
import { websocket } from '../src/index.js';
import { freePort, openRawTcp, silentTcpPeer } from '@tandem/transport/compliance';

/** An HTTP upgrade request for the harness path, as a raw client would write it. */
const UPGRADE =
  'GET /tandem HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describeTransportCompliance({
  name: 'ws',
  createTransport: () => websocket(),
  listenAddress: () => 'ws://127.0.0.1:0/tandem',
  refusedAddress: async () => `ws://127.0.0.1:${await freePort()}/tandem`,
  silentPeer: () => silentTcpPeer((port) => `ws://127.0.0.1:${port}/tandem`),
  openRaw: openRawTcp,
  // the HTTP request stops inside its headers (after the upgrade, ws.test.ts stops inside a frame)
  partialFrame: new TextEncoder().encode('GET /tandem HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
  // the upgrade, then the header of a masked binary frame announcing limit + 1 bytes (64-bit length)
  oversizedFrame: (limit) => {
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(limit + 1), 2);
    header.writeUInt32BE(0x01020304, 10);
    return new Uint8Array(Buffer.concat([Buffer.from(UPGRADE, 'latin1'), header]));
  },
  peerModule: fileURLToPath(new URL('./peer-transport.ts', import.meta.url)),
});
