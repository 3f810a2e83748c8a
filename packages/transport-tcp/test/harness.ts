/** The compliance harness for tcp:// and tls:// (shared by the compliance test files). */
import { freePort, openRawTcp, silentTcpPeer, type ComplianceHarness } from '@tandem/transport/compliance';
import { tcp, type TcpOptions } from '@tandem/transport-tcp';

export function tcpHarness(scheme: 'tcp' | 'tls', options: TcpOptions, peerModule: string): ComplianceHarness {
  return {
    name: scheme,
    createTransport: () => tcp(options),
    listenAddress: () => `${scheme}://127.0.0.1:0`,
    refusedAddress: async () => `${scheme}://127.0.0.1:${await freePort()}`,
    // accepts TCP connections and never says a word: no preamble (tcp), no TLS handshake (tls)
    silentPeer: () => silentTcpPeer((port) => `${scheme}://127.0.0.1:${port}`),
    openRaw: openRawTcp,
    peerModule,
  };
}

