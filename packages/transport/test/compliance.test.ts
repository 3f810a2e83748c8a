// The memory transport runs the shared compliance suite. Its equivalents for the socket/process hooks:
// a raw byte pipe into the listener (`dialRaw`), a partitioned host for a silent peer, and a peer on its
// own host that "dies" by having every connection of its host severed.
import { createMemoryNetwork } from '@tandem/transport';
import { describeTransportCompliance } from '@tandem/transport/compliance';

const network = createMemoryNetwork();
let n = 0;

describeTransportCompliance({
  name: 'memory',
  createTransport: () => network,
  listenAddress: () => `mem://compliance-${++n}`,
  refusedAddress: () => `mem://nobody-${++n}`,
  silentPeer: async () => {
    const host = `silent-${++n}`;
    const listener = await network.listen(`mem://${host}`);
    network.partition([network.defaultHost], [host]);
    return {
      address: listener.address,
      close: async () => {
        network.heal();
        await listener.close();
      },
    };
  },
  openRaw: async (address) => {
    const peer = network.dialRaw(address);
    return { write: (b) => peer.write(b), closed: peer.closed, destroy: () => peer.end() };
  },
  startPeer: async (address) => {
    const host = `peer-${++n}`;
    const conn = await network.host(host).dial(address);
    await conn.send(new TextEncoder().encode(`peer ${host} ready`));
    return {
      kill: () => void network.sever(host),
      dispose: () => conn.abort(),
    };
  },
});
