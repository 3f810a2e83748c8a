import { fileURLToPath } from 'node:url';
import { describeTransportCompliance } from '@tandem/transport/compliance';
import { zeromq } from '../src/index.js';
import { freePort, openRawTcp, silentTcpPeer } from '@tandem/transport/compliance';
import { zmtpGreeting, zmtpLongFrameHeader, zmtpReady } from './zmtp-raw.js';

describeTransportCompliance({
  name: 'zeromq',
  createTransport: () => zeromq(),
  listenAddress: () => 'zmq+tcp://127.0.0.1:0',
  refusedAddress: async () => `zmq+tcp://127.0.0.1:${await freePort()}`,
  // accepts TCP and never speaks ZMTP, so the HELLO is never answered
  silentPeer: () => silentTcpPeer((port) => `zmq+tcp://127.0.0.1:${port}`),
  // raw TCP to the ROUTER port: the ZMTP handshake fails and libzmq drops the stream
  openRaw: openRawTcp,
  // the ZMTP greeting stops after the signature and the major version (libzmq assembles frames itself:
  // a Tandem-level partial frame does not exist here)
  partialFrame: new Uint8Array(zmtpGreeting().subarray(0, 11)),
  // a NULL handshake by hand, then a frame header announcing limit + 1 bytes: libzmq's maxMessageSize
  oversizedFrame: (limit) => new Uint8Array(Buffer.concat([zmtpGreeting(), zmtpReady(), zmtpLongFrameHeader(limit + 1)])),
  peerModule: fileURLToPath(new URL('./peer-transport.ts', import.meta.url)),
});
