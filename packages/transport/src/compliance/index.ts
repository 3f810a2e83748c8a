/**
 * The transport compliance suite. Every adapter runs it from its own test file:
 *
 *   import { describeTransportCompliance } from '@tandem/transport/compliance';
 *   describeTransportCompliance({ name: 'tcp', createTransport: () => tcp(), ... });
 *
 * Every transport runs the same tests: where a capability does not exist (no sockets, no processes), the
 * harness supplies the transport's equivalent (see harness.ts) and the same assertions apply.
 *
 * @packageDocumentation
 */
import { afterEach, describe } from 'vitest';
import type { Transport } from '../types.js';
import { closingCases } from './closing.js';
import type { ComplianceHarness } from './harness.js';
import { limitCases } from './limits.js';
import { listeningCases } from './listening.js';
import { messageCases } from './messages.js';
import { Acceptor, type ConnectedPair, Scope, type SuiteContext } from './suite-kit.js';

export type { ComplianceHarness, KillablePeer, RawPeer, SilentPeer } from './harness.js';
export { spawnListenerProcess, spawnPeerProcess } from './spawn-peer.js';
export { expectKilledListenerNoticed } from './killed-listener.js';
export { freePort, openRawTcp, silentTcpPeer } from './tcp-helpers.js';

/** The number of tests `describeTransportCompliance` registers (the same for every transport). */
export const COMPLIANCE_TEST_COUNT = 25;

/**
 * Register the compliance tests for one transport (call at the top level of a vitest file, or inside a
 * describe). Registers exactly COMPLIANCE_TEST_COUNT tests.
 */
export function describeTransportCompliance(harness: ComplianceHarness): void {
  describe(`transport compliance: ${harness.name}`, () => {
    let scope = new Scope();
    afterEach(async () => {
      const s = scope;
      scope = new Scope();
      await s.dispose();
    });

    const transports = async (): Promise<{ server: Transport; client: Transport }> => ({
      server: await harness.createTransport(),
      client: await harness.createTransport(),
    });

    /** A listener on the harness address, plus a connected (dialler, acceptor) pair. */
    async function connectedPair(
      options: { listen?: Parameters<Transport['listen']>[1]; dial?: Parameters<Transport['dial']>[1] } = {},
    ): Promise<ConnectedPair> {
      const t = await transports();
      const listener = scope.listener(await t.server.listen(harness.listenAddress(), options.listen));
      const acceptor = new Acceptor(listener, scope);
      const client = scope.conn(await t.client.dial(listener.address, options.dial));
      const server = await acceptor.next();
      return { listener, acceptor, client, server, transports: t };
    }

    const ctx: SuiteContext = {
      harness,
      get scope() {
        return scope;
      },
      transports,
      connectedPair,
    };
    messageCases(ctx);
    closingCases(ctx);
    listeningCases(ctx);
    limitCases(ctx);
  });
}
