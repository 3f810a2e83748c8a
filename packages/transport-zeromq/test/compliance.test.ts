import { fileURLToPath } from 'node:url';
import { describeTransportCompliance } from '@tandem/transport/compliance';
import { zeromq } from '../src/index.js';
import { freePort, openRawTcp, silentTcpPeer } from '@tandem/transport/compliance';

describeTransportCompliance({
  name: 'zeromq',
  createTransport: () => zeromq(),
  listenAddress: () => 'zmq+tcp://127.0.0.1:0',
  refusedAddress: async () => `zmq+tcp://127.0.0.1:${await freePort()}`,
  // accepts TCP and never speaks ZMTP, so the HELLO is never answered
  silentPeer: () => silentTcpPeer((port) => `zmq+tcp://127.0.0.1:${port}`),
  // raw TCP to the ROUTER port: the ZMTP handshake fails and libzmq drops the stream
  openRaw: openRawTcp,
  peerModule: fileURLToPath(new URL('./peer-transport.ts', import.meta.url)),
});
