/**
 * A backup that rejoins while the primary is under load and the state is large (the state copy takes a
 * while to install). Found by `tandem-kv demo` and the replication benchmark: the primary starts its
 * flush-ack clock when it sends the snapshot, declares the still-installing joiner faulty ("no flushAck
 * after N retransmissions") and serves alone; the joiner then becomes backup, hears no flushes, takes
 * over while the primary is alive, and the primary's solo-period writes are lost when it steps down.
 *
 * This is a bug in @tandem/core (replica.ts), outside this app's slice. The test reproduces it and
 * stays red until the core is fixed; it runs when TANDEM_KV_KNOWN_BUGS=1 (otherwise it prints why not).
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/commands/demo.js';

const RUN = process.env.TANDEM_KV_KNOWN_BUGS === '1';

describe('rejoin under load with a large state', () => {
  if (!RUN) {
    it('not run by default (printed reason)', () => {
      const reason = 'reproduces a known @tandem/core bug (joiner declared faulty during its state copy → split brain → lost writes); set TANDEM_KV_KNOWN_BUGS=1 to run it';
      console.info(`[kv] ${reason}`);
      expect(reason).toContain('TANDEM_KV_KNOWN_BUGS');
    });
    return;
  }
  it('the demo scenario (8 clients, SIGKILL, takeover, rejoin under load): nothing lost, no second takeover', async () => {
    const r = await runDemo({ json: true, clients: 8, durationS: 6, transport: 'tcp', replication: {} });
    expect({ lost: r.lost, duplicated: r.duplicated, digestsEqual: r.digests.equal }).toEqual({ lost: 0, duplicated: 0, digestsEqual: true });
    expect(r.epoch).toBe(2); // one takeover (the SIGKILL); a second one means the rejoin split the pair
  });
});
