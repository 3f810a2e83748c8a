import { fileURLToPath } from 'node:url';
import { describeTransportCompliance } from '@tandem/transport/compliance';
import { websocket } from '../src/index.js';
import { freePort, openRawTcp, silentTcpPeer } from '@tandem/transport/compliance';

describeTransportCompliance({
  name: 'ws',
  createTransport: () => websocket(),
  listenAddress: () => 'ws://127.0.0.1:0/tandem',
  refusedAddress: async () => `ws://127.0.0.1:${await freePort()}/tandem`,
  silentPeer: () => silentTcpPeer((port) => `ws://127.0.0.1:${port}/tandem`),
  openRaw: openRawTcp,
  peerModule: fileURLToPath(new URL('./peer-transport.ts', import.meta.url)),
});
